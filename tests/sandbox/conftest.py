"""Fixtures for the Xero stand-in's own tests: a fresh app on a temp SQLite file per test,
and helpers that drive it the way a client (PlanMan) would, over its HTTP interface."""
from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from xero_sandbox import create_app
from xero_sandbox.demo import UK_TENANT_ID

CLIENT_ID, CLIENT_SECRET = "planman-dev", "planman-dev-secret"
REDIRECT_URI = "http://127.0.0.1:5000/integrations/xero/callback"
SCOPE = "openid offline_access accounting.contacts accounting.invoices accounting.settings.read"
API = "/api.xro/2.0"


@pytest.fixture
def stand_in_config(tmp_path):
    return {"DATABASE": str(tmp_path / "xero_sandbox.db"), "TESTING": True,
            "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET}


@pytest.fixture
def stand_in(stand_in_config):
    return create_app(stand_in_config)


@pytest.fixture
def xero(stand_in):
    return stand_in.test_client()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(challenge: str | None = None, state: str = "state-123", scope: str = SCOPE) -> dict:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
              "scope": scope, "state": state}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    return params


def consent(client, params: dict, tenants=(UK_TENANT_ID,), decision: str = "allow", user: str | None = None):
    """Submit the consent form as a browser would (the hidden fields carry the request)."""
    data = {**params, "tenant": list(tenants), "decision": decision}
    if user:
        data["user"] = user
    return client.post("/identity/connect/authorize", data=data)


def redirect_query(response) -> dict:
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def basic_auth(client_id=CLIENT_ID, secret=CLIENT_SECRET) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def connect(client, tenants=(UK_TENANT_ID,), scope: str = SCOPE, user: str | None = None) -> dict:
    """The whole authorisation-code flow with PKCE; returns the token response."""
    verifier, challenge = pkce_pair()
    code = redirect_query(consent(client, authorize_params(challenge, scope=scope), tenants, user=user))["code"]
    response = client.post("/connect/token", headers=basic_auth(), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


class Api:
    """An accounting API client bound to one token and tenant."""

    def __init__(self, client, token: str, tenant_id: str = UK_TENANT_ID):
        self.client, self.token, self.tenant_id = client, token, tenant_id

    def headers(self, extra=None) -> dict:
        return {"Authorization": f"Bearer {self.token}", "xero-tenant-id": self.tenant_id,
                "Accept": "application/json", **(extra or {})}

    def get(self, path, **kw):
        return self.client.get(API + path, headers=self.headers(kw.pop("headers", None)), **kw)

    def put(self, path, json, **kw):
        return self.client.put(API + path, json=json, headers=self.headers(kw.pop("headers", None)), **kw)

    def post(self, path, json, **kw):
        return self.client.post(API + path, json=json, headers=self.headers(kw.pop("headers", None)), **kw)

    # Conveniences that assert success, for tests whose subject is something else.
    def contact(self, name: str, **fields) -> dict:
        r = self.put("/Contacts", {"Contacts": [{"Name": name, **fields}]}, query_string={"summarizeErrors": "false"})
        assert r.status_code == 200 and not r.get_json()["Contacts"][0]["HasValidationErrors"], r.get_data(as_text=True)
        return r.get_json()["Contacts"][0]

    def invoice(self, contact_id: str, lines=None, **fields) -> dict:
        lines = lines or [{"Description": "Bookkeeping", "Quantity": 1, "UnitAmount": 100,
                           "AccountCode": "200", "TaxType": "OUTPUT2"}]
        r = self.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact_id},
                                                 "LineItems": lines, **fields}]},
                     query_string={"summarizeErrors": "false"})
        body = r.get_json()
        assert r.status_code == 200 and not body["Invoices"][0]["HasErrors"], r.get_data(as_text=True)
        return body["Invoices"][0]


@pytest.fixture
def tokens(xero):
    return connect(xero)


@pytest.fixture
def api(xero, tokens):
    return Api(xero, tokens["access_token"])


@pytest.fixture
def no_violations(xero):
    """Use in tests that must send only spec-conforming requests."""
    yield
    assert xero.get("/_control/violations").get_json() == []


@pytest.fixture
def live_url(stand_in):
    """The stand-in on a real threaded werkzeug server (a free port), for socket-level behaviour."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, stand_in, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def pytest_collection_modifyitems(config, items):
    # openapi-core warns on every validation that it does not check OAuth2 security;
    # the stand-in checks bearer tokens itself, so the warning is noise here.
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning"))
