"""The demo and benchmark seed commands."""
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Client, Firm, Invoice, InvoiceLine, User
from tests.helpers import login  # noqa: F401


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_seed_demo_creates_a_usable_firm_once(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "demo@planman.test" in result.output and "password: demo-password" in result.output
    firm = db.session.scalar(sa.select(Firm).where(Firm.name == "Demo Practice"))
    assert count(Client, Client.firm_id == firm.id) == 25
    assert count(Invoice, Invoice.firm_id == firm.id) == 60
    statuses = set(db.session.scalars(sa.select(Invoice.status).where(Invoice.firm_id == firm.id)))
    # Paid and part paid come from payments recorded by the seed, as a user would.
    assert statuses == {"draft", "sent", "part_paid", "paid", "void"}
    from planman.models import Payment

    paid_total = db.session.scalar(sa.select(sa.func.sum(Invoice.total)).where(
        Invoice.firm_id == firm.id, Invoice.status == "paid"))
    paid_by_payments = db.session.scalar(sa.select(sa.func.sum(Payment.amount)).join(
        Invoice, Invoice.id == Payment.invoice_id).where(Invoice.firm_id == firm.id, Invoice.status == "paid"))
    assert paid_total == paid_by_payments > 0
    per_invoice = db.session.execute(
        sa.select(sa.func.count()).select_from(InvoiceLine).group_by(InvoiceLine.invoice_id)).scalars().all()
    assert min(per_invoice) >= 1 and max(per_invoice) <= 4
    users = {u.email: u.is_admin for u in db.session.scalars(sa.select(User).where(User.firm_id == firm.id))}
    assert users == {"demo@planman.test": True, "sam@planman.test": False}
    assert firm.next_invoice_number == 61

    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0 and "nothing changed" in again.output
    assert count(Firm) == 1 and count(Invoice) == 60 and count(Client) == 25

    assert login(client, "demo@planman.test", "demo-password").status_code == 302
    assert client.get("/invoices/").status_code == 200
    assert "INV-0061" in client.get(f"/invoices/new").get_data(as_text=True)


def test_seed_bulk_makes_its_own_firm(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-bulk", "--clients", "40", "--invoices", "120", "--email", "Bench@Example.com"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(sa.select(User).where(User.email == "bench@example.com"))
    assert count(Client, Client.firm_id == user.firm_id) == 40
    assert count(Invoice, Invoice.firm_id == user.firm_id) == 120
    assert count(InvoiceLine) >= 120
    assert login(client, "bench@example.com", "bulk-password").status_code == 302
    assert client.get("/invoices/").status_code == 200 and client.get("/clients/?q=client").status_code == 200
    assert runner.invoke(args=["seed-bulk", "--email", "bench@example.com"]).exit_code != 0
