"""A card payment page left open must not take a second payment.

Each Stripe Checkout page PlanMan opens is remembered; once the invoice needs
less than the page asks for (paid by other means, voided, back to draft, a
lower total) a job expires it at Stripe, on the firm's account. What Stripe
receives is captured with ``responses``; the job runs as the worker runs it."""
from __future__ import annotations

import json
import re

import pytest
import responses
import sqlalchemy as sa
from rq.registry import ScheduledJobRegistry

from planman import jobs
from planman.extensions import db
from planman.integrations.gocardless.models import GoCardlessCollection
from planman.models import Connection, OpenPaymentPage
from tests.conftest import csrf_token_from
from tests.gocardless_helpers import FakeGoCardless, active_mandate
from tests.gocardless_helpers import connect as connect_gocardless
from tests.gocardless_helpers import payment as gc_payment
from tests.helpers import committed_rows, post_form, tax_rate
from tests.test_gocardless import collect
from tests.test_payments import record
from tests.test_stripe import (ACCOUNT, API, CONNECT, SESSION_URL, attempt_of, connect, deliver,  # noqa: F401
                               disconnect, invoice, pay_page, process_all, stripe_api, stripe_event, user)

EXPIRE = f"{API}/v1/checkout/sessions/cs_test_1/expire"
RETRIEVE = f"{API}/v1/checkout/sessions/cs_test_1"
CLOSE_JOB = "planman.jobs.close_payment_pages"


def press_pay_by_card(app, client, invoice, stripe_api):
    stripe_api.post(f"{API}/v1/checkout/sessions", json={"id": "cs_test_1", "object": "checkout.session",
                                                          "url": SESSION_URL, "status": "open"})
    browser, path, html = pay_page(app, client, invoice)
    response = browser.post(f"{path}/stripe", data={"csrf_token": csrf_token_from(html), "attempt": attempt_of(html)})
    assert response.status_code == 303 and response.headers["Location"] == SESSION_URL


def run_close_jobs(app) -> list[str]:
    """What a worker does with the queued closing jobs, in order."""
    results = []
    for job in app.push_queue.get_jobs():
        if job.func_name == CLOSE_JOB:
            results.append(jobs.close_payment_pages(*job.args))
            job.delete()
    db.session.expire_all()
    return results


def calls_to(stripe_api, url: str) -> list:
    return [call.request for call in stripe_api.calls if call.request.url == url]


def edit(client, invoice, user, **changes):
    vat = tax_rate(user, "VAT 20%")
    line = invoice.lines[0]
    data = {"number": invoice.number, "client_id": str(invoice.client_id), "issue_date": "2026-01-05",
            "due_date": "2026-02-04", "currency": "GBP", "reference": "", "amounts_are": "exclusive",
            "status": "sent", "lines-0-line_id": str(line.id), "lines-0-description": "Work",
            "lines-0-quantity": str(line.quantity), "lines-0-unit_price": str(line.unit_price),
            "lines-0-discount_percent": "", "lines-0-tax_rate_id": str(vat.id)}
    data.update(changes)
    response = post_form(client, f"/invoices/{invoice.id}/edit", data)
    assert response.status_code == 302, response.get_data(as_text=True)


def the_page() -> OpenPaymentPage:
    return db.session.scalar(sa.select(OpenPaymentPage))


def test_the_page_stripe_opened_is_remembered_once(app, client, user, invoice, stripe_api):
    connect(user)
    press_pay_by_card(app, client, invoice, stripe_api)
    press_pay_by_card(app, client, invoice, stripe_api)  # Stripe answers the same session again
    pages = list(db.session.scalars(sa.select(OpenPaymentPage)))
    assert [(p.firm_id, p.invoice_id, p.provider, p.reference, p.amount, p.closed_at) for p in pages] == \
        [(user.firm_id, invoice.id, "stripe", "cs_test_1", 120, None)]


def test_paying_in_full_another_way_expires_the_card_page_on_the_firms_account(app, client, user, invoice,
                                                                                stripe_api):
    connect(user)
    press_pay_by_card(app, client, invoice, stripe_api)
    stripe_api.post(EXPIRE, json={"id": "cs_test_1", "object": "checkout.session", "status": "expired"})
    record(client, invoice, amount="120.00")  # paid by bank transfer
    assert run_close_jobs(app) == ["cs_test_1: closed"]
    [sent] = calls_to(stripe_api, EXPIRE)
    assert sent.method == "POST" and sent.headers["Stripe-Account"] == ACCOUNT
    assert the_page().closed_at is not None
    # Another change to the invoice later asks Stripe nothing more.
    record(client, invoice, amount="1.00")
    assert run_close_jobs(app) == []
    assert len(calls_to(stripe_api, EXPIRE)) == 1


def test_part_paid_another_way_closes_the_page_asking_for_the_whole_amount(app, client, user, invoice,
                                                                           stripe_api):
    connect(user)
    press_pay_by_card(app, client, invoice, stripe_api)
    stripe_api.post(EXPIRE, json={"id": "cs_test_1", "object": "checkout.session", "status": "expired"})
    record(client, invoice, amount="20.00")
    assert run_close_jobs(app) == ["cs_test_1: closed"]
    assert len(calls_to(stripe_api, EXPIRE)) == 1


def test_a_page_for_no_more_than_the_invoice_still_needs_stays_open(app, client, user, invoice, stripe_api):
    connect(user)
    press_pay_by_card(app, client, invoice, stripe_api)
    edit(client, invoice, user, **{"lines-0-quantity": "4"})  # the total goes up from 120 to 240
    assert run_close_jobs(app) == ["cs_test_1: still needed"]
    assert calls_to(stripe_api, EXPIRE) == [] and the_page().closed_at is None


@pytest.mark.parametrize("status", ["void", "draft"])
def test_voiding_or_taking_the_invoice_back_to_draft_closes_the_page(app, client, user, invoice, stripe_api,
                                                                     status):
    connect(user)
    press_pay_by_card(app, client, invoice, stripe_api)
    stripe_api.post(EXPIRE, json={"id": "cs_test_1", "object": "checkout.session", "status": "expired"})
    edit(client, invoice, user, status=status)
    assert run_close_jobs(app) == ["cs_test_1: closed"]
    assert len(calls_to(stripe_api, EXPIRE)) == 1


def test_a_page_already_paid_or_expired_at_stripe_counts_as_closed(app, client, user, invoice, stripe_api):
    connect(user)
    press_pay_by_card(app, client, invoice, stripe_api)
    stripe_api.post(EXPIRE, status=400, json={"error": {
        "type": "invalid_request_error", "message": "Only Checkout Sessions with a status of `open` can be expired."}})
    stripe_api.get(RETRIEVE, json={"id": "cs_test_1", "object": "checkout.session", "status": "complete"})
    edit(client, invoice, user, status="void")
    assert run_close_jobs(app) == ["cs_test_1: closed"]
    assert the_page().closed_at is not None


def test_stripe_out_of_reach_is_tried_again_later_and_then_left_to_expire(app, client, user, invoice, stripe_api):
    connect(user)
    press_pay_by_card(app, client, invoice, stripe_api)
    stripe_api.post(EXPIRE, status=503, json={"error": {"type": "api_error", "message": "unavailable"}})
    edit(client, invoice, user, status="void")
    assert run_close_jobs(app) == ["cs_test_1: not closed yet"]
    page = the_page()
    assert page.closed_at is None and page.attempts == 1
    # A worker's scheduler runs it again in a minute.
    scheduled = ScheduledJobRegistry(queue=app.push_queue)
    [job_id] = scheduled.get_job_ids()
    assert app.push_queue.fetch_job(job_id).func_name == CLOSE_JOB
    for _ in range(4):
        assert jobs.close_payment_pages(invoice.id) == "cs_test_1: not closed yet"
    db.session.expire_all()
    assert the_page().attempts == 5
    assert len(scheduled.get_job_ids()) == 4  # none after the fifth try: the page expires by itself


def test_no_job_for_an_invoice_without_open_pages(app, client, user, invoice):
    connect(user)
    record(client, invoice, amount="120.00")
    edit(client, invoice, user, status="sent")
    assert [job for job in app.push_queue.get_jobs() if job.func_name == CLOSE_JOB] == []


def test_a_change_made_while_stripe_opens_the_page_still_closes_it(app, client, user, invoice, stripe_api):
    """The firm records a bank transfer in the moment Stripe takes to open the page:
    that change found no page to close, so remembering the page looks again."""
    connect(user)

    def the_firm_records_a_payment_meanwhile(request):
        assert record(client, invoice, amount="120.00").status_code == 302
        return 200, {}, json.dumps({"id": "cs_test_1", "object": "checkout.session", "url": SESSION_URL,
                                    "status": "open"})

    stripe_api.add_callback("POST", f"{API}/v1/checkout/sessions", callback=the_firm_records_a_payment_meanwhile,
                            content_type="application/json")
    stripe_api.post(EXPIRE, json={"id": "cs_test_1", "object": "checkout.session", "status": "expired"})
    browser, path, html = pay_page(app, client, invoice)
    browser.post(f"{path}/stripe", data={"csrf_token": csrf_token_from(html), "attempt": attempt_of(html)})
    assert run_close_jobs(app) == ["cs_test_1: closed"]


class TestDirectDebitMeanwhile:
    @pytest.fixture
    def gc(self):
        """GoCardless and Stripe answered by one `responses` mock."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            yield FakeGoCardless(mock)

    def open_page_and_mandate(self, app, client, user, invoice, gc):
        connect(user)
        connect_gocardless(user)
        active_mandate(user, invoice.client)
        press_pay_by_card(app, client, invoice, gc.rsps)
        gc.rsps.post(EXPIRE, json={"id": "cs_test_1", "object": "checkout.session", "status": "expired"})

    def test_collecting_by_direct_debit_closes_the_card_page(self, app, client, user, invoice, gc):
        self.open_page_and_mandate(app, client, user, invoice, gc)
        gc.add("POST", "/payments", json_body=gc_payment(invoice_id=invoice.id))
        assert collect(client, invoice).status_code == 302
        assert "cs_test_1: closed" in run_close_jobs(app)
        assert len(calls_to(gc.rsps, EXPIRE)) == 1 and the_page().closed_at is not None

    def test_a_collection_gocardless_has_not_answered_yet_closes_it_too(self, app, client, user, invoice, gc,
                                                                        monkeypatch):
        import time
        monkeypatch.setattr(time, "sleep", lambda _: None)  # the SDK's pause between its retries
        self.open_page_and_mandate(app, client, user, invoice, gc)
        gc.add("POST", "/payments", status=503, json_body={"error": {"type": "gocardless", "code": 503}})
        collect(client, invoice)
        assert db.session.scalar(sa.select(GoCardlessCollection.status)) == "creating"  # money on its way
        assert run_close_jobs(app) == ["cs_test_1: closed"]


def test_a_new_pending_payment_from_a_provider_is_followed_up(app, client, user, invoice, stripe_api):
    """Money on its way is a change even though the new payment starts where it stays (pending)."""
    from planman.payments import services

    connect(user)
    press_pay_by_card(app, client, invoice, stripe_api)
    services.record_provider_payment(invoice, provider="gocardless", provider_payment_id="PM1", amount=120,
                                     method="direct_debit", state="pending")
    assert [job.args for job in app.push_queue.get_jobs() if job.func_name == CLOSE_JOB] == [(invoice.id,)]


class TestDisconnecting:
    @pytest.fixture(autouse=True)
    def connected(self, user):
        connect(user)
        connection = db.session.scalar(sa.select(Connection))
        connection.token_ciphertext = "x"  # what a connect stores
        db.session.commit()

    def test_closes_the_open_pages_before_planman_loses_the_account(self, app, client, user, invoice, stripe_api):
        press_pay_by_card(app, client, invoice, stripe_api)
        stripe_api.post(EXPIRE, json={"id": "cs_test_1", "object": "checkout.session", "status": "expired"})
        stripe_api.post(f"{CONNECT}/oauth/deauthorize", json={"stripe_user_id": ACCOUNT})
        disconnect(client)
        urls = [call.request.url for call in stripe_api.calls]
        assert urls.index(EXPIRE) < urls.index(f"{CONNECT}/oauth/deauthorize")
        assert the_page().closed_at is not None

    def test_says_so_when_a_page_could_not_be_closed(self, app, client, user, invoice, stripe_api):
        press_pay_by_card(app, client, invoice, stripe_api)
        stripe_api.post(EXPIRE, status=503, json={"error": {"type": "api_error", "message": "unavailable"}})
        stripe_api.post(f"{CONNECT}/oauth/deauthorize", json={"stripe_user_id": ACCOUNT})
        done = post_form(client, "/integrations/stripe/disconnect", {}, form_url="/integrations/stripe",
                         follow_redirects=True)
        html = done.get_data(as_text=True)
        assert "Disconnected from" in html
        assert re.search(r"A payment page a client opened could not be closed: it can still be paid for up to "
                         r"(59|60) minutes, and a payment made there is applied when you connect this account "
                         r"again\.", html)

    def test_from_stripes_side_asks_stripe_nothing_and_commits_once(self, app, client, user, invoice, stripe_api):
        """Stripe ended the access already: closing the pages could only fail, and the
        disconnect's state and reason still go in one commit."""
        press_pay_by_card(app, client, invoice, stripe_api)
        asked_before = len(stripe_api.calls)
        deliver(client, stripe_event("evt_deauth", "account.application.deauthorized",
                                     {"id": "ca_test_planman", "object": "application", "name": "PlanMan"}))
        with committed_rows(Connection.state, Connection.token_ciphertext) as commits:
            assert process_all() == {"evt_deauth": "processed"}
        assert len(stripe_api.calls) == asked_before
        states = [row for rows in commits for row in rows]
        assert ("connected", None) not in states and states[-1] == ("disconnected", None)


def test_a_closing_redis_could_not_take_is_queued_by_the_sweep(app, client, user, invoice, stripe_api, monkeypatch):
    from redis.exceptions import ConnectionError as RedisDown

    connect(user)
    press_pay_by_card(app, client, invoice, stripe_api)
    stripe_api.post(EXPIRE, json={"id": "cs_test_1", "object": "checkout.session", "status": "expired"})

    def redis_down(*args, **kwargs):
        raise RedisDown("Redis is restarting")

    with monkeypatch.context() as patch:
        patch.setattr(app.push_queue, "enqueue", redis_down)
        assert record(client, invoice, amount="120.00").status_code == 302  # paid; the closing not queued
    assert run_close_jobs(app) == []

    sweep = app.test_cli_runner().invoke(args=["close-payment-pages"])  # cron, once Redis is back
    assert sweep.output.strip() == "1 invoice(s) queued to close payment pages."
    assert run_close_jobs(app) == ["cs_test_1: closed"]
    assert app.test_cli_runner().invoke(args=["close-payment-pages"]).output.startswith("0 invoice(s)")


def test_the_sweep_leaves_pages_still_needed_alone(app, client, user, invoice, stripe_api):
    connect(user)
    press_pay_by_card(app, client, invoice, stripe_api)
    assert app.test_cli_runner().invoke(args=["close-payment-pages"]).output.startswith("0 invoice(s)")
    assert run_close_jobs(app) == []


def test_a_currency_change_closes_the_page_asking_in_the_old_one(app, client, user, invoice, stripe_api):
    connect(user)
    press_pay_by_card(app, client, invoice, stripe_api)
    stripe_api.post(EXPIRE, json={"id": "cs_test_1", "object": "checkout.session", "status": "expired"})
    edit(client, invoice, user, currency="EUR")  # the same 120, now in euros
    assert run_close_jobs(app) == ["cs_test_1: closed"]
