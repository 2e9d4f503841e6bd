"""Retry on the invoice page for a payment the ledger failed to record: a POST with CSRF, scoped to
the firm, that queues the recording once more after the person fixed the cause."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations import registry
from planman.integrations.errors import IntegrationError
from planman.models import Payment, PaymentLedgerLink
from tests.conftest import csrf_token_from
from tests.helpers import make_client, make_invoice, new_client, post_form, signup
from tests.test_payments import record
from tests.test_payments_ledger import BookLedger, page, run_ledger_jobs, sent_to


class RefusingLedger(BookLedger):
    """Refuses until told otherwise, as a ledger does until someone fixes the cause."""

    key, label = "refusingledger", "RefusingLedger"
    refuse = True

    def record_payment(self, connection, invoice_link, payment) -> str:
        if self.refuse:
            self.calls.append(("refused",))
            raise IntegrationError("Not recorded in RefusingLedger: approve the invoice there first.")
        return super().record_payment(connection, invoice_link, payment)


@pytest.fixture
def ledger_provider(monkeypatch):
    provider = RefusingLedger()
    monkeypatch.setitem(registry.PROVIDERS, provider.key, provider)
    return provider


@pytest.fixture
def user(client):
    return signup(client)


@pytest.fixture
def failed(app, client, user, ledger_provider):
    invoice = make_invoice(user, make_client(user), lines=((1, "100.00", None),), status="sent")
    sent_to(ledger_provider.key, user, invoice)
    record(client, invoice, amount="40.00")
    assert run_ledger_jobs(app) == ["refusingledger: failed"]
    assert app.push_queue.scheduled_job_registry.get_job_ids() == []  # not temporary: no retry of its own
    return invoice, db.session.scalar(sa.select(Payment))


def retry_url(invoice, payment) -> str:
    return f"/invoices/{invoice.id}/payments/{payment.id}/ledger-retry"


def test_a_failed_recording_offers_retry_which_records_it_once_fixed(app, client, failed, ledger_provider):
    invoice, payment = failed
    html = page(client, invoice)
    assert "approve the invoice there first." in html and f'id="ledger-retry-{payment.id}"' in html
    ledger_provider.refuse = False  # the person approved the invoice in the ledger

    answer = client.post(retry_url(invoice, payment), data={"csrf_token": csrf_token_from(html)})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/invoices/{invoice.id}#payments")
    after = page(client, invoice)
    assert "Trying again to record this payment in your ledger." in after
    assert "Being recorded in RefusingLedger" in after and f'id="ledger-retry-{payment.id}"' not in after
    # A second click before the worker ran queues nothing more.
    client.post(retry_url(invoice, payment), data={"csrf_token": csrf_token_from(after)})
    assert "Nothing to retry" in page(client, invoice)

    assert run_ledger_jobs(app) == ["refusingledger: recorded"]
    assert list(ledger_provider.payments.values()) == [str(payment.id)]
    done = page(client, invoice)
    assert "Recorded in RefusingLedger" in done and "ledger-retry-" not in done
    link = db.session.scalar(sa.select(PaymentLedgerLink))
    assert (link.state, link.attempts, link.error) == ("recorded", 1, "")


def test_retry_needs_the_csrf_token(client, failed):
    invoice, payment = failed
    assert client.post(retry_url(invoice, payment)).status_code == 400
    assert db.session.scalar(sa.select(PaymentLedgerLink.state)) == "failed"


def test_another_firms_payment_is_a_404(app, failed):
    invoice, payment = failed
    other = new_client(app)
    signup(other)
    assert post_form(other, retry_url(invoice, payment), {}, form_url="/clients/").status_code == 404
    assert db.session.scalar(sa.select(PaymentLedgerLink.state)) == "failed"


def test_a_payment_of_another_invoice_is_a_404(client, user, failed):
    invoice, payment = failed
    other_invoice = make_invoice(user, make_client(user, name="Other Ltd"), lines=((1, "10.00", None),))
    token = csrf_token_from(page(client, invoice))
    assert client.post(retry_url(other_invoice, payment), data={"csrf_token": token}).status_code == 404
