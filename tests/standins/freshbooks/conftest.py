"""Fixtures for the FreshBooks stand-in's own tests: a fresh app on a temp SQLite file per test,
and helpers that drive it over HTTP as a client (PlanMan, or freshbooks-sdk) would."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from standins.freshbooks import create_app
from standins.freshbooks.demo import UK_ACCOUNT_ID

CLIENT_ID, CLIENT_SECRET = "planman-dev", "planman-dev-secret"
REDIRECT_URI = "http://127.0.0.1:5000/integrations/freshbooks/callback"


@pytest.fixture
def fb_app(tmp_path):
    return create_app({"DATABASE": str(tmp_path / "fb.db"), "TESTING": True})


@pytest.fixture
def fb(fb_app):
    return fb_app.test_client()


def authorize_params(state: str = "state-1", **extra) -> dict:
    return {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": state, **extra}


def redirect_query(response) -> dict:
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def code_for(client) -> str:
    return redirect_query(client.post("/oauth/authorize", data={**authorize_params(), "decision": "allow"}))["code"]


def token_request(client, **fields):
    return client.post("/auth/oauth/token", json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                                  "redirect_uri": REDIRECT_URI, **fields})


def connect(client) -> dict:
    response = token_request(client, grant_type="authorization_code", code=code_for(client))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


class Api:
    """The accounting API of one business, with one access token."""

    def __init__(self, client, token: str, account_id: str = UK_ACCOUNT_ID):
        self.client, self.token, self.account_id = client, token, account_id

    def url(self, path: str) -> str:
        return f"/accounting/account/{self.account_id}{path}"

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path, **kw):
        return self.client.get(self.url(path), headers=self.headers(), **kw)

    def post(self, path, json):
        return self.client.post(self.url(path), json=json, headers=self.headers())

    def put(self, path, json):
        return self.client.put(self.url(path), json=json, headers=self.headers())

    def client_record(self, **fields) -> dict:
        r = self.post("/users/clients", {"client": {"organization": "Acme Ltd", **fields}})
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()["response"]["result"]["client"]

    def invoice(self, customerid: int, lines=None, **fields) -> dict:
        lines = lines or [{"type": 0, "name": "Bookkeeping", "qty": 1,
                           "unit_cost": {"amount": "100.00", "code": "GBP"}, "taxName1": "VAT", "taxAmount1": 20}]
        r = self.post("/invoices/invoices", {"invoice": {"customerid": customerid, "create_date": "2026-12-01",
                                                         "lines": lines, **fields}})
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()["response"]["result"]["invoice"]


@pytest.fixture
def tokens(fb):
    return connect(fb)


@pytest.fixture
def api(fb, tokens):
    return Api(fb, tokens["access_token"])


def result(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["response"]["result"]


def only_error(response, status: int = 400) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    [error] = response.get_json()["response"]["errors"]
    return error
