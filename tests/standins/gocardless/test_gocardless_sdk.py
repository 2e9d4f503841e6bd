"""The GoCardless stand-in checked with the official gocardless-pro SDK as the client
(and plain HTTP for the OAuth calls and pages the SDK does not cover): partner
OAuth, creditors with verification, billing requests and the hosted flow,
mandates, payments moved on by the control API and the sandbox scenario names,
signed deliveries (checked with the SDK's own Webhook.parse) with retries,
idempotency conflicts, 429s and faults."""
from __future__ import annotations

import json
import uuid

import pytest
from gocardless_pro import errors, webhooks

from standins.gocardless import demo
from tests.standins.gocardless.conftest import HOOK_SECRET


def events_received(receiver) -> list:
    """Every event delivered so far, parsed and verified by the SDK (raises on a bad signature)."""
    out = []
    for delivery in receiver.received:
        out += webhooks.parse(delivery["body"], HOOK_SECRET, delivery["headers"]["Webhook-Signature"])
    return out


def mandate_for(standin, client, given_name="Ann"):
    """A billing request and flow through the SDK, completed on the hosted page as a client would."""
    request = client.billing_requests.create({"mandate_request": {"scheme": "bacs", "currency": "GBP"},
                                              "metadata": {"planman_client_id": "7"}})
    flow = client.billing_request_flows.create({"redirect_uri": "http://127.0.0.1:5000/direct-debit/set-up",
                                                "exit_uri": "http://127.0.0.1:5000/back",
                                                "links": {"billing_request": request.id},
                                                "prefilled_customer": {"given_name": given_name}})
    page = standin.http.get(flow.authorisation_url)
    assert page.status_code == 200 and f'value="{given_name}"' in page.text
    done = standin.http.post(flow.authorisation_url, data={"given_name": given_name, "family_name": "Acme",
                                                           "email": "ann@acme.test"}, allow_redirects=False)
    assert done.status_code == 303 and done.headers["Location"] == "http://127.0.0.1:5000/direct-debit/set-up"
    fulfilled = client.billing_requests.get(request.id)
    assert fulfilled.status == "fulfilled"
    return client.mandates.get(fulfilled.links.mandate_request_mandate)


def test_connect_gives_a_lasting_token_for_one_organisation_with_its_verification(standin):
    token = standin.connect()
    assert token["organisation_id"] == demo.DEMO_ORG and token["token_type"] == "bearer"
    assert "expires_in" not in token and "refresh_token" not in token
    client = standin.sdk(token)
    [creditor] = client.creditors.list().records
    assert (creditor.id, creditor.verification_status) == (demo.DEMO_CREDITOR, "action_required")
    standin.control(f"creditors/{demo.DEMO_CREDITOR}/verification", status="successful")
    assert client.creditors.list().records[0].verification_status == "successful"
    # Revoked: every call answers 401, which the SDK raises as AuthenticationError.
    assert standin.http.post(f"{standin.url}/oauth/revoke", data={
        "token": token["access_token"], "client_id": "planman-dev", "client_secret": "planman-dev-secret"}).ok
    with pytest.raises(errors.AuthenticationError):
        client.creditors.list()


def test_a_code_works_once_and_only_with_the_apps_secret(standin):
    params = {"response_type": "code", "client_id": "planman-dev", "scope": "read_write", "state": "s",
              "redirect_uri": "http://127.0.0.1:5000/integrations/gocardless/callback", "decision": "allow"}
    back = standin.http.post(f"{standin.url}/oauth/authorize", data=params, allow_redirects=False)
    code = back.headers["Location"].split("code=")[1].split("&")[0]
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": params["redirect_uri"],
              "client_id": "planman-dev"}
    wrong = standin.http.post(f"{standin.url}/oauth/access_token", data={**fields, "client_secret": "guess"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    first = standin.http.post(f"{standin.url}/oauth/access_token", data={**fields, "client_secret": "planman-dev-secret"})
    again = standin.http.post(f"{standin.url}/oauth/access_token", data={**fields, "client_secret": "planman-dev-secret"})
    assert first.status_code == 200 and again.json()["error"] == "invalid_grant"


def test_the_hosted_flow_makes_a_mandate_and_says_so_in_one_signed_delivery(standin, receiver):
    client = standin.sdk(standin.connect())
    mandate = mandate_for(standin, client)
    assert mandate.status == "pending_submission" and mandate.scheme == "bacs"
    assert mandate.next_possible_charge_date
    standin.flush()
    fulfilled = [d for d in receiver.received if b'"fulfilled"' in d["body"]]
    assert len(fulfilled) == 1
    body = json.loads(fulfilled[0]["body"])
    assert {(e["resource_type"], e["action"]) for e in body["events"]} >= {("billing_requests", "fulfilled"),
                                                                             ("mandates", "created")}
    assert all(e["links"]["organisation"] == demo.DEMO_ORG for e in body["events"])
    events_received(receiver)  # every delivery's signature checks out with the SDK
    # Time moves on: submitted, then active.
    standin.control(f"mandates/{mandate.id}/advance")
    standin.control(f"mandates/{mandate.id}/advance")
    assert client.mandates.get(mandate.id).status == "active"
    standin.flush()
    assert [e.action for e in events_received(receiver) if e.resource_type == "mandates"][-1] == "active"
    # A used flow does not work twice.
    flow_url = client.billing_request_flows.create({"links": {"billing_request": client.billing_requests.create(
        {"mandate_request": {"currency": "GBP"}}).id}}).authorisation_url
    assert standin.http.post(flow_url, data={"given_name": "A", "family_name": "B", "email": "a@b.test"}).ok
    assert standin.http.post(flow_url, data={"given_name": "A", "family_name": "B",
                                             "email": "a@b.test"}).status_code == 410


def test_a_payment_moves_to_paid_out_and_a_replayed_key_finds_it(standin, receiver):
    client = standin.sdk(standin.connect())
    mandate = mandate_for(standin, client)
    key = f"planman-collection-{uuid.uuid4().hex}"
    params = {"amount": 12000, "currency": "GBP", "description": "Invoice INV-0042",
              "metadata": {"planman_invoice_id": "42"}, "links": {"mandate": mandate.id}}
    payment = client.payments.create(params, headers={"Idempotency-Key": key})
    assert (payment.status, payment.amount, payment.charge_date) == ("pending_submission", 12000,
                                                                     mandate.next_possible_charge_date)
    # The same key again (a lost answer retried): 409, and the SDK fetches the first payment.
    again = client.payments.create(params, headers={"Idempotency-Key": key})
    assert again.id == payment.id
    strict = standin.sdk({"access_token": client._api_client.access_token}, raise_on_idempotency_conflict=True)
    with pytest.raises(errors.IdempotentCreationConflictError) as conflict:
        strict.payments.create(params, headers={"Idempotency-Key": key})
    assert conflict.value.conflicting_resource_id == payment.id
    assert len(json.loads(standin.http.get(f"{standin.url}/_control/state").text)["organisations"][0]["payments"]) == 1
    for _ in range(3):
        standin.control(f"payments/{payment.id}/advance")
    assert client.payments.get(payment.id).status == "paid_out"
    standin.flush()
    actions = [e.action for e in events_received(receiver) if e.resource_type == "payments"]
    assert actions == ["created", "submitted", "confirmed", "paid_out"]
    assert standin.control(f"payments/{payment.id}/advance").status_code == 409  # nothing after paid out


def test_penniless_payments_fail_and_can_be_retried(standin, receiver):
    client = standin.sdk(standin.connect())
    mandate = mandate_for(standin, client, given_name="Penniless")
    payment = client.payments.create({"amount": 500, "currency": "GBP", "links": {"mandate": mandate.id}})
    standin.control(f"payments/{payment.id}/advance")
    standin.control(f"payments/{payment.id}/advance")
    assert client.payments.get(payment.id).status == "failed"
    standin.flush()
    [failed] = [e for e in events_received(receiver) if e.action == "failed"]
    assert failed.details.cause == "insufficient_funds" and failed.details.origin == "bank"
    with pytest.raises(errors.InvalidStateError):
        client.payments.retry(client.payments.create({"amount": 100, "currency": "GBP",
                                                      "links": {"mandate": mandate.id}}).id)
    retried = client.payments.retry(payment.id)
    assert retried.status == "pending_submission"


def test_fickle_payments_are_charged_back_after_payout(standin, receiver):
    client = standin.sdk(standin.connect())
    mandate = mandate_for(standin, client, given_name="Fickle")
    payment = client.payments.create({"amount": 500, "currency": "GBP", "links": {"mandate": mandate.id}})
    for _ in range(4):
        standin.control(f"payments/{payment.id}/advance")
    assert client.payments.get(payment.id).status == "charged_back"


def test_a_cancelled_mandate_takes_no_payments_and_cancels_pending_ones(standin, receiver):
    client = standin.sdk(standin.connect())
    mandate = mandate_for(standin, client)
    pending = client.payments.create({"amount": 500, "currency": "GBP", "links": {"mandate": mandate.id}})
    client.mandates.cancel(mandate.id)
    assert client.payments.get(pending.id).status == "cancelled"
    with pytest.raises(errors.InvalidStateError) as refused:
        client.payments.create({"amount": 500, "currency": "GBP", "links": {"mandate": mandate.id}})
    assert refused.value.errors[0]["reason"] == "mandate_is_inactive"


def test_bad_payments_are_refused_with_the_field(standin):
    client = standin.sdk(standin.connect())
    mandate = mandate_for(standin, client)
    with pytest.raises(errors.ValidationFailedError) as refused:
        client.payments.create({"amount": 12.5, "currency": "GBP", "links": {"mandate": mandate.id}})
    assert refused.value.errors[0]["field"] == "amount"
    with pytest.raises(errors.ValidationFailedError) as early:
        client.payments.create({"amount": 100, "currency": "GBP", "charge_date": "2000-01-01",
                                "links": {"mandate": mandate.id}})
    assert early.value.errors[0]["field"] == "charge_date"


def test_one_organisations_token_does_not_reach_anothers_payment(standin):
    mine = standin.sdk(standin.connect())
    mandate = mandate_for(standin, mine)
    payment = mine.payments.create({"amount": 100, "currency": "GBP", "links": {"mandate": mandate.id}})
    theirs = standin.sdk(standin.connect(organisation=demo.OTHER_ORG))
    with pytest.raises(errors.InvalidApiUsageError):
        theirs.payments.get(payment.id)


def test_429_and_faults_come_as_gocardless_sends_them(standin, monkeypatch):
    import time
    monkeypatch.setattr(time, "sleep", lambda _: None)
    client = standin.sdk(standin.connect())
    standin.control("faults", rate_limit_next=1, retry_after=7)
    with pytest.raises(errors.RateLimitError):
        client.creditors.list()
    assert client.creditors.list().api_response.headers["RateLimit-Limit"] == "1000"
    standin.control("faults", fail_next=1)
    with pytest.raises(errors.GoCardlessInternalError):
        client.creditors.list()


def test_a_delivery_the_receiver_refuses_is_retried(standin, receiver):
    client = standin.sdk(standin.connect())
    receiver.answers = [500]
    client.billing_requests.create({"mandate_request": {"currency": "GBP"}})
    first = standin.flush()
    second = standin.flush()
    assert [a["status"] for a in first + second] == [500, 200]
    assert receiver.received[0]["body"] == receiver.received[1]["body"]
