"""A payment's state and what hangs on it (a Direct Debit collection's status, the
invoice's amount paid and status) change in one transaction, even when another
worker moved the payment between this worker's read and its write: the
interleaving the compare-and-set in payments.services.set_payment_state exists
for. Two database sessions (the other worker in its own thread and app context)
force it, so the test does not depend on timing."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations.gocardless import services as gc_services
from planman.integrations.gocardless.models import GoCardlessCollection
from planman.models import Invoice, Payment
from tests.gocardless_helpers import FakeGoCardless, active_mandate, connect, payment
from tests.helpers import make_client, make_invoice, post_form, signup

import responses


@pytest.fixture
def gc():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeGoCardless(mock)


def other_worker(app, collection_id: int, status: str) -> None:
    """Another worker applies GoCardless's payment status and commits, in its own session."""
    failures = []

    def run():
        try:
            with app.app_context():
                collection = db.session.get(GoCardlessCollection, collection_id)
                gc_services.apply_payment(collection, {"id": collection.payment_id, "status": status})
                db.session.remove()
        except Exception as error:  # noqa: BLE001  (reported in the test's thread)
            failures.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and failures == []


def test_a_failure_applied_after_another_workers_confirmation_moves_the_collection_with_the_invoice(
        app, client, gc):
    user = signup(client)
    acme = make_client(user, name="Acme Ltd")
    invoice = make_invoice(user, acme, lines=((1, "120.00", None),), status="sent")
    connect(user)
    active_mandate(user, acme)
    gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
    post_form(client, f"/invoices/{invoice.id}/direct-debit", {}, form_url=f"/invoices/{invoice.id}")

    # This worker has read the collection and its payment (still collecting, pending) ...
    db.session.expire_all()
    collection = db.session.scalar(sa.select(GoCardlessCollection))
    read = db.session.scalar(sa.select(Payment))  # held: this session's copy of the row
    assert read.state == "pending"
    # ... when another worker applies GoCardless's "confirmed": the invoice is paid.
    other_worker(app, collection.id, "confirmed")
    # GoCardless's payment has since failed late, and this worker applies that.
    gc_services.apply_payment(collection, {"id": collection.payment_id, "status": "failed"},
                              details={"cause": "insufficient_funds"})

    db.session.expire_all()
    assert db.session.scalar(sa.select(GoCardlessCollection.status)) == "failed"
    assert db.session.scalar(sa.select(Payment.state)) == "failed"
    assert db.session.get(Invoice, invoice.id).status == "sent"
    html = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    # Never the collection "Paid" beside a "Sent" invoice: both say the money did not come.
    assert "Failed: insufficient funds" in html and ">Paid</strong>" not in html
    assert "PlanMan: Sent" in html
