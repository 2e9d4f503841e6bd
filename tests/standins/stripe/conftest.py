"""The Stripe stand-in served over real HTTP (the official SDK needs a socket), a webhook
receiver, and StripeClients pointed at it as PlanMan's client is."""
from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import stripe
from werkzeug.serving import make_server

from standins.stripe import create_app
from standins.stripe.demo import UK_ACCOUNT_ID
from tests.standins.receiver import Receiver

SECRET_KEY, CLIENT_ID = "sk_test_standin_platform", "ca_standin_planman"
REDIRECT_URI = "http://127.0.0.1:5000/integrations/stripe/callback"


@pytest.fixture
def standin(tmp_path):
    app = create_app({"DATABASE": str(tmp_path / "stripe.db"), "TESTING": True})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    yield url
    server.shutdown()
    server.server_close()


def sdk(url: str, **kw) -> stripe.StripeClient:
    return stripe.StripeClient(kw.pop("api_key", SECRET_KEY), client_id=CLIENT_ID,
                               base_addresses={"api": url, "connect": url}, **kw)


@pytest.fixture
def platform(standin):
    return sdk(standin)


def control(url: str, path: str, **json):
    response = requests.post(f"{url}/_control/{path}", json=json, timeout=10)
    assert response.status_code < 300, response.text
    return response.json()


def connect_account(url: str, account: str = UK_ACCOUNT_ID, client: stripe.StripeClient | None = None) -> dict:
    """The consent page as a browser submits it, then the token call through the SDK."""
    client = client or sdk(url)
    authorize = client.oauth.authorize_url({"scope": "read_write", "redirect_uri": REDIRECT_URI, "state": "s1"})
    page = requests.get(authorize, timeout=10)
    assert page.status_code == 200 and "Connect my Stripe account" in page.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    answer = requests.post(authorize.split("?")[0], data={**query, "account": account, "decision": "connect"},
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    assert back["state"] == "s1"
    return client.oauth.token({"grant_type": "authorization_code", "code": back["code"]}).to_dict()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def session_params(invoice_id: int = 42, amount: int = 12000) -> dict:
    return {"mode": "payment", "success_url": "http://127.0.0.1:5000/pay/tok?returned=stripe",
            "cancel_url": "http://127.0.0.1:5000/pay/tok", "client_reference_id": str(invoice_id),
            "metadata": {"planman_invoice_id": str(invoice_id)},
            "payment_intent_data": {"metadata": {"planman_invoice_id": str(invoice_id)}},
            "line_items": [{"quantity": 1, "price_data": {"currency": "gbp", "unit_amount": amount,
                                                          "product_data": {"name": "Invoice INV-0042"}}}]}
