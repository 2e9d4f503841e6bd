"""Payments recorded in the connected ledger exactly once, through the
provider-neutral job ``record_payment_in_ledger`` and PaymentLedgerLink.

Xero records payments once an admin picks the account for them (until then the
invoice page says so plainly; tests/test_xero_payments.py covers the rest). A test-only ledger shows the rest: written once however
often the job runs, reversed when the payment is, retried after a temporary
failure."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from planman import jobs
from planman.extensions import db
from planman.integrations import registry
from planman.integrations.errors import TemporaryFailure
from planman.models import Connection, ExternalLink, Payment, PaymentLedgerLink, utcnow
from tests.conftest import csrf_token_from
from tests.helpers import make_client, make_invoice, signup  # noqa: F401
from tests.test_payments import record
from tests.webhook_provider import OfflineProvider


class BookLedger(OfflineProvider):
    """A ledger that keeps its payments in a dict."""

    key, label, kind = "bookledger", "BookLedger", "ledger"

    def __init__(self):
        self.payments: dict[str, str] = {}  # ledger id -> our payment id
        self.calls: list[tuple] = []
        self.fail_next = 0

    def record_payment(self, connection, invoice_link, payment) -> str:
        self.calls.append(("record", invoice_link.external_id, str(payment.amount)))
        if self.fail_next:
            self.fail_next -= 1
            raise TemporaryFailure("BookLedger is not answering.")
        ledger_id = f"LP-{len(self.payments) + 1}"
        self.payments[ledger_id] = str(payment.id)
        return ledger_id

    def reverse_payment(self, connection, invoice_link, payment, ledger_payment_id) -> None:
        self.calls.append(("reverse", ledger_payment_id))
        del self.payments[ledger_payment_id]


@pytest.fixture
def book(monkeypatch):
    provider = BookLedger()
    monkeypatch.setitem(registry.PROVIDERS, provider.key, provider)
    return provider


@pytest.fixture
def user(client):
    return signup(client)


@pytest.fixture
def invoice(user):
    return make_invoice(user, make_client(user), lines=((1, "100.00", None),), status="sent")


def sent_to(provider_key, user, invoice, *, state="connected", tenant="tenant-1"):
    """The invoice as pushed to a connected ledger (its ExternalLink)."""
    db.session.add(Connection(firm_id=user.firm_id, provider=provider_key, state=state, tenant_id=tenant,
                              tenant_name="Org", connected_at=utcnow(), settings={}))
    db.session.add(ExternalLink(firm_id=user.firm_id, provider=provider_key, tenant_id=tenant, record_type="invoice",
                                record_id=invoice.id, external_id="remote-inv-1"))
    db.session.commit()


def run_ledger_jobs(app) -> list[str]:
    """Run what is queued for the ledger, as a worker would, in order."""
    results = []
    for job in app.push_queue.get_jobs():
        if job.func_name == "planman.jobs.record_payment_in_ledger":
            results.append(jobs.record_payment_in_ledger(*job.args))
            job.delete()
    return results


def page(client, invoice) -> str:
    return client.get(f"/invoices/{invoice.id}").get_data(as_text=True)


def test_xero_says_plainly_that_the_payment_account_must_be_chosen(app, client, user, invoice):
    sent_to("xero", user, invoice)
    record(client, invoice, amount="100.00")
    assert "Being recorded in Xero" in page(client, invoice)
    assert run_ledger_jobs(app) == ["xero: failed"]
    assert "Not recorded in Xero: choose the account for payments received" in page(client, invoice)
    assert db.session.scalar(sa.select(PaymentLedgerLink.state)) == "failed"


def test_a_payment_is_recorded_once_however_often_the_job_runs(app, client, user, invoice, book):
    sent_to("bookledger", user, invoice)
    record(client, invoice, amount="40.00")
    payment_id = db.session.scalar(sa.select(Payment.id))
    assert run_ledger_jobs(app) == ["bookledger: recorded"]
    for _ in range(3):  # a retried or duplicated job
        assert jobs.record_payment_in_ledger(payment_id) == "nothing to do"
    assert book.calls == [("record", "remote-inv-1", "40.00")] and book.payments == {"LP-1": str(payment_id)}
    assert "Recorded in BookLedger" in page(client, invoice)


def test_a_reversed_payment_is_reversed_in_the_ledger(app, client, user, invoice, book):
    sent_to("bookledger", user, invoice)
    record(client, invoice, amount="40.00")
    run_ledger_jobs(app)
    payment = db.session.scalar(sa.select(Payment))
    html = page(client, invoice)
    client.post(f"/invoices/{invoice.id}/payments/{payment.id}/reverse", data={"csrf_token": csrf_token_from(html)})
    assert run_ledger_jobs(app) == ["bookledger: reversed"]
    assert jobs.record_payment_in_ledger(payment.id) == "nothing to do"
    assert book.calls[1:] == [("reverse", "LP-1")] and book.payments == {}
    assert "Reversed in BookLedger" in page(client, invoice)


def test_a_temporary_failure_is_shown_and_retried(app, client, user, invoice, book):
    sent_to("bookledger", user, invoice)
    book.fail_next = 1
    record(client, invoice, amount="40.00")
    assert run_ledger_jobs(app) == ["bookledger: failed"]
    assert "BookLedger is not answering." in page(client, invoice)
    retry = [job for job in app.push_queue.scheduled_job_registry.get_job_ids()]
    assert len(retry) == 1  # a retry is scheduled, not slept through
    payment_id = db.session.scalar(sa.select(Payment.id))
    assert jobs.record_payment_in_ledger(payment_id) == "bookledger: recorded"
    assert len(book.payments) == 1 and "Recorded in BookLedger" in page(client, invoice)


@pytest.mark.parametrize("how", ["never sent", "disconnected"])
def test_nothing_is_queued_for_a_ledger_that_does_not_hold_the_invoice(app, client, user, invoice, book, how):
    if how == "disconnected":
        sent_to("bookledger", user, invoice, state="disconnected")
    record(client, invoice, amount="40.00")
    assert run_ledger_jobs(app) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PaymentLedgerLink)) == 0
    assert "in BookLedger" not in page(client, invoice) and book.calls == []


@pytest.mark.integration
class TestInAWorker:
    @pytest.fixture
    def app(self, integration_app):
        return integration_app

    def test_a_real_worker_says_the_xero_payment_account_must_be_chosen(self, app, client, rq_workers):
        from tests.fixtures.services import wait_until

        user = signup(client)
        invoice = make_invoice(user, make_client(user), lines=((1, "100.00", None),), status="sent")
        sent_to("xero", user, invoice)
        rq_workers.start(1)
        record(client, invoice, amount="100.00")
        wait_until(lambda: "choose the account for payments received" in page(client, invoice), 30,
                   "the worker to try the ledger")
        assert db.session.scalar(sa.select(PaymentLedgerLink.attempts)) == 1


def retry_url(invoice, payment) -> str:
    return f"/invoices/{invoice.id}/payments/{payment.id}/ledger-retry"


def retry_records_it_once(app, client, invoice, payment, book, html):
    """Retry on the invoice page (``html``), then the ledger holds the payment once."""
    client.post(retry_url(invoice, payment), data={"csrf_token": csrf_token_from(html)})
    assert run_ledger_jobs(app) == ["bookledger: recorded"]
    assert book.payments == {"LP-1": str(payment.id)} and "Recorded in BookLedger" in page(client, invoice)


def test_without_a_job_queue_the_payment_says_so_and_retry_records_it(app, client, user, invoice, book, monkeypatch):
    """Redis down when a payment is recorded: its ledger link must not read
    "Being recorded…" for ever with no job coming."""
    sent_to("bookledger", user, invoice)
    with monkeypatch.context() as queue_down:
        queue_down.setattr(jobs, "enqueue", lambda *args, **kwargs: False)
        record(client, invoice, amount="40.00")
    payment = db.session.scalar(sa.select(Payment))
    html = page(client, invoice)
    assert jobs.QUEUE_UNAVAILABLE in html and f'id="ledger-retry-{payment.id}"' in html
    assert "Being recorded in BookLedger" not in html

    retry_records_it_once(app, client, invoice, payment, book, html)


def test_a_recording_whose_job_was_lost_offers_retry_and_records_once(app, client, user, invoice, book):
    sent_to("bookledger", user, invoice)
    record(client, invoice, amount="40.00")
    for job in app.push_queue.get_jobs():
        job.delete()  # Redis emptied, or the worker killed mid-call
    lost_at = utcnow() - timedelta(minutes=11)
    db.session.execute(sa.update(PaymentLedgerLink).values(state="recording", updated_at=lost_at))
    db.session.commit()
    payment = db.session.scalar(sa.select(Payment))
    html = page(client, invoice)
    assert "Recording in BookLedger stopped before it finished. Retry to try again." in html
    assert f'id="ledger-retry-{payment.id}"' in html

    retry_records_it_once(app, client, invoice, payment, book, html)


def test_a_payment_reversed_while_the_ledger_records_it_is_reversed_there_too(app, client, user, invoice, book):
    sent_to("bookledger", user, invoice)
    record(client, invoice, amount="40.00")
    payment = db.session.scalar(sa.select(Payment))
    csrf = csrf_token_from(page(client, invoice))
    record_in_book = book.record_payment

    def reversed_meanwhile(connection, invoice_link, paid):
        ledger_id = record_in_book(connection, invoice_link, paid)
        # A person reverses it in another request while the ledger's answer is on its way.
        client.post(f"/invoices/{invoice.id}/payments/{payment.id}/reverse", data={"csrf_token": csrf})
        return ledger_id

    book.record_payment = reversed_meanwhile
    assert run_ledger_jobs(app) == ["bookledger: recorded"]
    book.record_payment = record_in_book
    assert run_ledger_jobs(app) == ["bookledger: reversed"]
    assert book.calls == [("record", "remote-inv-1", "40.00"), ("reverse", "LP-1")] and book.payments == {}
    assert "Reversed in BookLedger" in page(client, invoice)
