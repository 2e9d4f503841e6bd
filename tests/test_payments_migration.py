"""Invoices marked "paid" by hand before payments existed stay paid: the
migration records one payment of the total for each (see its docstring)."""
from decimal import Decimal

import flask_migrate
import sqlalchemy as sa

from config import TestConfig
from planman import create_app
from planman.extensions import db
from tests.test_migrations import empty_database_url  # noqa: F401  (the fixture)


def test_hand_marked_paid_invoices_get_a_payment_of_their_total(empty_database_url):  # noqa: F811
    app = create_app(type("MigrationConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": empty_database_url}))
    with app.app_context():
        flask_migrate.upgrade(revision="5b7e2f0c91d4")
        now = "2026-01-05 10:00:00"
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO firm (id, name, currency, next_invoice_number, created_at) "
                                 "VALUES (1, 'Old Firm', 'GBP', 4, :now)"), {"now": now})
            conn.execute(sa.text(
                "INSERT INTO client (id, firm_id, reference, name, first_name, last_name, email, phone, address_line1,"
                " address_line2, city, region, postcode, country, tax_number, payment_terms_days, notes, revision,"
                " created_at, updated_at) VALUES (1, 1, 'C1', 'Acme', '', '', '', '', '', '', '', '', '', '', '',"
                " 14, '', 1, :now, :now)"), {"now": now})
            for invoice_id, status, total in ((1, "paid", "120.00"), (2, "sent", "50.00"), (3, "paid", "0.00"),
                                              (4, "paid", "15000000000.00")):
                conn.execute(sa.text(
                    "INSERT INTO invoice (id, firm_id, client_id, number, issue_date, due_date, currency, reference,"
                    " amounts_are, status, revision, total, created_at, updated_at) VALUES (:id, 1, 1, :number,"
                    " '2026-01-01', '2026-01-31', 'GBP', '', 'exclusive', :status, 1, :total, :now, :now)"),
                    {"id": invoice_id, "number": f"INV-{invoice_id}", "status": status, "total": total, "now": now})
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            invoices = conn.execute(sa.text("SELECT id, status, amount_paid FROM invoice ORDER BY id")).all()
            payments = conn.execute(sa.text(
                "SELECT invoice_id, amount, method, state, paid_on, note FROM payment ORDER BY id")).all()
        assert [(i, s, Decimal(str(p))) for i, s, p in invoices] == [
            (1, "paid", Decimal("120.00")), (2, "sent", Decimal("0")), (3, "sent", Decimal("0")),
            (4, "paid", Decimal("15000000000.00"))]
        # Beyond one payment's Numeric(12, 2): as many payments as it takes.
        assert [Decimal(str(p[1])) for p in payments if p[0] == 4] == [Decimal("9999999999.99"), Decimal("5000000000.01")]
        payments = [p for p in payments if p[0] != 4]
        assert len(payments) == 1
        invoice_id, amount, method, state, paid_on, note = payments[0]
        assert (invoice_id, Decimal(str(amount)), method, state) == (1, Decimal("120.00"), "other", "succeeded")
        assert str(paid_on).startswith("2026-01-05") and "before payments existed" in note
        flask_migrate.downgrade(revision="5b7e2f0c91d4")
        db.engine.dispose()
