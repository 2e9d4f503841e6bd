"""The migrations build exactly the schema the models describe, on SQLite and
PostgreSQL alike: the app runs on migrations, tests on create_all, and this
keeps the two from drifting apart."""
from __future__ import annotations

import uuid
from decimal import Decimal

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

from config import TestConfig
from planman import create_app
from planman.extensions import db


@pytest.fixture
def empty_database_url(database_url, tmp_path):
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    name = f"planman_migrations_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migrations_match_the_models_and_downgrade_cleanly(empty_database_url):
    app = create_app(type("MigrationConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": empty_database_url}))
    with app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
        assert differences == [], "models and migrations differ: run `flask --app wsgi db migrate`"

        flask_migrate.downgrade(revision="base")
        remaining = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert remaining == set()
        db.engine.dispose()


def test_stored_totals_migration_fills_in_existing_invoices(empty_database_url):
    """Invoices saved before invoice.total existed get theirs when it is added."""
    app = create_app(type("MigrationConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": empty_database_url}))
    with app.app_context():
        flask_migrate.upgrade(revision="adcff485fe8b")
        now, day = "2026-01-05 10:00:00", "2026-01-05"
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO firm (id, name, currency, next_invoice_number, created_at) "
                                 "VALUES (1, 'Old Firm', 'GBP', 3, :now)"), {"now": now})
            conn.execute(sa.text(
                "INSERT INTO client (id, firm_id, reference, name, first_name, last_name, email, phone, address_line1,"
                " address_line2, city, region, postcode, country, tax_number, payment_terms_days, notes, revision,"
                " created_at, updated_at) VALUES (1, 1, 'C1', 'Acme', '', '', '', '', '', '', '', '', '', '', '',"
                " 14, '', 1, :now, :now)"), {"now": now})
            conn.execute(sa.text("INSERT INTO tax_rate (id, firm_id, name, percent) VALUES (1, 1, 'VAT', 20)"))
            for invoice_id, amounts_are in ((1, "exclusive"), (2, "inclusive"), (3, "exclusive")):
                conn.execute(sa.text(
                    "INSERT INTO invoice (id, firm_id, client_id, number, issue_date, due_date, currency, reference,"
                    " amounts_are, status, revision, created_at, updated_at) VALUES (:id, 1, 1, :number, :day, :day,"
                    " 'GBP', '', :amounts_are, 'draft', 1, :now, :now)"),
                    {"id": invoice_id, "number": f"INV-{invoice_id}", "day": day, "amounts_are": amounts_are, "now": now})
            lines = [(1, "3", "33.33", "0", 1), (1, "1", "10", "0", None), (2, "1", "120", "0", 1), (2, "2", "5", "50", None)]
            for position, (invoice_id, quantity, price, discount, rate) in enumerate(lines):
                conn.execute(sa.text(
                    "INSERT INTO invoice_line (id, invoice_id, position, description, quantity, unit_price,"
                    " discount_percent, tax_rate_id) VALUES (:id, :invoice_id, :position, 'x', :quantity, :price,"
                    " :discount, :rate)"), {"id": position + 1, "invoice_id": invoice_id, "position": position,
                                            "quantity": quantity, "price": price, "discount": discount, "rate": rate})
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            totals = dict(conn.execute(sa.text("SELECT number, total FROM invoice ORDER BY id")).all())
        # 99.99 + 20.00 VAT + 10.00; 120.00 (VAT included) + 2 x 5.00 at half price; no lines at all.
        assert {number: f"{Decimal(str(total)):.2f}" for number, total in totals.items()} == {
            "INV-1": "129.99", "INV-2": "125.00", "INV-3": "0.00"}, totals
        db.engine.dispose()


def test_client_name_key_migration_fills_in_existing_clients_and_keeps_clashes(empty_database_url):
    """Clients saved before name_key existed get their key; two names that clash
    (possible on SQLite before) both survive, and the index holds from then on."""
    app = create_app(type("MigrationConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": empty_database_url}))
    with app.app_context():
        flask_migrate.upgrade(revision="h12b1a7e11a02")
        now = "2026-01-05 10:00:00"
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO firm (id, name, currency, next_invoice_number, created_at) "
                                 "VALUES (1, 'Old Firm', 'GBP', 1, :now)"), {"now": now})
            for client_id, name in ((1, "Ülf"), (2, "ülf"), (3, " Acme Ltd ")):
                conn.execute(sa.text(
                    "INSERT INTO client (id, firm_id, reference, name, first_name, last_name, email, phone,"
                    " address_line1, address_line2, city, region, postcode, country, tax_number,"
                    " payment_terms_days, notes, revision, created_at, updated_at) VALUES (:id, 1, :ref, :name,"
                    " '', '', '', '', '', '', '', '', '', '', '', 30, '', 1, :now, :now)"),
                    {"id": client_id, "ref": f"C{client_id}", "name": name, "now": now})
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            keys = dict(conn.execute(sa.text("SELECT id, name_key FROM client ORDER BY id")).all())
        assert keys == {1: "ülf", 2: "ülf#2", 3: "acme ltd"}
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO client (id, firm_id, reference, name, name_key, first_name, last_name, email, phone,"
                " address_line1, address_line2, city, region, postcode, country, tax_number, payment_terms_days,"
                " notes, revision, created_at, updated_at) VALUES (4, 1, 'C4', 'ACME LTD', 'acme ltd', '', '', '',"
                " '', '', '', '', '', '', '', '', 30, '', 1, :now, :now)"), {"now": now})
        db.engine.dispose()
