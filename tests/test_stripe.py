"""Stripe as PlanMan's card-payment provider, through HTTP, with `responses`
playing Stripe as REFERENCE.md documents it (the official SDK sends the
requests; the assertions are on what it really sent).

Connect To Stripe (OAuth for Standard accounts), the account's state, the
pay button's Checkout Session on the firm's account, and the Connect
webhook: signature checks on the raw body, then events processed by the
intake's worker function in any order and any number of times."""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import sqlalchemy as sa
import stripe

from planman.extensions import db
from planman.integrations import webhooks
from planman.models import Connection, Invoice, Payment, WebhookEvent, utcnow
from tests.conftest import csrf_token_from
from tests.helpers import committed_rows, make_client, make_invoice, new_client, post_form, signup, tax_rate  # noqa: F401
from tests.test_payments_page import link_on_page, make_link

API = "https://api.stripe.com"
CONNECT = "https://connect.stripe.com"
SECRET = "whsec_test_planman"
ACCOUNT = "acct_1FirmAccount"


@pytest.fixture
def user(client):
    return signup(client, firm_name="Reid & Co Accountants")


@pytest.fixture
def invoice(user):
    return make_invoice(user, make_client(user, name="Acme Ltd"), lines=((2, "50.00", tax_rate(user, "VAT 20%")),),
                        status="sent")


@pytest.fixture
def stripe_api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def account(charges_enabled=True, due=()):
    return {"id": ACCOUNT, "object": "account", "charges_enabled": charges_enabled, "details_submitted": True,
            "payouts_enabled": charges_enabled, "business_profile": {"name": "Reid & Co Accountants Ltd"},
            "requirements": {"currently_due": list(due), "past_due": [], "disabled_reason": None}}


def connect(user, account_id=ACCOUNT, charges_enabled=True):
    db.session.add(Connection(firm_id=user.firm_id, provider="stripe", state="connected", tenant_id=account_id,
                              tenant_name="Reid & Co Accountants Ltd", connected_at=utcnow(),
                              settings={"tenant_id": account_id,  # as a connect stores it
                                        "stripe_account": {"charges_enabled": charges_enabled}}))
    db.session.commit()


def connect_through_stripe(client, stripe_api, account_id=ACCOUNT):
    """Connect To Stripe as an admin does: the button, Stripe's consent, the callback."""
    started = post_form(client, "/integrations/stripe/connect", {}, form_url="/integrations/stripe")
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    stripe_api.post(f"{CONNECT}/oauth/token", json={
        "access_token": "sk_test_account_token", "token_type": "bearer", "stripe_publishable_key": "pk_test_x",
        "stripe_user_id": account_id, "scope": "read_write", "livemode": False})
    assert client.get(f"/integrations/stripe/callback?code=ac_123&state={state}").status_code == 302


def a_payment_waiting_for_the_account(client, user, invoice):
    """The firm disconnected; then a payment a client made on a page opened before arrived."""
    connect(user)
    disconnect(client)
    deliver(client, stripe_event("evt_late_payment", "checkout.session.completed", paid_session(invoice)))
    assert process_all() == {"evt_late_payment": "waiting"}


def disconnect(client):
    done = post_form(client, "/integrations/stripe/disconnect", {}, form_url="/integrations/stripe",
                     follow_redirects=True)
    assert "Disconnected from" in done.get_data(as_text=True)


def form(request) -> dict:
    return {key: values[0] for key, values in parse_qs(request.body if isinstance(request.body, str)
                                                       else request.body.decode()).items()}


# -- Connect To Stripe -----------------------------------------------------------------------------

class TestConnect:
    def test_the_walk_stores_the_account_and_shows_what_stripe_needs(self, app, client, user, stripe_api):
        index = client.get("/integrations/").get_data(as_text=True)
        assert 'href="/integrations/stripe">Stripe</a>' in index and "Set up Stripe" in index
        page = client.get("/integrations/stripe").get_data(as_text=True)
        assert '>Connect To Stripe</button>' in page
        started = post_form(client, "/integrations/stripe/connect", {}, form_url="/integrations/stripe")
        assert started.status_code == 302
        authorize = urlsplit(started.headers["Location"])
        query = {key: values[0] for key, values in parse_qs(authorize.query).items()}
        assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{CONNECT}/oauth/authorize"
        assert query["client_id"] == "ca_test_planman" and query["response_type"] == "code"
        assert query["scope"] == "read_write"
        assert query["redirect_uri"] == "http://planman.test/integrations/stripe/callback"
        assert len(query["state"]) >= 32

        stripe_api.post(f"{CONNECT}/oauth/token", json={
            "access_token": "sk_test_account_token", "refresh_token": "rt_x", "token_type": "bearer",
            "stripe_publishable_key": "pk_test_x", "stripe_user_id": ACCOUNT, "scope": "read_write",
            "livemode": False})
        stripe_api.get(f"{API}/v1/accounts/{ACCOUNT}",
                       json=account(charges_enabled=False, due=["individual.verification.document"]))
        back = client.get(f"/integrations/stripe/callback?code=ac_123&state={query['state']}")
        assert back.status_code == 302
        token_call = stripe_api.calls[0].request
        assert token_call.headers["Authorization"] == "Bearer sk_test_planman_platform"
        assert form(token_call) == {"grant_type": "authorization_code", "code": "ac_123"}
        connection = db.session.scalar(sa.select(Connection).where(Connection.provider == "stripe"))
        assert connection.state == "connected" and connection.tenant_id == ACCOUNT
        assert "sk_test_account_token" not in (connection.token_ciphertext or "")

        # The worker loads the account (its job, run here in-process).
        from planman.integrations.connections import refresh_tenant_details
        assert refresh_tenant_details(connection.id) == "loaded"
        assert stripe_api.calls[1].request.headers["Authorization"] == "Bearer sk_test_planman_platform"
        html = client.get("/integrations/stripe").get_data(as_text=True)
        assert "Reid &amp; Co Accountants Ltd" in html and ACCOUNT in html
        assert "Not enabled yet" in html and "individual verification document" in html

    def test_a_forged_or_reused_state_changes_nothing(self, app, client, user, stripe_api):
        post_form(client, "/integrations/stripe/connect", {}, form_url="/integrations/stripe")
        back = client.get("/integrations/stripe/callback?code=ac_123&state=forged", follow_redirects=True)
        assert "already used or did not start here" in back.get_data(as_text=True)
        assert not stripe_api.calls and db.session.scalar(sa.select(Connection)) is None

    def test_declining_on_stripe_says_so(self, app, client, user, stripe_api):
        started = post_form(client, "/integrations/stripe/connect", {}, form_url="/integrations/stripe")
        state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
        back = client.get(f"/integrations/stripe/callback?error=access_denied&state={state}",
                          follow_redirects=True)
        assert "You did not allow PlanMan to use Stripe" in back.get_data(as_text=True)
        assert db.session.scalar(sa.select(Connection)) is None

    def test_an_expired_code_is_explained(self, app, client, user, stripe_api):
        started = post_form(client, "/integrations/stripe/connect", {}, form_url="/integrations/stripe")
        state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
        stripe_api.post(f"{CONNECT}/oauth/token", status=400, json={
            "error": "invalid_grant", "error_description": "Authorization code does not exist: ac_old"})
        back = client.get(f"/integrations/stripe/callback?code=ac_old&state={state}", follow_redirects=True)
        assert "Stripe did not accept that sign-in" in back.get_data(as_text=True)
        assert db.session.scalar(sa.select(Connection)) is None

    def test_disconnect_deauthorizes_the_account(self, app, client, user, stripe_api):
        connect(user)
        connection = db.session.scalar(sa.select(Connection))
        connection.token_ciphertext = "x"  # what a connect stores
        db.session.commit()
        stripe_api.post(f"{CONNECT}/oauth/deauthorize", json={"stripe_user_id": ACCOUNT})
        done = post_form(client, "/integrations/stripe/disconnect", {}, form_url="/integrations/stripe",
                         follow_redirects=True)
        assert "Disconnected from Reid &amp; Co Accountants Ltd" in done.get_data(as_text=True)
        call = stripe_api.calls[0].request
        assert call.headers["Authorization"] == "Bearer sk_test_planman_platform"
        assert form(call) == {"client_id": "ca_test_planman", "stripe_user_id": ACCOUNT}
        db.session.expire_all()
        assert db.session.scalar(sa.select(Connection)).state == "disconnected"


# -- Pay by card --------------------------------------------------------------------------------------

SESSION_URL = "https://checkout.stripe.com/c/pay/cs_test_1"


def pay_page(app, client, invoice):
    url = make_link(client, invoice)
    browser = new_client(app)
    path = url.removeprefix(app.config["PUBLIC_BASE_URL"])
    return browser, path, browser.get(path).get_data(as_text=True)


def attempt_of(html: str) -> str:
    import re
    return re.search(r'name="attempt" value="([0-9a-f]{32})"', html).group(1)


class TestPayByCard:
    def test_no_pay_by_card_while_the_accounts_charges_are_not_enabled(self, app, client, user, invoice,
                                                                         stripe_api):
        connect(user, charges_enabled=False)
        browser, path, html = pay_page(app, client, invoice)
        assert ">Pay by card</button>" not in html
        assert "Online payment is not set up for this invoice" in html  # how else to pay, instead
        # A hand-made POST (the form is not there: its token is taken from the log-in page) is refused too.
        token = csrf_token_from(browser.get("/login").get_data(as_text=True))
        refused = browser.post(f"{path}/stripe", data={"csrf_token": token, "attempt": "a" * 32})
        # Back to the page, which says how else to pay; Stripe is not asked.
        assert refused.status_code == 302 and refused.headers["Location"].endswith(path)
        assert len(stripe_api.calls) == 0
        firm_page = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
        assert "Online payment is not set up, so the page tells your client how else to pay." in firm_page

        deliver(client, stripe_event("evt_acct", "account.updated", account(charges_enabled=True)))
        process_all()
        assert ">Pay by card</button>" in browser.get(path).get_data(as_text=True)

    def test_the_button_creates_a_session_on_the_firms_account(self, app, client, user, invoice, stripe_api):
        connect(user)
        stripe_api.post(f"{API}/v1/checkout/sessions", json={"id": "cs_test_1", "object": "checkout.session",
                                                              "url": SESSION_URL, "status": "open"})
        browser, path, html = pay_page(app, client, invoice)
        assert ">Pay by card</button>" in html
        attempt = attempt_of(html)
        response = browser.post(f"{path}/stripe", data={"csrf_token": csrf_token_from(html), "attempt": attempt})
        assert response.status_code == 303 and response.headers["Location"] == SESSION_URL
        sent = stripe_api.calls[0].request
        assert sent.headers["Authorization"] == "Bearer sk_test_planman_platform"
        assert sent.headers["Stripe-Account"] == ACCOUNT
        key = sent.headers["Idempotency-Key"]
        # The Checkout page can be paid for an hour after the payment page was shown, no longer.
        shown_at = int(attempt[:10])
        assert abs(shown_at - time.time()) < 60
        expires_at = shown_at + 3600
        assert key == f"planman-invoice-{invoice.id}-12000-{attempt}-{expires_at}"
        assert form(sent) == {
            "mode": "payment",
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": "gbp",
            "line_items[0][price_data][unit_amount]": "12000",
            "line_items[0][price_data][product_data][name]": f"Invoice {invoice.number} from Reid & Co Accountants",
            "client_reference_id": str(invoice.id),
            "metadata[planman_invoice_id]": str(invoice.id),
            "payment_intent_data[metadata][planman_invoice_id]": str(invoice.id),
            "success_url": f"http://planman.test{path}?returned=stripe",
            "expires_at": str(expires_at),
            "cancel_url": f"http://planman.test{path}",
        }
        # The same form sent again (a double click, a browser retry): the same key;
        # a new visit of the page: a new attempt and a new key.
        browser.post(f"{path}/stripe", data={"csrf_token": csrf_token_from(html), "attempt": attempt})
        assert stripe_api.calls[1].request.headers["Idempotency-Key"] == key
        again = browser.get(path).get_data(as_text=True)
        browser.post(f"{path}/stripe", data={"csrf_token": csrf_token_from(again), "attempt": attempt_of(again)})
        assert stripe_api.calls[2].request.headers["Idempotency-Key"] not in (key, "")

    def test_a_payment_page_left_open_long_gets_a_checkout_page_that_expires_from_now(self, app, client, user,
                                                                                        invoice, stripe_api):
        connect(user)
        stripe_api.post(f"{API}/v1/checkout/sessions", json={"id": "cs_test_1", "object": "checkout.session",
                                                              "url": SESSION_URL, "status": "open"})
        browser, path, html = pay_page(app, client, invoice)
        stale = f"{int(time.time()) - 2 * 3600:010d}" + attempt_of(html)[10:]  # shown two hours ago
        browser.post(f"{path}/stripe", data={"csrf_token": csrf_token_from(html), "attempt": stale})
        expires_at = int(form(stripe_api.calls[0].request)["expires_at"])
        assert 3540 <= expires_at - time.time() <= 3600  # an hour from now: Stripe refuses a time already past

    def test_coming_back_says_the_payment_is_being_confirmed_and_marks_nothing(self, app, client, user, invoice):
        connect(user)
        browser, path, _ = pay_page(app, client, invoice)
        html = browser.get(f"{path}?returned=stripe").get_data(as_text=True)
        assert "Your payment is being confirmed by Stripe" in html
        assert ">Pay by card</button>" not in html  # no second payment while the first is confirmed
        db.session.expire_all()
        assert db.session.get(Invoice, invoice.id).status == "sent"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0

    def test_a_three_decimal_currency_is_charged_and_read_back_in_thousandths(self, app, client, user, invoice,
                                                                              stripe_api):
        connect(user)
        invoice.currency = "KWD"
        db.session.commit()
        stripe_api.post(f"{API}/v1/checkout/sessions", json={"id": "cs_test_1", "object": "checkout.session",
                                                              "url": SESSION_URL, "status": "open"})
        browser, path, html = pay_page(app, client, invoice)
        browser.post(f"{path}/stripe", data={"csrf_token": csrf_token_from(html), "attempt": attempt_of(html)})
        sent = form(stripe_api.calls[0].request)
        assert (sent["line_items[0][price_data][currency]"], sent["line_items[0][price_data][unit_amount]"]) == \
            ("kwd", "120000")  # 120.000 KWD, not 12.000
        deliver(client, stripe_event("evt_paid", "checkout.session.completed",
                                     paid_session(invoice) | {"amount_total": 120000, "currency": "kwd"}))
        process_all()
        assert [(p.amount, p.currency) for p in db.session.scalars(sa.select(Payment))] == [(120, "KWD")]
        assert db.session.get(Invoice, invoice.id).status == "paid"

    def test_an_amount_stripe_cannot_charge_exactly_offers_no_card(self, app, client, user, stripe_api):
        connect(user)
        yen = make_invoice(user, make_client(user, name="Tanaka KK"), lines=((1, "1000.50", None),), status="sent")
        yen.currency = "JPY"  # yen have no fractions: Stripe cannot charge 1000.50
        db.session.commit()
        browser, path, html = pay_page(app, client, yen)
        assert ">Pay by card</button>" not in html and "Online payment is not set up for this invoice" in html
        token = csrf_token_from(browser.get("/login").get_data(as_text=True))
        assert browser.post(f"{path}/stripe", data={"csrf_token": token, "attempt": "a" * 32}).status_code == 302
        assert len(stripe_api.calls) == 0

    def test_a_payment_on_its_way_for_part_of_the_invoice_is_not_charged_again(self, app, client, user, invoice,
                                                                                 stripe_api):
        from datetime import date

        connect(user)
        db.session.add(Payment(firm_id=user.firm_id, invoice_id=invoice.id, amount=20, currency="GBP",
                               paid_on=date.today(), method="card", state="pending", provider="stripe",
                               provider_payment_id="pi_0", reference="pi_0"))  # still being confirmed
        db.session.commit()
        stripe_api.post(f"{API}/v1/checkout/sessions", json={"id": "cs_test_1", "object": "checkout.session",
                                                              "url": SESSION_URL, "status": "open"})
        browser, path, html = pay_page(app, client, invoice)
        assert "Left to pay once it arrives: <strong id=\"pay-left\">GBP 100.00</strong>" in " ".join(html.split())
        browser.post(f"{path}/stripe", data={"csrf_token": csrf_token_from(html), "attempt": attempt_of(html)})
        assert form(stripe_api.calls[0].request)["line_items[0][price_data][unit_amount]"] == "10000"

    def test_a_draft_invoice_offers_no_way_to_pay_yet(self, app, client, user, stripe_api):
        connect(user)
        draft = make_invoice(user, make_client(user, name="Acme Ltd"), status="draft")
        browser, path, html = pay_page(app, client, draft)
        assert ">Pay by card</button>" not in html
        assert "This invoice is not ready to be paid yet:" in html

    def test_stripe_refusing_the_session_is_said_plainly(self, app, client, user, invoice, stripe_api):
        connect(user)
        stripe_api.post(f"{API}/v1/checkout/sessions", status=400, json={"error": {
            "type": "invalid_request_error", "message": "This account cannot currently make live charges."}})
        browser, path, html = pay_page(app, client, invoice)
        response = browser.post(f"{path}/stripe", data={"csrf_token": csrf_token_from(html),
                                                        "attempt": attempt_of(html)})
        assert response.status_code == 503
        assert "Card payment is not available right now" in response.get_data(as_text=True)

    def test_another_firms_payment_link_is_a_404(self, app, client, user, invoice):
        connect(user)
        url = make_link(client, invoice)
        other = new_client(app)
        signup(other)
        assert other.post(f"/invoices/{invoice.id}/payment-link").status_code in (400, 404)
        response = post_form(other, f"/invoices/{invoice.id}/payment-link", {}, form_url="/clients/")
        assert response.status_code == 404 and link_on_page(client, invoice) == url


# -- webhooks -----------------------------------------------------------------------------------------

def stripe_event(event_id: str, event_type: str, obj: dict, account_id=ACCOUNT) -> dict:
    return {"id": event_id, "object": "event", "type": event_type, "account": account_id, "livemode": False,
            "api_version": "2026-10-28.endive", "created": int(time.time()), "data": {"object": obj}}


def deliver(client, event: dict, *, secret=SECRET, timestamp=None, body: bytes | None = None):
    raw = body if body is not None else json.dumps(event).encode()
    header = stripe.WebhookSignature.generate_signature_header(raw.decode(), secret, timestamp=timestamp)
    return client.post("/webhooks/stripe", data=raw, headers={"Stripe-Signature": header},
                       content_type="application/json")


def process_all() -> dict:
    """What the worker does with each queued event (webhooks.process is the job's body)."""
    for row_id in list(db.session.scalars(sa.select(WebhookEvent.id).where(WebhookEvent.state == "queued")
                                          .order_by(WebhookEvent.id))):
        webhooks.process(row_id)
    db.session.expire_all()
    return {row.event_id: row.state for row in db.session.scalars(sa.select(WebhookEvent))}


def paid_session(invoice, intent="pi_1", status="paid"):
    return {"id": "cs_test_1", "object": "checkout.session", "payment_status": status, "status": "complete",
            "payment_intent": intent, "amount_total": 12000, "currency": "gbp",
            "client_reference_id": str(invoice.id), "metadata": {"planman_invoice_id": str(invoice.id)}}


def intent(invoice, intent_id="pi_1", status="succeeded", error=None):
    return {"id": intent_id, "object": "payment_intent", "amount": 12000, "amount_received": 12000,
            "currency": "gbp", "status": status, "metadata": {"planman_invoice_id": str(invoice.id)},
            "last_payment_error": error}


def invoice_html(client, invoice) -> str:
    return client.get(f"/invoices/{invoice.id}").get_data(as_text=True)


class TestWebhooks:
    def test_a_paid_session_pays_the_invoice_once_however_often_delivered(self, app, client, user, invoice):
        connect(user)
        event = stripe_event("evt_paid", "checkout.session.completed", paid_session(invoice))
        for _ in range(3):
            assert deliver(client, event).status_code == 200
        assert process_all() == {"evt_paid": "processed"}
        # Stripe delivering it again later, after processing: nothing new.
        assert deliver(client, event).get_json() == {"received": 1, "new": 0}
        payments = list(db.session.scalars(sa.select(Payment)))
        assert [(p.provider_payment_id, p.state, p.amount, p.method) for p in payments] == \
            [("pi_1", "succeeded", 120, "card")]
        html = invoice_html(client, invoice)
        assert "status-paid" in html and "pi_1" in html

    def test_without_a_webhook_secret_nothing_is_accepted(self, app, client, user, invoice, monkeypatch):
        connect(user)
        monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", "")
        event = stripe_event("evt_paid", "checkout.session.completed", paid_session(invoice))
        assert deliver(client, event, secret="").status_code == 404  # signed with the empty key
        assert db.session.scalar(sa.select(WebhookEvent)) is None

    def test_a_live_mode_event_on_a_test_platform_is_not_kept(self, app, client, user, invoice):
        connect(user)
        event = stripe_event("evt_live", "checkout.session.completed", paid_session(invoice)) | {"livemode": True}
        response = deliver(client, event)
        assert response.status_code == 200 and response.get_json() == {"received": 0, "new": 0}
        assert db.session.scalar(sa.select(WebhookEvent)) is None

    def test_an_unpaid_completed_session_marks_nothing(self, app, client, user, invoice):
        connect(user)
        deliver(client, stripe_event("evt_c", "checkout.session.completed", paid_session(invoice, status="unpaid")))
        assert process_all() == {"evt_c": "processed"}
        assert db.session.scalar(sa.select(Payment)) is None
        assert db.session.get(Invoice, invoice.id).status == "sent"

    @pytest.mark.parametrize("how", ["unsigned", "other secret", "stale", "body changed"])
    def test_a_forged_or_stale_delivery_is_refused_and_nothing_kept(self, app, client, user, invoice, how):
        connect(user)
        event = stripe_event("evt_forged", "checkout.session.completed", paid_session(invoice))
        raw = json.dumps(event).encode()
        if how == "unsigned":
            response = client.post("/webhooks/stripe", data=raw, content_type="application/json")
            assert response.status_code == 400
        elif how == "other secret":
            assert deliver(client, event, secret="whsec_guessed").status_code == 401
        elif how == "stale":
            assert deliver(client, event, timestamp=int(time.time()) - 600).status_code == 401
        else:
            header = stripe.WebhookSignature.generate_signature_header(raw.decode(), SECRET)
            tampered = raw.replace(b"12000", b"99999")
            response = client.post("/webhooks/stripe", data=tampered, headers={"Stripe-Signature": header},
                                   content_type="application/json")
            assert response.status_code == 401
        assert db.session.scalar(sa.select(WebhookEvent)) is None
        assert db.session.scalar(sa.select(Payment)) is None

    def test_a_declined_card_leaves_the_invoice_unpaid_with_the_reason(self, app, client, user, invoice):
        connect(user)
        declined = intent(invoice, status="requires_payment_method",
                          error={"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                                 "message": "Your card was declined."})
        deliver(client, stripe_event("evt_fail", "payment_intent.payment_failed", declined))
        assert process_all() == {"evt_fail": "processed"}
        payment = db.session.scalar(sa.select(Payment))
        assert payment.state == "failed" and payment.note == "Your card was declined."
        html = invoice_html(client, invoice)
        assert "Your card was declined." in html and "status-paid" not in html
        assert db.session.get(Invoice, invoice.id).amount_paid == 0
        # The client tries another card on the same Checkout page: the same
        # PaymentIntent succeeds, and the invoice is paid.
        deliver(client, stripe_event("evt_paid", "checkout.session.completed", paid_session(invoice)))
        process_all()
        assert [p.state for p in db.session.scalars(sa.select(Payment))] == ["succeeded"]
        assert db.session.get(Invoice, invoice.id).status == "paid"

    def test_a_late_failure_never_undoes_a_success(self, app, client, user, invoice):
        connect(user)
        deliver(client, stripe_event("evt_paid", "checkout.session.completed", paid_session(invoice)))
        deliver(client, stripe_event("evt_fail", "payment_intent.payment_failed", intent(
            invoice, status="requires_payment_method", error={"message": "Your card was declined."})))
        process_all()
        assert [p.state for p in db.session.scalars(sa.select(Payment))] == ["succeeded"]
        assert db.session.get(Invoice, invoice.id).status == "paid"

    def test_an_async_payment_pays_on_success_and_fails_with_the_reason(self, app, client, user, invoice,
                                                                          stripe_api):
        connect(user)
        deliver(client, stripe_event("evt_c", "checkout.session.completed", paid_session(invoice, status="unpaid")))
        deliver(client, stripe_event("evt_ok", "checkout.session.async_payment_succeeded", paid_session(invoice)))
        assert process_all() == {"evt_c": "processed", "evt_ok": "processed"}
        assert db.session.get(Invoice, invoice.id).status == "paid"

        second = make_invoice(user, make_client(user), lines=((1, "10.00", None),), status="sent")
        stripe_api.get(f"{API}/v1/payment_intents/pi_2", json=intent(
            second, "pi_2", status="requires_payment_method",
            error={"message": "The bank did not confirm the payment."}) | {"amount": 1000, "amount_received": 0})
        failed = paid_session(second, intent="pi_2", status="unpaid") | {"id": "cs_2"}
        deliver(client, stripe_event("evt_async_fail", "checkout.session.async_payment_failed", failed))
        process_all()
        assert stripe_api.calls[0].request.headers["Stripe-Account"] == ACCOUNT
        payment = db.session.scalar(sa.select(Payment).where(Payment.provider_payment_id == "pi_2"))
        assert payment.state == "failed" and payment.amount == 10
        assert "The bank did not confirm the payment." in invoice_html(client, second)

    def test_a_refund_arriving_before_the_success_is_not_undone_by_it(self, app, client, user, invoice,
                                                                        stripe_api):
        connect(user)
        stripe_api.get(f"{API}/v1/payment_intents/pi_1", json=intent(invoice))
        charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "amount": 12000,
                  "amount_refunded": 12000, "refunded": True, "currency": "gbp", "metadata": {}}
        deliver(client, stripe_event("evt_refund", "charge.refunded", charge))
        deliver(client, stripe_event("evt_paid", "checkout.session.completed", paid_session(invoice)))
        assert process_all() == {"evt_refund": "processed", "evt_paid": "processed"}
        # The charge names no invoice: PlanMan asked Stripe for its PaymentIntent.
        assert stripe_api.calls[0].request.headers["Stripe-Account"] == ACCOUNT
        payment = db.session.scalar(sa.select(Payment))
        assert payment.state == "refunded" and payment.provider_payment_id == "pi_1"
        assert db.session.get(Invoice, invoice.id).status == "sent" and \
            db.session.get(Invoice, invoice.id).amount_paid == 0

    def test_a_client_who_paid_twice_is_shown_as_money_to_refund(self, app, client, user, invoice):
        connect(user)
        deliver(client, stripe_event("evt_paid_1", "checkout.session.completed", paid_session(invoice)))
        # The same invoice paid again from a second Checkout page opened before the first payment.
        deliver(client, stripe_event("evt_paid_2", "checkout.session.completed", paid_session(invoice, intent="pi_2")))
        process_all()
        assert [p.amount for p in db.session.scalars(sa.select(Payment))] == [120, 120]  # received: both kept
        html = " ".join(invoice_html(client, invoice).split())
        assert "GBP 120.00 more than this invoice's total was received: refund it to the client" in html

    def test_a_payment_for_a_voided_invoice_is_shown_as_money_to_refund(self, app, client, user, invoice):
        connect(user)
        invoice.status = "void"
        db.session.commit()
        deliver(client, stripe_event("evt_paid", "checkout.session.completed", paid_session(invoice)))
        process_all()
        assert db.session.get(Invoice, invoice.id).status == "void"
        html = " ".join(invoice_html(client, invoice).split())
        assert "This invoice is void, but GBP 120.00 was received for it: refund it to the client" in html

    def test_a_refund_after_the_payment_takes_it_back(self, app, client, user, invoice):
        connect(user)
        deliver(client, stripe_event("evt_paid", "checkout.session.completed", paid_session(invoice)))
        process_all()
        charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "amount": 12000,
                  "amount_refunded": 12000, "refunded": True}
        with responses.RequestsMock() as mock:  # known payment: no call to Stripe is needed
            mock.get(f"{API}/v1/payment_intents/pi_1", json=intent(invoice))
            deliver(client, stripe_event("evt_refund", "charge.refunded", charge))
            process_all()
        payment = db.session.scalar(sa.select(Payment))
        assert payment.state == "refunded"
        assert db.session.get(Invoice, invoice.id).status == "sent"
        assert "Refunded in Stripe." in invoice_html(client, invoice)

    def test_a_dispute_flags_the_invoice(self, app, client, user, invoice, stripe_api):
        connect(user)
        deliver(client, stripe_event("evt_paid", "checkout.session.completed", paid_session(invoice)))
        stripe_api.get(f"{API}/v1/payment_intents/pi_1", json=intent(invoice))
        dispute = {"id": "dp_1", "object": "dispute", "payment_intent": "pi_1", "charge": "ch_1",
                   "amount": 12000, "reason": "fraudulent"}
        deliver(client, stripe_event("evt_dispute", "charge.dispute.created", dispute))
        process_all()
        assert db.session.scalar(sa.select(Payment)).state == "disputed"
        html = invoice_html(client, invoice)
        assert "Disputed by the card holder (fraudulent): respond in Stripe." in html
        assert db.session.get(Invoice, invoice.id).status != "paid"

    def test_an_inquiry_before_any_dispute_keeps_the_payment_and_says_so(self, app, client, user, invoice,
                                                                          stripe_api):
        connect(user)
        deliver(client, stripe_event("evt_paid", "checkout.session.completed", paid_session(invoice)))
        stripe_api.get(f"{API}/v1/payment_intents/pi_1", json=intent(invoice))
        inquiry = {"id": "dp_1", "object": "dispute", "payment_intent": "pi_1", "charge": "ch_1", "amount": 12000,
                   "reason": "general", "status": "warning_needs_response"}
        deliver(client, stripe_event("evt_inquiry", "charge.dispute.created", inquiry))
        process_all()
        assert db.session.scalar(sa.select(Payment)).state == "succeeded"
        assert db.session.get(Invoice, invoice.id).status == "paid"  # the client is not asked to pay again
        assert "The card holder&#39;s bank asked about this payment (general): respond in Stripe. No money was " \
               "taken back." in invoice_html(client, invoice)

    def test_an_event_for_another_firms_invoice_pays_nothing(self, app, client, user, invoice):
        other_client = new_client(app)
        stranger = signup(other_client)
        connect(stranger, account_id="acct_2Stranger")
        connect(user)
        # The stranger's account reports a payment naming this firm's invoice id.
        event = stripe_event("evt_x", "checkout.session.completed", paid_session(invoice), account_id="acct_2Stranger")
        deliver(client, event)
        assert process_all() == {"evt_x": "processed"}
        assert db.session.scalar(sa.select(Payment)) is None

    def test_an_unknown_account_is_dropped(self, app, client, user, invoice):
        connect(user)
        deliver(client, stripe_event("evt_nobody", "checkout.session.completed", paid_session(invoice),
                                     account_id="acct_nobody"))
        assert process_all() == {"evt_nobody": "dropped"}
        assert db.session.scalar(sa.select(Payment)) is None

    def test_a_payment_made_while_disconnected_waits_and_is_applied_on_connecting_again(self, app, client, user,
                                                                                       invoice, stripe_api):
        connect(user)
        disconnect(client)
        # The client paid on a Checkout page opened before the firm disconnected.
        deliver(client, stripe_event("evt_late_payment", "checkout.session.completed", paid_session(invoice)))
        # Stripe's word that PlanMan was removed has nothing left to do.
        deliver(client, stripe_event("evt_deauth", "account.application.deauthorized",
                                     {"id": "ca_test_planman", "object": "application"}))
        assert process_all() == {"evt_late_payment": "waiting", "evt_deauth": "dropped"}
        assert db.session.get(Invoice, invoice.id).status == "sent"
        page = " ".join(client.get("/integrations/stripe").get_data(as_text=True).split())
        assert (f"1 event from Stripe about Reid &amp; Co Accountants Ltd (<code>{ACCOUNT}</code>) could not be "
                "applied while PlanMan was not connected to it") in page

        connect_through_stripe(client, stripe_api)
        assert process_all() == {"evt_late_payment": "processed", "evt_deauth": "dropped"}
        assert db.session.get(Invoice, invoice.id).status == "paid"
        assert db.session.scalar(sa.select(Connection)).state == "connected"
        assert 'id="waiting-events"' not in client.get("/integrations/stripe").get_data(as_text=True)

    def test_events_waiting_for_an_account_stay_when_another_is_connected(self, app, client, user, invoice,
                                                                           stripe_api):
        a_payment_waiting_for_the_account(client, user, invoice)
        connect_through_stripe(client, stripe_api, account_id="acct_2OtherAccount")
        assert process_all() == {"evt_late_payment": "waiting"}
        assert db.session.get(Invoice, invoice.id).status == "sent"
        page = client.get("/integrations/stripe").get_data(as_text=True)
        assert f"<code>{ACCOUNT}</code>" in page and 'id="waiting-events"' in page

    def test_events_for_a_connection_to_reconnect_wait_for_it(self, app, client, user, invoice, stripe_api):
        connect(user)
        connection = db.session.scalar(sa.select(Connection))
        connection.state, connection.state_reason = "needs_reconnect", "Stripe refused PlanMan's access."
        db.session.commit()
        deliver(client, stripe_event("evt_paid", "checkout.session.completed", paid_session(invoice)))
        assert process_all() == {"evt_paid": "waiting"}
        assert 'id="waiting-events"' in client.get("/integrations/stripe").get_data(as_text=True)
        connect_through_stripe(client, stripe_api)
        assert process_all() == {"evt_paid": "processed"}
        assert db.session.get(Invoice, invoice.id).status == "paid"

    def test_another_firm_connecting_the_account_leaves_the_events_to_the_firm_they_wait_for(
            self, app, client, user, invoice, stripe_api):
        a_payment_waiting_for_the_account(client, user, invoice)
        other = new_client(app)
        signup(other)
        connect_through_stripe(other, stripe_api)
        assert process_all() == {"evt_late_payment": "waiting"}
        assert 'id="waiting-events"' in client.get("/integrations/stripe").get_data(as_text=True)
        assert 'id="waiting-events"' not in other.get("/integrations/stripe").get_data(as_text=True)

    def test_an_admin_can_forget_the_events_of_an_account_the_firm_leaves_for_good(self, app, client, user,
                                                                                    invoice, stripe_api):
        a_payment_waiting_for_the_account(client, user, invoice)
        stranger = new_client(app)
        signup(stranger)
        post_form(stranger, "/integrations/stripe/events/forget", {"account": ACCOUNT}, form_url="/integrations/")
        assert process_all() == {"evt_late_payment": "waiting"}  # another firm's admin touches nothing

        done = post_form(client, "/integrations/stripe/events/forget", {"account": ACCOUNT},
                         form_url="/integrations/stripe", follow_redirects=True).get_data(as_text=True)
        assert f"Forgot 1 event from Stripe that waited for {ACCOUNT}." in done
        assert 'id="waiting-events"' not in done
        connect_through_stripe(client, stripe_api)
        assert process_all() == {"evt_late_payment": "dropped"}  # not applied on connecting again
        assert db.session.get(Invoice, invoice.id).status == "sent"

    def test_another_firm_never_sees_the_events_waiting_for_an_account(self, app, client, user, invoice):
        a_payment_waiting_for_the_account(client, user, invoice)
        other = new_client(app)
        signup(other)
        page = other.get("/integrations/stripe").get_data(as_text=True)
        assert 'id="waiting-events"' not in page and ACCOUNT not in page

    def test_a_late_removal_does_not_end_a_connection_made_after_it(self, app, client, user, invoice):
        connect(user)
        # Removed in the Stripe dashboard; before a worker took the event, the firm connected again.
        deliver(client, stripe_event("evt_deauth", "account.application.deauthorized",
                                     {"id": "ca_test_planman", "object": "application"}))
        connection = db.session.scalar(sa.select(Connection))
        connection.connected_at = utcnow()
        db.session.commit()
        assert process_all() == {"evt_deauth": "processed"}
        assert db.session.scalar(sa.select(Connection)).state == "connected"

    def test_account_updated_refreshes_charges_enabled(self, app, client, user):
        connect(user, charges_enabled=False)
        deliver(client, stripe_event("evt_acct", "account.updated", account(charges_enabled=True)))
        process_all()
        html = client.get("/integrations/stripe").get_data(as_text=True)
        assert "Enabled: your clients can pay invoices by card." in html

    def test_deauthorized_from_stripes_side_disconnects_everywhere(self, app, client, user, invoice):
        connect(user)
        browser, path, html = pay_page(app, client, invoice)
        assert ">Pay by card</button>" in html
        deliver(client, stripe_event("evt_deauth", "account.application.deauthorized",
                                     {"id": "ca_test_planman", "object": "application", "name": "PlanMan"}))
        with responses.RequestsMock(), committed_rows(Connection.state, Connection.state_reason) as commits:
            assert process_all() == {"evt_deauth": "processed"}  # nothing is sent to Stripe: it already knows
        reason = "Disconnected from Stripe's side (in the Stripe dashboard)."
        # Never "Not connected" without saying why, even for a page read between two commits.
        assert {row for rows in commits for row in rows if row[0] == "disconnected"} == {("disconnected", reason)}
        db.session.expire_all()
        connection = db.session.scalar(sa.select(Connection))
        assert connection.state == "disconnected" and connection.tenant_id is None
        assert ">Pay by card</button>" not in browser.get(path).get_data(as_text=True)
        page = client.get("/integrations/stripe").get_data(as_text=True)
        assert ">Connect To Stripe</button>" in page
