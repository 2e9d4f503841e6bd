"""The Stripe stand-in's pages, consent-page refusals and control API, in-process (Flask's test client)."""
from __future__ import annotations

import pytest

from standins import create_app as create_all
from standins.stripe import create_app
from standins.stripe.demo import UK_ACCOUNT_ID, UNVERIFIED_ACCOUNT_ID

KEY = {"Authorization": "Bearer sk_test_standin_platform"}
AUTHORIZE = {"response_type": "code", "client_id": "ca_standin_planman", "scope": "read_write",
             "redirect_uri": "http://127.0.0.1:5000/integrations/stripe/callback", "state": "s"}


@pytest.fixture
def client(tmp_path):
    return create_app({"DATABASE": str(tmp_path / "s.db"), "TESTING": True}).test_client()


def test_the_consent_page_refuses_unknown_clients_and_redirect_uris_without_redirecting(client):
    bad_client = client.get("/oauth/authorize", query_string={**AUTHORIZE, "client_id": "ca_nobody"})
    assert bad_client.status_code == 400 and "Invalid client_id" in bad_client.get_data(as_text=True)
    bad_uri = client.get("/oauth/authorize", query_string={**AUTHORIZE, "redirect_uri": "https://evil.test/cb"})
    assert bad_uri.status_code == 400 and "Invalid redirect URI" in bad_uri.get_data(as_text=True)
    scope = client.get("/oauth/authorize", query_string={**AUTHORIZE, "scope": "everything"})
    assert scope.status_code == 302 and "error=invalid_scope" in scope.headers["Location"]


def test_a_new_account_made_on_the_consent_page_needs_a_name_then_connects(client):
    blank = client.post("/oauth/authorize", data={**AUTHORIZE, "account": "new", "business_name": " ",
                                                  "decision": "connect"})
    assert blank.status_code == 422 and "Enter your business name." in blank.get_data(as_text=True)
    made = client.post("/oauth/authorize", data={**AUTHORIZE, "account": "new", "business_name": "Fresh Ltd",
                                                 "decision": "connect"})
    code = made.headers["Location"].split("code=")[1].split("&")[0]
    token = client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code}, headers=KEY)
    account_id = token.get_json()["stripe_user_id"]
    account = client.get(f"/v1/accounts/{account_id}", headers=KEY).get_json()
    assert account["business_profile"]["name"] == "Fresh Ltd" and account["charges_enabled"] is True


def test_pages_show_accounts_and_their_sessions(client):
    code = client.post("/oauth/authorize", data={**AUTHORIZE, "account": UK_ACCOUNT_ID, "decision": "connect"}) \
        .headers["Location"].split("code=")[1].split("&")[0]
    client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code}, headers=KEY)
    session = client.post("/v1/checkout/sessions", headers={**KEY, "Stripe-Account": UK_ACCOUNT_ID}, data={
        "mode": "payment", "success_url": "http://127.0.0.1:5000/ok", "client_reference_id": "7",
        "line_items[0][quantity]": "1", "line_items[0][price_data][currency]": "gbp",
        "line_items[0][price_data][unit_amount]": "4500",
        "line_items[0][price_data][product_data][name]": "Invoice INV-7"}).get_json()
    client.post(f"/_control/checkout/sessions/{session['id']}/pay", json={"card": "4000000000000002"})
    index = client.get("/").get_data(as_text=True)
    assert "Demo Practice Ltd (UK)" in index and "Not Yet Verified Ltd" in index
    page = client.get(f"/accounts/{UK_ACCOUNT_ID}").get_data(as_text=True)
    assert f'id="session-{session["id"]}"' in page and "45.00 GBP" in page and "Your card was declined." in page
    assert client.get("/accounts/acct_nobody").status_code == 404


def test_control_calls_refuse_bad_input_with_a_message(client):
    assert client.post(f"/_control/accounts/{UK_ACCOUNT_ID}/charges_enabled", json={"charges_enabled": "yes"}) \
        .status_code == 400
    assert client.post("/_control/accounts/acct_nobody/charges_enabled", json={"charges_enabled": True}) \
        .status_code == 404
    assert client.post(f"/_control/accounts/{UNVERIFIED_ACCOUNT_ID}/deauthorize").status_code == 404  # not connected
    assert client.post("/_control/charges/ch_nothing/refund").status_code == 404
    assert client.post("/_control/charges/ch_nothing/dispute", json={"reason": "boredom"}).status_code == 400
    assert client.post("/_control/checkout/sessions/cs_nothing/settle").status_code == 404
    assert client.post("/_control/faults", json={"nonsense": 1}).status_code == 400
    assert client.post("/_control/async", json={"seconds": "soon"}).status_code == 400


def test_a_confirming_payment_settles_by_itself_when_its_time_comes(client):
    from standins.stripe import payments

    assert client.post("/_control/async", json={"seconds": 0}).get_json() == {"seconds": 0}
    session = client.post("/v1/checkout/sessions", headers=KEY, data={
        "mode": "payment", "success_url": "http://127.0.0.1:5000/ok", "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "gbp", "line_items[0][price_data][unit_amount]": "100"}).get_json()
    client.post(f"/_control/checkout/sessions/{session['id']}/pay", json={"card": "4000002500001001"})
    assert payments.settle_due(client.application.extensions["standins.store"]) == 1  # the delivery thread's tick
    assert client.get(f"/v1/checkout/sessions/{session['id']}", headers=KEY).get_json()["payment_status"] == "paid"


def test_python_m_standins_serves_stripe_under_its_prefix(tmp_path):
    served = create_all({"DATABASE": str(tmp_path / "all.db"), "TESTING": True}).test_client()
    assert "/stripe/" in served.get("/").get_data(as_text=True)
    unknown = served.get("/stripe/v1/nothing", headers=KEY)
    assert unknown.status_code == 404 and "Unrecognized request URL (GET: /v1/nothing)" in unknown.get_json()["error"]["message"]
    session = served.post("/stripe/v1/checkout/sessions", headers=KEY, data={
        "mode": "payment", "success_url": "http://127.0.0.1:5000/ok", "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "gbp", "line_items[0][price_data][unit_amount]": "100"}).get_json()
    assert session["url"] == f"http://localhost/stripe/checkout/pay/{session['id']}"  # the prefix is kept
    assert (tmp_path / "all.stripe.db").exists()


@pytest.mark.parametrize("drop, change, param, words", [
    ("mode", {}, "mode", "Missing required param: mode."),
    ("success_url", {}, "success_url", "Missing required param: success_url."),
    ("line_items[0][price_data][currency]", {}, "line_items[0][price_data][currency]", "Missing required param"),
    (None, {"line_items[0][price_data][unit_amount]": "20"}, "line_items", "at least 0.50"),
    (None, {"line_items[0][price_data][unit_amount]": "ten"}, "line_items[0][price_data][unit_amount]",
     "Invalid integer: ten"),
    (None, {"expires_at": "1"}, "expires_at", "between 30 minutes and 24 hours"),
])
def test_a_session_stripe_would_refuse_is_a_400_naming_the_param_and_saves_nothing(client, drop, change, param,
                                                                                   words):
    fields = {"mode": "payment", "success_url": "http://127.0.0.1:5000/ok", "line_items[0][quantity]": "1",
              "line_items[0][price_data][currency]": "gbp", "line_items[0][price_data][unit_amount]": "1000",
              **change}
    fields.pop(drop, None)
    answer = client.post("/v1/checkout/sessions", headers={**KEY, "Idempotency-Key": "k1"}, data=fields)
    error = answer.get_json()["error"]
    assert answer.status_code == 400 and error["param"] == param and words in error["message"]
    assert client.get("/v1/checkout/sessions", headers=KEY).get_json()["data"] == []
    # Not kept for the key: the corrected request runs.
    fixed = {"mode": "payment", "success_url": "http://127.0.0.1:5000/ok", "line_items[0][quantity]": "1",
             "line_items[0][price_data][currency]": "gbp", "line_items[0][price_data][unit_amount]": "1000"}
    assert client.post("/v1/checkout/sessions", headers={**KEY, "Idempotency-Key": "k1"}, data=fixed).status_code == 200
