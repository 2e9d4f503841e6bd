"""Fixtures for the Sage stand-in's own tests: a fresh app on a temp SQLite file per test, and
helpers that drive it over HTTP as a client (PlanMan's Sage client) would."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from standins.sage import create_app
from standins.sage.demo import DEMO_USER, GB_BUSINESS_ID, ledger_account_id

CLIENT_ID, CLIENT_SECRET = "planman-dev", "planman-dev-secret"
REDIRECT_URI = "http://127.0.0.1:5000/integrations/sage/callback"
GB_SALES = ledger_account_id(GB_BUSINESS_ID, "4000")


@pytest.fixture
def sage_app(tmp_path):
    return create_app({"DATABASE": str(tmp_path / "sage.db"), "TESTING": True})


@pytest.fixture
def sage(sage_app):
    return sage_app.test_client()


def authorize_params(state: str = "state-1", **extra) -> dict:
    return {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": state,
            "scope": "full_access", "filter": "apiv3.1", **extra}


def redirect_query(response) -> dict:
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def code_for(client, business_id: str = GB_BUSINESS_ID, login: str = DEMO_USER, **extra) -> str:
    response = client.post("/oauth2/auth/central", data={**authorize_params(**extra), "login": login,
                                                          "business_id": business_id, "decision": "allow"})
    return redirect_query(response)["code"]


def token_request(client, **fields):
    return client.post("/token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                       "redirect_uri": REDIRECT_URI, **fields})


def connect(client, **kw) -> dict:
    response = token_request(client, grant_type="authorization_code", code=code_for(client, **kw))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def refresh(client, refresh_token: str):
    return token_request(client, grant_type="refresh_token", refresh_token=refresh_token)


class Api:
    """The Accounting API v3.1 as one business, with one access token."""

    def __init__(self, client, token: str, business_id: str | None = GB_BUSINESS_ID):
        self.client, self.token, self.business_id = client, token, business_id

    def headers(self, **extra) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.business_id:
            headers["X-Business"] = self.business_id
        return {**headers, **extra}

    def get(self, path, **kw):
        return self.client.get(f"/v3.1{path}", headers=self.headers(), **kw)

    def post(self, path, json=None):
        return self.client.post(f"/v3.1{path}", json=json, headers=self.headers())

    def put(self, path, json):
        return self.client.put(f"/v3.1{path}", json=json, headers=self.headers())

    def delete(self, path, **kw):
        return self.client.delete(f"/v3.1{path}", headers=self.headers(), **kw)

    def contact(self, **fields) -> dict:
        r = self.post("/contacts", {"contact": {"name": "Acme Ltd", "contact_type_ids": ["CUSTOMER"],
                                                "reference": "ACME001", **fields}})
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()

    def invoice(self, contact_id: str, lines=None, **fields) -> dict:
        lines = lines or [{"description": "Bookkeeping", "ledger_account_id": GB_SALES, "quantity": 1,
                           "unit_price": "100.00", "tax_rate_id": "GB_STANDARD"}]
        r = self.post("/sales_invoices", {"sales_invoice": {"contact_id": contact_id, "date": "2026-12-01",
                                                            "invoice_lines": lines, **fields}})
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()


@pytest.fixture
def tokens(sage):
    return connect(sage)


@pytest.fixture
def api(sage, tokens):
    return Api(sage, tokens["access_token"])


def ok(response, status: int = 200):
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def only_error(response, status: int = 422) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    [error] = response.get_json()
    assert set(error) == {"$severity", "$dataCode", "$message", "$source"}
    return error
