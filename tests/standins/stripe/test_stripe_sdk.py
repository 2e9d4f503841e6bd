"""The Stripe stand-in driven by the official `stripe` SDK (16.1.0) as a client nobody here wrote:
Connect OAuth, accounts, Checkout Sessions scoped by Stripe-Account, the hosted page's test cards,
refunds and disputes, idempotency, faults, and webhooks that stripe.Webhook.construct_event accepts."""
from __future__ import annotations

import json

import pytest
import requests
import stripe

from standins.stripe.demo import UK_ACCOUNT_ID, UNVERIFIED_ACCOUNT_ID, US_ACCOUNT_ID
from tests.standins.stripe.conftest import (CLIENT_ID, REDIRECT_URI, connect_account, control, sdk,
                                            session_params)


def on(client, account):
    return {"stripe_account": account}


def test_oauth_connects_an_account_and_the_sdk_reads_its_token(standin, platform):
    token = connect_account(standin, UK_ACCOUNT_ID, platform)
    assert token["stripe_user_id"] == UK_ACCOUNT_ID
    assert token["token_type"] == "bearer" and token["scope"] == "read_write" and token["livemode"] is False
    account = platform.v1.accounts.retrieve(UK_ACCOUNT_ID)
    assert account.charges_enabled is True and account.id == UK_ACCOUNT_ID


def test_a_spent_code_is_invalid_grant_and_a_wrong_platform_key_invalid_client(standin, platform):
    authorize = platform.oauth.authorize_url({"scope": "read_write", "redirect_uri": REDIRECT_URI})
    query = dict(p.split("=", 1) for p in authorize.split("?")[1].split("&"))
    answer = requests.post(authorize.split("?")[0], data={**{k: requests.utils.unquote(v) for k, v in query.items()},
                                                          "account": UK_ACCOUNT_ID, "decision": "connect"},
                           allow_redirects=False, timeout=10)
    code = answer.headers["Location"].split("code=")[1].split("&")[0]
    platform.oauth.token({"grant_type": "authorization_code", "code": code})
    with pytest.raises(stripe.oauth_error.InvalidGrantError) as spent:
        platform.oauth.token({"grant_type": "authorization_code", "code": code})
    assert f"Authorization code does not exist: {code}" in str(spent.value)
    with pytest.raises(stripe.oauth_error.InvalidClientError):
        sdk(standin, api_key="sk_test_wrong").oauth.token({"grant_type": "authorization_code", "code": "ac_x"})


def test_deny_on_the_consent_page_returns_access_denied(standin, platform):
    authorize = platform.oauth.authorize_url({"scope": "read_write", "redirect_uri": REDIRECT_URI, "state": "s9"})
    fields = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": "read_write", "state": "s9",
              "decision": "deny"}
    answer = requests.post(authorize.split("?")[0], data=fields, allow_redirects=False, timeout=10)
    assert "error=access_denied" in answer.headers["Location"] and "state=s9" in answer.headers["Location"]


def test_deauthorize_ends_access_and_tells_the_platform(standin, platform, receiver):
    platform.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"], "connect": True})
    connect_account(standin, UK_ACCOUNT_ID, platform)
    assert platform.oauth.deauthorize({"stripe_user_id": UK_ACCOUNT_ID}).stripe_user_id == UK_ACCOUNT_ID
    with pytest.raises(stripe.PermissionError) as refused:
        platform.v1.checkout.sessions.create(session_params(), {"stripe_account": UK_ACCOUNT_ID})
    assert refused.value.json_body["error"]["code"] == "account_invalid"
    with pytest.raises(stripe.oauth_error.InvalidClientError):
        platform.oauth.deauthorize({"stripe_user_id": UK_ACCOUNT_ID})  # not connected any more
    control(standin, "webhooks/flush")
    [event] = [json.loads(r["body"]) for r in receiver.received]
    assert event["type"] == "account.application.deauthorized" and event["account"] == UK_ACCOUNT_ID


def test_checkout_sessions_are_scoped_by_stripe_account(standin, platform):
    connect_account(standin, UK_ACCOUNT_ID, platform)
    connect_account(standin, US_ACCOUNT_ID, platform)
    session = platform.v1.checkout.sessions.create(session_params(), {"stripe_account": UK_ACCOUNT_ID})
    assert session.id.startswith("cs_test_") and session.status == "open" and session.amount_total == 12000
    assert session.url.startswith(f"{standin}/checkout/pay/{session.id}")
    assert platform.v1.checkout.sessions.retrieve(session.id, options={"stripe_account": UK_ACCOUNT_ID}).id == session.id
    for other in ({"stripe_account": US_ACCOUNT_ID}, {}):  # another account, or the platform itself
        with pytest.raises(stripe.InvalidRequestError) as missing:
            platform.v1.checkout.sessions.retrieve(session.id, options=other)
        assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
        assert f"No such checkout.session: '{session.id}'" in missing.value.user_message
    with pytest.raises(stripe.PermissionError):  # never connected: no access at all
        platform.v1.checkout.sessions.retrieve(session.id, options={"stripe_account": UNVERIFIED_ACCOUNT_ID})


def test_expire_closes_an_open_session_once(standin, platform):
    connect_account(standin, UK_ACCOUNT_ID, platform)
    session = platform.v1.checkout.sessions.create(session_params(), {"stripe_account": UK_ACCOUNT_ID})
    expired = platform.v1.checkout.sessions.expire(session.id, options={"stripe_account": UK_ACCOUNT_ID})
    assert expired.status == "expired" and expired.url is None
    with pytest.raises(stripe.InvalidRequestError):
        platform.v1.checkout.sessions.expire(session.id, options={"stripe_account": UK_ACCOUNT_ID})


def test_an_account_that_cannot_take_charges_is_refused_until_enabled(standin, platform, receiver):
    platform.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["account.updated"],
                                          "connect": True})
    connect_account(standin, UNVERIFIED_ACCOUNT_ID, platform)
    account = platform.v1.accounts.retrieve(UNVERIFIED_ACCOUNT_ID)
    assert account.charges_enabled is False and account.requirements.currently_due
    with pytest.raises(stripe.InvalidRequestError):
        platform.v1.checkout.sessions.create(session_params(), {"stripe_account": UNVERIFIED_ACCOUNT_ID})
    control(standin, f"accounts/{UNVERIFIED_ACCOUNT_ID}/charges_enabled", charges_enabled=True)
    assert platform.v1.checkout.sessions.create(session_params(), {"stripe_account": UNVERIFIED_ACCOUNT_ID}).id
    control(standin, "webhooks/flush")
    [event] = [json.loads(r["body"]) for r in receiver.received]
    assert event["type"] == "account.updated" and event["data"]["object"]["charges_enabled"] is True


def test_idempotency_key_replays_the_first_answer_and_refuses_other_params(standin, platform):
    connect_account(standin, UK_ACCOUNT_ID, platform)
    options = {"stripe_account": UK_ACCOUNT_ID, "idempotency_key": "planman-invoice-42-12000-attempt1"}
    first = platform.v1.checkout.sessions.create(session_params(), options)
    again = platform.v1.checkout.sessions.create(session_params(), options)
    assert again.id == first.id and again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError) as refused:
        platform.v1.checkout.sessions.create(session_params(amount=5000), options)
    assert refused.value.http_status == 400 and "same parameters" in refused.value.user_message
    state = requests.get(f"{standin}/_control/state", timeout=10).json()
    [uk] = [a for a in state["accounts"] if a["id"] == UK_ACCOUNT_ID]
    assert len(uk["checkout_sessions"]) == 1


def test_a_5xx_fault_is_retried_by_the_sdk_with_the_same_key_and_creates_once(standin, platform):
    connect_account(standin, UK_ACCOUNT_ID, platform)
    control(standin, "faults", fail_next=1, fail_status=500)
    session = sdk(standin, max_network_retries=2).v1.checkout.sessions.create(
        session_params(), {"stripe_account": UK_ACCOUNT_ID})
    assert session.status == "open"
    stats = requests.get(f"{standin}/_control/stats", timeout=10).json()
    assert stats["injected_5xx"] == 1


def test_a_429_and_a_5xx_reach_a_client_that_does_not_retry_as_stripe_errors(standin, platform):
    connect_account(standin, UK_ACCOUNT_ID, platform)
    no_retry = sdk(standin, max_network_retries=0)
    control(standin, "faults", rate_limit_next=1)
    with pytest.raises(stripe.RateLimitError) as limited:
        no_retry.v1.checkout.sessions.create(session_params(), {"stripe_account": UK_ACCOUNT_ID})
    assert limited.value.http_status == 429 and limited.value.json_body["error"]["code"] == "rate_limit"
    control(standin, "faults", fail_next=1, fail_status=503)
    with pytest.raises(stripe.APIError) as failed:
        no_retry.v1.accounts.retrieve(UK_ACCOUNT_ID)
    assert failed.value.http_status == 503 and failed.value.request_id.startswith("req_")


def pay(standin, session, card, exp="12 / 34", cvc="123"):
    return requests.post(f"{standin}/checkout/pay/{session.id}", data={"cardnumber": card, "exp": exp, "cvc": cvc,
                                                                       "email": "client@example.test"},
                         allow_redirects=False, timeout=10)


def events_at(receiver, secret):
    """Every delivery, verified as PlanMan verifies it (the SDK's construct_event)."""
    return [stripe.Webhook.construct_event(r["body"].decode(), r["headers"]["Stripe-Signature"], secret)
            for r in receiver.received]


@pytest.fixture
def hooked(standin, platform, receiver):
    endpoint = platform.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"], "connect": True,
                                                     "api_version": "2026-10-28.endive"})
    assert endpoint.secret.startswith("whsec_")
    connect_account(standin, UK_ACCOUNT_ID, platform)
    return endpoint.secret


def test_4242_pays_and_signed_webhooks_pass_construct_event(standin, platform, receiver, hooked):
    session = platform.v1.checkout.sessions.create(session_params(), {"stripe_account": UK_ACCOUNT_ID})
    page = requests.get(session.url, timeout=10)
    assert "Pay Demo Practice Ltd (UK)" in page.text and "120.00 GBP" in page.text
    answer = pay(standin, session, "4242 4242 4242 4242")
    assert answer.status_code == 303 and answer.headers["Location"] == session.success_url
    control(standin, "webhooks/flush")
    events = events_at(receiver, hooked)
    assert [e.type for e in events] == ["charge.succeeded", "payment_intent.succeeded", "checkout.session.completed"]
    completed = events[-1]
    assert completed.account == UK_ACCOUNT_ID and completed.data.object.payment_status == "paid"
    assert completed.data.object.metadata["planman_invoice_id"] == "42"
    intent = platform.v1.payment_intents.retrieve(completed.data.object.payment_intent,
                                                  options={"stripe_account": UK_ACCOUNT_ID})
    assert intent.status == "succeeded" and intent.amount_received == 12000
    assert intent.metadata["planman_invoice_id"] == "42"
    with pytest.raises(stripe.InvalidRequestError):  # the platform does not see the account's PaymentIntent
        platform.v1.payment_intents.retrieve(intent.id)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(receiver.received[0]["body"].decode(),
                                       receiver.received[0]["headers"]["Stripe-Signature"], "whsec_other")


def test_a_declined_card_says_why_and_the_session_stays_open(standin, platform, receiver, hooked):
    session = platform.v1.checkout.sessions.create(session_params(), {"stripe_account": UK_ACCOUNT_ID})
    answer = pay(standin, session, "4000 0000 0000 0002")
    assert answer.status_code == 402 and "Your card was declined." in answer.text
    assert "Your card number is invalid." in pay(standin, session, "4242 4242 4242 4241").text
    assert pay(standin, session, "4242424242424242", exp="01 / 20").status_code == 422
    control(standin, "webhooks/flush")
    events = events_at(receiver, hooked)
    assert [e.type for e in events] == ["charge.failed", "payment_intent.payment_failed"]
    error = events[1].data.object.last_payment_error
    assert (error.code, error.decline_code, error.type) == ("card_declined", "generic_decline", "card_error")
    assert platform.v1.checkout.sessions.retrieve(session.id, options={"stripe_account": UK_ACCOUNT_ID}).status == "open"
    assert pay(standin, session, "4242424242424242").status_code == 303  # a second card pays


def test_a_payment_that_confirms_later_sends_the_async_events(standin, platform, receiver, hooked):
    ok = platform.v1.checkout.sessions.create(session_params(1), {"stripe_account": UK_ACCOUNT_ID})
    bad = platform.v1.checkout.sessions.create(session_params(2), {"stripe_account": UK_ACCOUNT_ID})
    assert pay(standin, ok, "4000 0025 0000 1001").status_code == 303
    assert pay(standin, bad, "4000 0025 0000 1019").status_code == 303
    confirming = platform.v1.checkout.sessions.retrieve(ok.id, options={"stripe_account": UK_ACCOUNT_ID})
    assert (confirming.status, confirming.payment_status) == ("complete", "unpaid")
    control(standin, f"checkout/sessions/{ok.id}/settle")
    control(standin, f"checkout/sessions/{bad.id}/settle")
    control(standin, "webhooks/flush")
    types = [e.type for e in events_at(receiver, hooked)]
    assert "checkout.session.async_payment_succeeded" in types and "checkout.session.async_payment_failed" in types
    assert platform.v1.checkout.sessions.retrieve(ok.id, options={"stripe_account": UK_ACCOUNT_ID}).payment_status == "paid"


def test_refunds_and_disputes_emit_their_events(standin, platform, receiver, hooked):
    session = platform.v1.checkout.sessions.create(session_params(), {"stripe_account": UK_ACCOUNT_ID})
    pay(standin, session, "4242424242424242")
    intent_id = platform.v1.checkout.sessions.retrieve(session.id, options={"stripe_account": UK_ACCOUNT_ID}).payment_intent
    refund = platform.v1.refunds.create({"payment_intent": intent_id, "amount": 2000},
                                        {"stripe_account": UK_ACCOUNT_ID})
    assert refund.amount == 2000 and refund.status == "succeeded"
    control(standin, f"charges/{intent_id}/refund")  # the rest, from the dashboard
    control(standin, f"charges/{intent_id}/dispute", reason="fraudulent")
    control(standin, "webhooks/flush")
    events = events_at(receiver, hooked)
    refunded = [e for e in events if e.type == "charge.refunded"]
    assert [e.data.object.refunded for e in refunded] == [False, True]
    [disputed] = [e for e in events if e.type == "charge.dispute.created"]
    assert disputed.data.object.payment_intent == intent_id and disputed.data.object.reason == "fraudulent"


def test_duplicate_and_reversed_deliveries_repeat_the_same_event(standin, platform, receiver, hooked):
    control(standin, "webhooks", paused=True, duplicate_next=3)
    session = platform.v1.checkout.sessions.create(session_params(), {"stripe_account": UK_ACCOUNT_ID})
    pay(standin, session, "4242424242424242")
    control(standin, "webhooks/flush", order="reverse")
    events = events_at(receiver, hooked)
    assert [e.type for e in events] == ["checkout.session.completed"] * 2 + ["payment_intent.succeeded"] * 2 + \
        ["charge.succeeded"] * 2
    assert events[0].id == events[1].id


def test_unauthenticated_and_unknown_calls_answer_stripes_envelope(standin):
    answer = requests.get(f"{standin}/v1/account", timeout=10)
    assert answer.status_code == 401 and answer.json()["error"]["type"] == "invalid_request_error"
    assert answer.headers["Request-Id"].startswith("req_")
    with pytest.raises(stripe.AuthenticationError):
        sdk(standin, api_key="sk_test_nope").v1.accounts.retrieve(UK_ACCOUNT_ID)
