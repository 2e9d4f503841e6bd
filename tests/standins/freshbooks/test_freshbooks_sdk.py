"""FreshBooks' official Python SDK (freshbooks-sdk 1.3.0), a client nobody here wrote, drives the
stand-in through the stand-ins' /freshbooks prefix on a real server: its requests must be accepted and every answer must
parse into its models (identity, clients, invoices, pagination, errors, token refresh)."""
import threading

import pytest
import requests
from freshbooks import Client, FilterBuilder, PaginateBuilder
from freshbooks.errors import FreshBooksError
from freshbooks.models import VisState
from werkzeug.serving import make_server

from standins import create_app
from standins.freshbooks.demo import UK_ACCOUNT_ID, UK_NAME, US_ACCOUNT_ID

from .conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, redirect_query


@pytest.fixture
def base_url(tmp_path, monkeypatch):
    """All stand-ins on a real server; the SDK pointed at /freshbooks by the variables it reads."""
    server = make_server("127.0.0.1", 0, create_app({"DATABASE": str(tmp_path / "s.db")}), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/freshbooks"
    monkeypatch.setenv("FRESHBOOKS_API_URL", url)   # API and token URLs (freshbooks/client.py)
    monkeypatch.setenv("FRESHBOOKS_AUTH_URL", url)  # the authorize URL
    yield url
    server.shutdown()
    thread.join(5)


class _Location:
    """What the browser's redirect to PlanMan's callback carries, for redirect_query."""

    def __init__(self, response):
        self.status_code, self.headers = response.status_code, response.headers

    def get_data(self, as_text=False):
        return ""


@pytest.fixture
def sdk(base_url):
    client = Client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI)
    authorize = client.get_auth_request_url(scopes=["user:profile:read", "user:clients:write",
                                                    "user:invoices:write"])
    assert authorize.startswith(f"{base_url}/oauth/authorize?")
    consent = requests.get(authorize, timeout=10)
    assert consent.status_code == 200 and UK_NAME in consent.text
    answer = requests.post(authorize, data={"decision": "allow"}, allow_redirects=False, timeout=10)
    code = redirect_query(_Location(answer))["code"]
    tokens = client.get_access_token(code)
    assert tokens.access_token and tokens.refresh_token and tokens.access_token_expires_at
    return client


def test_identity_lists_the_business_memberships(sdk):
    me = sdk.current_user()
    assert me.identity_id == 7001 and me.full_name == "Demo Owner"
    accounts = [m.data["business"]["account_id"] for m in me.business_memberships]
    assert [m.role for m in me.business_memberships] == ["owner", "owner"]
    assert accounts == [UK_ACCOUNT_ID, US_ACCOUNT_ID]


def test_clients_create_list_search_paginate_update_and_delete(sdk):
    first = sdk.clients.create(UK_ACCOUNT_ID, {"organization": "SDK Ltd", "email": "sdk@example.test"})
    assert first.organization == "SDK Ltd" and first.vis_state == VisState.ACTIVE
    for n in range(4):
        sdk.clients.create(UK_ACCOUNT_ID, {"organization": f"Other {n}", "email": "sdk@example.test"})
    listed = sdk.clients.list(UK_ACCOUNT_ID, builders=[PaginateBuilder(2, 2)])
    assert (listed.pages.page, listed.pages.pages, listed.pages.per_page, listed.pages.total) == (2, 3, 2, 5)
    assert [c.organization for c in listed] == ["Other 1", "Other 2"]
    search = FilterBuilder().equals("email", "sdk@example.test").equals("organization", "SDK Ltd")
    [found] = sdk.clients.list(UK_ACCOUNT_ID, builders=[search])
    assert found.id == first.id
    assert sdk.clients.update(UK_ACCOUNT_ID, first.id, {"fname": "Ada"}).fname == "Ada"
    assert sdk.clients.get(UK_ACCOUNT_ID, first.id).signup_date is not None  # a date the SDK parsed
    sdk.clients.delete(UK_ACCOUNT_ID, first.id)  # the SDK deletes by PUT vis_state=1
    assert sdk.clients.get(UK_ACCOUNT_ID, first.id).vis_state == VisState.DELETED


def test_invoices_create_update_and_list_by_number(sdk):
    customer = sdk.clients.create(UK_ACCOUNT_ID, {"organization": "Invoice Me Ltd"})
    invoice = sdk.invoices.create(UK_ACCOUNT_ID, {
        "customerid": customer.id, "create_date": "2026-12-01", "invoice_number": "PM-42",
        "lines": [{"type": 0, "name": "Audit", "qty": 1, "unit_cost": {"amount": "250.00", "code": "GBP"},
                   "taxName1": "VAT", "taxAmount1": 20}]})
    assert invoice.v3_status == "draft" and invoice.status == 1
    assert (invoice.amount.amount, invoice.amount.code) == ("300.00", "GBP")  # money as decimal strings
    assert invoice.create_date.isoformat() == "2026-12-01"  # parsed into a date
    [line] = invoice.lines
    assert line.data["unit_cost"] == {"amount": "250.00", "code": "GBP"}
    updated = sdk.invoices.update(UK_ACCOUNT_ID, invoice.id, {"notes": "Thanks"})
    assert updated.notes == "Thanks"
    [found] = sdk.invoices.list(UK_ACCOUNT_ID, builders=[FilterBuilder().equals("invoice_number", "PM-42")])
    assert found.id == invoice.id
    [tax, _reduced] = sdk.taxes.list(UK_ACCOUNT_ID)
    assert (tax.name, tax.amount) == ("VAT", "20")


def test_errors_parse_into_freshbooks_error_with_errno(sdk):
    with pytest.raises(FreshBooksError) as invalid:
        sdk.clients.create(UK_ACCOUNT_ID, {"email": "not-an-email"})
    assert (invalid.value.status_code, invalid.value.error_code) == (400, 1004)
    assert str(invalid.value) == "Invalid email address."
    with pytest.raises(FreshBooksError) as missing:
        sdk.invoices.create(UK_ACCOUNT_ID, {"customerid": 999999, "create_date": "2026-12-01"})
    assert missing.value.error_code == 1004 and missing.value.error_details[0]["field"] == "customerid"


def test_not_found_is_404_with_errno_1012(sdk):
    with pytest.raises(FreshBooksError) as missing:
        sdk.clients.get(UK_ACCOUNT_ID, 987654)
    assert (missing.value.status_code, missing.value.error_code) == (404, 1012)


def test_refresh_rotates_and_reusing_the_old_refresh_token_fails(sdk):
    old_refresh, old_access = sdk.refresh_token, sdk.access_token
    renewed = sdk.refresh_access_token()
    assert renewed.refresh_token != old_refresh and renewed.access_token != old_access
    assert sdk.current_user().identity_id == 7001  # the SDK uses the new access token
    with pytest.raises(FreshBooksError) as reused:
        sdk.refresh_access_token(old_refresh)
    assert reused.value.status_code == 400 and "invalid" in str(reused.value)
