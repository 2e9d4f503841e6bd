"""Connect To Xero with Xero played by `responses`: the OAuth flow and its error
paths, choosing an organisation, settings, disconnect and reconnect.

Every request to the accounting API is checked against the official spec by
the ``xero_api`` fixture (tests/xero_spec.py)."""
from __future__ import annotations

import base64
import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from rq import SimpleWorker

from planman import jobs
from planman.extensions import db
from planman.integrations import connections
from planman.integrations.tokens import load_token, store_token
from planman.models import Connection, ExternalLink, User, utcnow
from tests.helpers import PASSWORD, login, make_client, new_client, post_form, signup, tax_rate
from tests.xero_spec import ACCOUNTING_BASE, xero_api  # noqa: F401

TOKEN_URL = "https://identity.xero.com/connect/token"
REVOKE_URL = "https://identity.xero.com/connect/revocation"
CONNECTIONS_URL = "https://api.xero.com/connections"
AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
CALLBACK = "/integrations/xero/callback"

UK = {"tenantId": "3c288be6-b007-4363-8838-fd102ad964be", "tenantName": "Demo Company (UK)",
      "id": "c1a2b3c4-0000-4000-8000-00000000000a"}
US = {"tenantId": "79e1a4b3-d30c-4fe7-93d6-ddf99e57607d", "tenantName": "Demo Company (US)",
      "id": "c1a2b3c4-0000-4000-8000-00000000000b"}
ACCESS = "plain-access-token-AAAA1111"
REFRESH = "plain-refresh-token-RRRR2222"


# -- helpers -------------------------------------------------------------------------

def connection_json(org):
    return {**org, "tenantType": "ORGANISATION", "authEventId": "d9b2f2a4-0000-4000-8000-000000000001",
            "createdDateUtc": "2026-11-24T10:00:00.0000000", "updatedDateUtc": "2026-11-24T10:00:00.0000000"}


def token_json(access=ACCESS, refresh=REFRESH, expires_in=1800):
    return {"access_token": access, "refresh_token": refresh, "expires_in": expires_in, "token_type": "Bearer",
            "scope": "offline_access accounting.contacts accounting.invoices accounting.settings.read"}


def mock_identity(xero_api, orgs=(UK,), token=None):
    xero_api.rsps.add("POST", TOKEN_URL, json=token or token_json())
    xero_api.rsps.add("GET", CONNECTIONS_URL, json=[connection_json(o) for o in orgs])


def mock_org_details(xero_api, name="Demo Company (UK)", short_code="!dmoUK", currencies=("GBP", "USD")):
    xero_api.add("GET", "/Organisation", json={"Organisations": [
        {"Name": name, "ShortCode": short_code, "BaseCurrency": "GBP"}]})
    xero_api.add("GET", "/Currencies", json={"Currencies": [{"Code": code, "Description": code} for code in currencies]})
    xero_api.add("GET", "/Accounts", json={"Accounts": [
        {"Code": "090", "Name": "Business Bank Account", "Type": "BANK", "Status": "ACTIVE"},
        {"Code": "200", "Name": "Sales", "Type": "REVENUE", "Status": "ACTIVE"},
        {"Code": "260", "Name": "Other Revenue", "Type": "REVENUE", "Status": "ACTIVE"},
        {"Code": "429", "Name": "General Expenses", "Type": "EXPENSE", "Status": "ACTIVE"},
    ]})
    xero_api.add("GET", "/TaxRates", json={"TaxRates": [
        {"Name": "20% (VAT on Income)", "TaxType": "OUTPUT2", "EffectiveRate": 20.0, "Status": "ACTIVE",
         "CanApplyToRevenue": True},
        {"Name": "5% (VAT on Income)", "TaxType": "RROUTPUT", "EffectiveRate": 5.0, "Status": "ACTIVE",
         "CanApplyToRevenue": True},
        {"Name": "Zero Rated Income", "TaxType": "ZERORATEDOUTPUT", "EffectiveRate": 0.0, "Status": "ACTIVE",
         "CanApplyToRevenue": True},
        {"Name": "No VAT", "TaxType": "NONE", "EffectiveRate": 0.0, "Status": "ACTIVE", "CanApplyToRevenue": True},
        {"Name": "20% (VAT on Expenses)", "TaxType": "INPUT2", "EffectiveRate": 20.0, "Status": "ACTIVE",
         "CanApplyToRevenue": False},
    ]})


def start_connect(client) -> dict:
    """Click Connect To Xero; return the authorize URL's query parameters."""
    response = post_form(client, "/integrations/xero/connect", {}, form_url="/integrations/xero")
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(AUTHORIZE_URL + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def come_back(client, **params):
    return client.get(CALLBACK, query_string=params, follow_redirects=True)


def run_jobs(app):
    SimpleWorker(jobs.queues(app), connection=app.redis).work(burst=True)


def the_connection(user) -> Connection | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(Connection).where(Connection.firm_id == user.firm_id))


def connect_one(app, client, xero_api, orgs=(UK,), *, load_details=True):
    mock_identity(xero_api, orgs)
    if load_details:
        mock_org_details(xero_api)
    params = start_connect(client)
    page = come_back(client, code="the-code", state=params["state"], scope=params["scope"])
    if load_details:
        run_jobs(app)
    return page, params


def colleague(admin: User, *, is_admin=False, email="colleague@example.com") -> User:
    user = User(firm_id=admin.firm_id, name="Cole League", email=email, is_admin=is_admin)
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    return user


def connected(user, *, tenant=UK, settings=None, expires_in=1800) -> Connection:
    """A connection stored directly (as if connected and details loaded)."""
    connection = Connection(
        firm_id=user.firm_id, provider="xero", state="connected", tenant_id=tenant["tenantId"],
        tenant_name=tenant["tenantName"], remote_connection_id=tenant["id"], connected_at=utcnow(),
        connected_by_id=user.id, settings=settings if settings is not None else loaded_settings(tenant),
    )
    store_token(connection, token_json(expires_in=expires_in))
    db.session.add(connection)
    db.session.commit()
    return connection


def loaded_settings(tenant=UK):
    return {
        "tenant_id": tenant["tenantId"], "details_state": "loaded", "details_loaded_at": "2026-11-24T10:00:00",
        "xero_accounts": [{"code": "200", "name": "Sales"}, {"code": "260", "name": "Other Revenue"}],
        "xero_tax_rates": [{"type": "OUTPUT2", "name": "20% (VAT on Income)", "rate": "20.0"},
                           {"type": "RROUTPUT", "name": "5% (VAT on Income)", "rate": "5.0"},
                           {"type": "ZERORATEDOUTPUT", "name": "Zero Rated Income", "rate": "0.0"},
                           {"type": "NONE", "name": "No VAT", "rate": "0.0"}],
        "sales_account_code": "200", "tax_types": {}, "no_tax_type": "NONE", "invoice_status": "DRAFT",
    }


@pytest.fixture
def admin(client):
    return signup(client, name="Ada Admin", firm_name="Ada & Co")


# -- starting the flow --------------------------------------------------------------------

def test_connect_redirects_to_xero_with_state_pkce_and_scopes(app, client, admin):
    params = start_connect(client)
    assert params["response_type"] == "code"
    assert params["client_id"] == "test-client-id"
    # Built from PUBLIC_BASE_URL, not the test request's host.
    assert params["redirect_uri"] == "http://planman.test/integrations/xero/callback"
    assert params["scope"] == "offline_access accounting.contacts accounting.invoices accounting.payments accounting.settings.read"
    assert len(params["state"]) >= 20
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    # The PKCE verifier stays on the server, not in the session cookie.
    with client.session_transaction() as session:
        assert all("code_verifier" not in json.dumps(value) for value in session.values())
    assert the_connection(admin) is None


def test_connect_start_needs_csrf(app, client, admin):
    assert client.post("/integrations/xero/connect").status_code == 400


@pytest.mark.parametrize("config_overrides", [{"XERO_SCOPES": "offline_access accounting.transactions"}])
def test_scopes_are_configurable(app, client, admin, config_overrides):
    assert start_connect(client)["scope"] == "offline_access accounting.transactions"


def test_unknown_provider_is_404(client, admin):
    assert client.get("/integrations/nonesuch").status_code == 404
    assert client.get("/integrations/nonesuch/callback").status_code == 404


# -- coming back --------------------------------------------------------------------------

def test_callback_with_one_org_connects_and_keeps_tokens_encrypted(app, client, admin, xero_api, caplog):
    caplog.set_level(logging.DEBUG)
    mock_identity(xero_api)
    params = start_connect(client)
    page = come_back(client, code="the-code", state=params["state"], scope=params["scope"])
    html = page.get_data(as_text=True)
    assert "Connected to Demo Company (UK)" in html

    # The code exchange: PKCE verifier, exact redirect URI, client credentials in Basic auth.
    exchange = xero_api.requests_to("POST", TOKEN_URL)[0]
    form = parse_qs(exchange.body)
    assert form["grant_type"] == ["authorization_code"] and form["code"] == ["the-code"]
    assert form["redirect_uri"] == ["http://planman.test/integrations/xero/callback"]
    assert len(form["code_verifier"][0]) >= 43
    assert exchange.headers["Authorization"] == "Basic " + base64.b64encode(
        b"test-client-id:test-client-secret").decode()
    listing = xero_api.requests_to("GET", CONNECTIONS_URL)[0]
    assert listing.headers["Authorization"] == f"Bearer {ACCESS}"

    connection = the_connection(admin)
    assert connection.state == "connected"
    assert connection.tenant_id == UK["tenantId"] and connection.remote_connection_id == UK["id"]
    assert connection.tenant_name == "Demo Company (UK)"
    assert connection.connected_by_id == admin.id and connection.connected_at is not None
    assert connection.settings["invoice_status"] == "DRAFT"
    assert load_token(connection)["refresh_token"] == REFRESH

    # Tokens appear nowhere in plain text: not in the row, the pages, the logs or the session.
    with db.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM connection")).one()
    stored = " ".join(str(value) for value in row)
    pages = html + client.get("/integrations/").get_data(as_text=True) + \
        client.get("/integrations/xero").get_data(as_text=True)
    with client.session_transaction() as session:
        session_dump = json.dumps(dict(session), default=str)
    for secret in (ACCESS, REFRESH):
        assert secret not in stored
        assert secret not in pages
        assert secret not in caplog.text
        assert secret not in session_dump

    # The organisation's details are loaded by a job, not by the web request.
    assert not xero_api.accounting_requests
    assert "Loading from Xero" in client.get("/integrations/xero").get_data(as_text=True)
    assert app.push_queue.count == 1


def test_details_job_fills_pickers_and_suggests_defaults(app, client, admin, xero_api):
    connect_one(app, client, xero_api)
    connection = the_connection(admin)
    settings = connection.settings
    assert connection.tenant_short_code == "!dmoUK"
    assert [a["code"] for a in settings["xero_accounts"]] == ["200", "260"]  # revenue accounts only
    assert "INPUT2" not in {r["type"] for r in settings["xero_tax_rates"]}
    assert settings["sales_account_code"] == "200"
    assert settings["no_tax_type"] == "NONE"
    assert settings["base_currency"] == "GBP"
    assert settings["details_state"] == "loaded"
    # 20% and 5% match one Xero rate each; 0% matches two, so it is left for the admin.
    assert settings["tax_types"] == {str(tax_rate(admin, "VAT 20%").id): "OUTPUT2",
                                     str(tax_rate(admin, "Reduced 5%").id): "RROUTPUT"}
    for request in xero_api.accounting_requests:
        assert request.headers["xero-tenant-id"] == UK["tenantId"]
        assert request.headers["Accept"] == "application/json"

    page = client.get("/integrations/xero").get_data(as_text=True)
    assert "Loading from Xero" not in page and 'id="settings-form"' in page
    assert '<option selected value="200">' in page
    partial = client.get("/integrations/xero/settings/details").get_data(as_text=True)
    assert "hx-trigger" not in partial  # loaded: the partial stops polling


def test_settings_partial_polls_while_loading(app, client, admin, xero_api):
    connect_one(app, client, xero_api, load_details=False)
    partial = client.get("/integrations/xero/settings/details").get_data(as_text=True)
    assert 'hx-trigger="load delay:1s"' in partial and "Loading from Xero" in partial


def test_two_orgs_show_a_choice_then_connect_the_one_picked(app, client, admin, xero_api):
    mock_identity(xero_api, orgs=(UK, US))
    params = start_connect(client)
    page = come_back(client, code="the-code", state=params["state"])
    html = page.get_data(as_text=True)
    assert "Which Xero organisation" in html
    assert "Demo Company (UK)" in html and "Demo Company (US)" in html
    connection = the_connection(admin)
    assert connection.state == "choosing" and connection.tenant_id is None
    assert connection.token_ciphertext and ACCESS not in json.dumps(connection.pending_tenants)
    assert "Choose an organisation" in client.get("/integrations/").get_data(as_text=True)

    bad = post_form(client, "/integrations/xero/choose", {"tenant_id": "not-offered"})
    assert bad.status_code == 422
    assert "Choose one of the organisations" in bad.get_data(as_text=True)

    xero_api.rsps.add("DELETE", f"{CONNECTIONS_URL}/{UK['id']}", status=204)
    done = post_form(client, "/integrations/xero/choose", {"tenant_id": US["tenantId"]}, follow_redirects=True)
    assert "Connected to Demo Company (US)" in done.get_data(as_text=True)
    assert "flash-warning" not in done.get_data(as_text=True)
    connection = the_connection(admin)
    assert connection.state == "connected" and connection.tenant_id == US["tenantId"]
    assert connection.remote_connection_id == US["id"] and connection.pending_tenants is None
    assert app.push_queue.count == 1
    # The organisation not chosen is given back: Xero counts every connection
    # against the app's limit and lists PlanMan in that organisation.
    [removed] = [c.request for c in xero_api.rsps.calls if c.request.method == "DELETE"]
    assert removed.url == f"{CONNECTIONS_URL}/{UK['id']}" and removed.headers["Authorization"] == f"Bearer {ACCESS}"


def test_an_organisation_not_chosen_that_cannot_be_given_back_is_named(app, client, admin, xero_api):
    mock_identity(xero_api, orgs=(UK, US))
    params = start_connect(client)
    come_back(client, code="the-code", state=params["state"])
    xero_api.rsps.add("DELETE", f"{CONNECTIONS_URL}/{UK['id']}", status=503, body="Service Unavailable")
    html = post_form(client, "/integrations/xero/choose", {"tenant_id": US["tenantId"]},
                     follow_redirects=True).get_data(as_text=True)
    assert "Connected to Demo Company (US)" in html
    assert "could not give up its access to Demo Company (UK), which you approved but did not choose" in html
    assert the_connection(admin).tenant_id == US["tenantId"]


def test_an_organisation_another_firm_holds_is_not_connected_again(app, client, admin, xero_api):
    # Xero's webhooks name only the organisation: with two firms on it, one
    # firm's events would be read as the other's.
    connected(admin, tenant=UK)
    other_browser = new_client(app)
    other = signup(other_browser, email="b@example.com", firm_name="Firm B")
    mock_identity(xero_api, orgs=(UK,))
    page = come_back(other_browser, code="c", state=start_connect(other_browser)["state"]).get_data(as_text=True)
    assert "Demo Company (UK) is already connected to another firm in PlanMan, so nothing was changed" in page
    assert the_connection(other) is None or not the_connection(other).is_usable

    # Among several approved, it cannot be the one chosen; another can.
    mock_identity(xero_api, orgs=(UK, US))
    come_back(other_browser, code="c2", state=start_connect(other_browser)["state"])
    refused = post_form(other_browser, "/integrations/xero/choose", {"tenant_id": UK["tenantId"]},
                        follow_redirects=True).get_data(as_text=True)
    assert "already connected to another firm in PlanMan" in refused
    xero_api.rsps.add("DELETE", f"{CONNECTIONS_URL}/{UK['id']}", status=204)
    chosen = post_form(other_browser, "/integrations/xero/choose", {"tenant_id": US["tenantId"]},
                       follow_redirects=True).get_data(as_text=True)
    assert "Connected to Demo Company (US)" in chosen
    assert the_connection(other).tenant_id == US["tenantId"] and the_connection(admin).tenant_id == UK["tenantId"]


def test_deny_leaves_nothing(app, client, admin, xero_api):
    params = start_connect(client)
    page = come_back(client, error="access_denied", state=params["state"])
    assert "You did not allow PlanMan to use Xero" in page.get_data(as_text=True)
    assert the_connection(admin) is None
    assert not xero_api.calls


def test_other_xero_error_is_shown_in_plain_words(app, client, admin, xero_api):
    params = start_connect(client)
    page = come_back(client, error="invalid_scope", error_description="<b>bad</b>", state=params["state"])
    html = page.get_data(as_text=True)
    assert "Xero reported a problem (invalid_scope)" in html and "<b>bad</b>" not in html
    assert the_connection(admin) is None


def test_forged_state_is_refused_without_exchanging_the_code(app, client, admin, xero_api):
    mock_identity(xero_api)
    start_connect(client)
    page = come_back(client, code="the-code", state="forged-state")
    assert "already used or did not start here" in page.get_data(as_text=True)
    assert not xero_api.calls
    assert the_connection(admin) is None


def test_callback_without_a_started_flow_is_refused(app, client, admin, xero_api):
    page = come_back(client, code="the-code", state="anything")
    assert "was not started from this PlanMan account" in page.get_data(as_text=True)
    assert not xero_api.calls and the_connection(admin) is None


def test_reused_state_is_refused(app, client, admin, xero_api):
    _page, first = connect_one(app, client, xero_api, load_details=False)
    connection = the_connection(admin)
    connection.state = "needs_reconnect"
    db.session.commit()
    exchanges = len(xero_api.requests_to("POST", TOKEN_URL))
    second = start_connect(client)  # a new flow is pending in this browser
    page = come_back(client, code="the-code", state=first["state"])
    assert "already used or did not start here" in page.get_data(as_text=True)
    assert len(xero_api.requests_to("POST", TOKEN_URL)) == exchanges  # no second exchange
    assert the_connection(admin).state == "needs_reconnect"
    assert second["state"] != first["state"]


def test_token_exchange_failure_stores_nothing(app, client, admin, xero_api):
    xero_api.rsps.add("POST", TOKEN_URL, status=400, json={"error": "invalid_grant"})
    params = start_connect(client)
    page = come_back(client, code="old-code", state=params["state"])
    assert "Xero did not accept that sign-in" in page.get_data(as_text=True)
    assert the_connection(admin) is None


def test_connections_failure_stores_nothing(app, client, admin, xero_api):
    xero_api.rsps.add("POST", TOKEN_URL, json=token_json())
    xero_api.rsps.add("GET", CONNECTIONS_URL, status=500, json={"title": "Internal Server Error"})
    params = start_connect(client)
    page = come_back(client, code="the-code", state=params["state"])
    html = page.get_data(as_text=True)
    assert "could not read which organisations you approved" in html
    assert ACCESS not in html
    assert the_connection(admin) is None


def test_approval_without_any_organisation_stores_nothing(app, client, admin, xero_api):
    mock_identity(xero_api, orgs=())
    params = start_connect(client)
    page = come_back(client, code="the-code", state=params["state"])
    assert "did not give PlanMan access to any Xero organisation" in page.get_data(as_text=True)
    assert the_connection(admin) is None


def test_callback_for_a_user_of_another_firm_is_refused(app, client, admin, xero_api):
    mock_identity(xero_api)
    params = start_connect(client)
    # Someone else logs in in this browser (another firm's admin) and lands on the callback.
    other_client = app.test_client()
    other = signup(other_client, firm_name="Other firm")
    with client.session_transaction() as session:
        session["_user_id"] = str(other.id)
    page = come_back(client, code="the-code", state=params["state"])
    assert "was not started from this PlanMan account" in page.get_data(as_text=True)
    assert not xero_api.calls
    assert db.session.scalar(sa.select(sa.func.count(Connection.id))) == 0


# -- who may do what ------------------------------------------------------------------

def test_non_admin_sees_the_state_but_cannot_change_anything(app, client, admin, xero_api):
    connection = connected(admin)
    user = colleague(admin)
    other = app.test_client()
    assert login(other, user.email).status_code == 302

    index = other.get("/integrations/").get_data(as_text=True)
    assert "Connected to <strong>Demo Company (UK)</strong>" in index and "by Ada Admin" in index
    page = other.get("/integrations/xero").get_data(as_text=True)
    assert "Demo Company (UK)" in page
    assert "Disconnect" not in page and "Connect To Xero" not in page and "settings-form" not in page

    token = other.get("/integrations/").get_data(as_text=True).split('"X-CSRFToken": "')[1].split('"')[0]
    for path in ("connect", "choose", "settings", "refresh", "disconnect"):
        response = other.post(f"/integrations/xero/{path}", data={"csrf_token": token})
        assert response.status_code == 404, path
    assert other.get("/integrations/xero/settings/details").status_code == 404
    assert other.get("/integrations/xero/choose").status_code == 404
    assert other.get(f"{CALLBACK}?code=x&state=y").status_code == 404
    assert the_connection(admin).state == "connected"
    assert not xero_api.calls
    del connection


def test_anonymous_is_sent_to_login(client):
    response = client.get("/integrations/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# -- settings --------------------------------------------------------------------------------

def test_settings_are_validated_against_what_xero_returned(app, client, admin):
    connected(admin)
    vat20, reduced, zero = (tax_rate(admin, n) for n in ("VAT 20%", "Reduced 5%", "Zero rated"))
    page = client.get("/integrations/xero").get_data(as_text=True)
    assert "Awaiting approval" in page and "Awaiting payment" in page
    assert f'name="tax_type_{vat20.id}"' in page

    bad = post_form(client, "/integrations/xero/settings", {
        "sales_account_code": "999", "no_tax_type": "MADEUP", "invoice_status": "PAID",
        f"tax_type_{vat20.id}": "OUTPUT2", f"tax_type_{reduced.id}": "INPUT9", f"tax_type_{zero.id}": "",
    }, form_url="/integrations/xero")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "Choose one of the sales accounts your Xero organisation has." in html
    assert html.count("Choose one of the tax types your Xero organisation has.") == 2
    assert "Choose Draft, Awaiting approval or Awaiting payment." in html
    assert "Choose one." in html
    assert the_connection(admin).settings["sales_account_code"] == "200"

    good = post_form(client, "/integrations/xero/settings", {
        "sales_account_code": "260", "no_tax_type": "NONE", "invoice_status": "SUBMITTED",
        f"tax_type_{vat20.id}": "OUTPUT2", f"tax_type_{reduced.id}": "RROUTPUT",
        f"tax_type_{zero.id}": "ZERORATEDOUTPUT",
    }, form_url="/integrations/xero", follow_redirects=True)
    assert "Xero settings saved." in good.get_data(as_text=True)
    settings = the_connection(admin).settings
    assert settings["sales_account_code"] == "260" and settings["invoice_status"] == "SUBMITTED"
    assert settings["no_tax_type"] == "NONE"
    assert settings["tax_types"] == {str(vat20.id): "OUTPUT2", str(reduced.id): "RROUTPUT",
                                     str(zero.id): "ZERORATEDOUTPUT"}
    assert settings["xero_accounts"]  # the lists are kept


def test_refresh_button_requeues_the_details_job(app, client, admin, xero_api):
    connected(admin)
    response = post_form(client, "/integrations/xero/refresh", {}, form_url="/integrations/xero",
                         headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Loading from Xero" in response.get_data(as_text=True)
    assert app.push_queue.count == 1
    mock_org_details(xero_api, name="Demo Company (UK) renamed")
    run_jobs(app)
    connection = the_connection(admin)
    assert connection.tenant_name == "Demo Company (UK) renamed"
    assert connection.settings["details_state"] == "loaded"
    assert connection.settings["sales_account_code"] == "200"  # kept


# -- disconnect and reconnect ----------------------------------------------------------------------

def test_disconnect_deletes_the_connection_revokes_and_wipes_tokens(app, client, admin, xero_api):
    connected(admin)
    xero_api.rsps.add("DELETE", f"{CONNECTIONS_URL}/{UK['id']}", status=204)
    xero_api.rsps.add("POST", REVOKE_URL, status=200)
    page = post_form(client, "/integrations/xero/disconnect", {}, form_url="/integrations/xero",
                     follow_redirects=True)
    html = page.get_data(as_text=True)
    assert "Disconnected from Demo Company (UK)." in html
    assert "Connect To Xero" in html

    delete = xero_api.requests_to("DELETE", f"/connections/{UK['id']}")[0]
    assert delete.headers["Authorization"] == f"Bearer {ACCESS}"
    revoke = xero_api.requests_to("POST", REVOKE_URL)[0]
    assert parse_qs(revoke.body)["token"] == [REFRESH]
    connection = the_connection(admin)
    assert connection.state == "disconnected"
    assert connection.token_ciphertext is None and connection.tenant_id is None
    assert connection.remote_connection_id is None
    assert "Not connected" in client.get("/integrations/").get_data(as_text=True)


def test_disconnect_shows_problems_but_still_wipes_tokens(app, client, admin, xero_api):
    connected(admin)
    xero_api.rsps.add("DELETE", f"{CONNECTIONS_URL}/{UK['id']}", status=204)
    xero_api.rsps.add("POST", REVOKE_URL, body=ConnectionError("down"))
    page = post_form(client, "/integrations/xero/disconnect", {}, form_url="/integrations/xero",
                     follow_redirects=True)
    html = page.get_data(as_text=True)
    assert "flash-warning" in html and "Connected apps" in html
    assert the_connection(admin).token_ciphertext is None


def test_disconnect_says_so_when_xero_refuses_the_revocation(app, client, admin, xero_api):
    # Authlib hands back the refusal without raising; RFC 7009 answers 200 even
    # for a dead token, so a 503 means Xero still honours it.
    connected(admin)
    xero_api.rsps.add("DELETE", f"{CONNECTIONS_URL}/{UK['id']}", status=204)
    xero_api.rsps.add("POST", REVOKE_URL, status=503, body="Service Unavailable")
    html = post_form(client, "/integrations/xero/disconnect", {}, form_url="/integrations/xero",
                     follow_redirects=True).get_data(as_text=True)
    assert "flash-warning" in html
    assert "did not confirm that PlanMan&#39;s access was revoked (it answered 503)" in html
    assert "Settings &gt; Connected apps in Xero" in html
    assert the_connection(admin).token_ciphertext is None


def test_a_late_sign_in_leaves_the_connection_another_admin_made_meanwhile(app, client, admin, xero_api):
    mock_identity(xero_api, orgs=(UK, US), token=token_json(access="late-access", refresh="late-refresh"))
    params = start_connect(client)  # this admin goes to Xero...
    connected(colleague(admin, is_admin=True, email="boss2@example.com"), tenant=UK)  # ...another connects meanwhile
    html = come_back(client, code="c", state=params["state"]).get_data(as_text=True)
    assert "connected to Demo Company (UK) while you were signing in to Xero, so nothing was changed" in html
    connection = the_connection(admin)
    assert connection.state == "connected" and connection.tenant_id == UK["tenantId"]
    assert load_token(connection)["refresh_token"] == REFRESH  # the other admin's tokens, not the late ones
    assert not xero_api.requests_to("POST", REVOKE_URL)


def _reconnect(app, client, xero_api, org):
    xero_api.rsps.add("DELETE", f"{CONNECTIONS_URL}/{UK['id']}", status=204)
    xero_api.rsps.add("POST", REVOKE_URL, status=200)
    post_form(client, "/integrations/xero/disconnect", {}, form_url="/integrations/xero")
    mock_identity(xero_api, orgs=(org,), token=token_json(access="access-2", refresh="refresh-2"))
    params = start_connect(client)
    return come_back(client, code="code-2", state=params["state"])


def test_reconnecting_the_same_org_keeps_links_and_settings(app, client, admin, xero_api):
    connected(admin, settings={**loaded_settings(), "sales_account_code": "260"})
    record = make_client(admin, name="Acme Ltd")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=UK["tenantId"],
                                record_type="client", record_id=record.id,
                                external_id="11111111-1111-4111-8111-111111111111"))
    db.session.commit()
    panel = f"/integrations/xero/client/{record.id}/panel"
    assert ">Update<" in client.get(panel).get_data(as_text=True)

    page = _reconnect(app, client, xero_api, UK)
    assert "Connected to Demo Company (UK)" in page.get_data(as_text=True)
    assert ">Update<" in client.get(panel).get_data(as_text=True)
    assert the_connection(admin).settings["sales_account_code"] == "260"


def test_connecting_another_org_starts_fresh_and_keeps_old_links_intact(app, client, admin, xero_api):
    connected(admin, settings={**loaded_settings(), "sales_account_code": "260"})
    record = make_client(admin, name="Acme Ltd")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=UK["tenantId"],
                                record_type="client", record_id=record.id,
                                external_id="11111111-1111-4111-8111-111111111111"))
    db.session.commit()
    panel = f"/integrations/xero/client/{record.id}/panel"

    page = _reconnect(app, client, xero_api, US)
    assert "Connected to Demo Company (US)" in page.get_data(as_text=True)
    assert ">Send<" in client.get(panel).get_data(as_text=True)
    connection = the_connection(admin)
    assert "sales_account_code" not in connection.settings and "xero_accounts" not in connection.settings
    link = db.session.scalar(sa.select(ExternalLink))
    assert link.tenant_id == UK["tenantId"]  # the old organisation's link is untouched


def test_connect_is_refused_while_connected(app, client, admin, xero_api):
    connected(admin)
    response = post_form(client, "/integrations/xero/connect", {}, form_url="/integrations/",
                         follow_redirects=True)
    assert "already connected to Demo Company (UK)" in response.get_data(as_text=True)
    assert not xero_api.calls


# -- key rotation ----------------------------------------------------------------------------

def test_rotate_token_key_reencrypts_with_the_first_key(app, admin):
    from cryptography.fernet import Fernet

    connection = connected(admin)
    old_key = app.config["TOKEN_ENCRYPTION_KEY"]
    new_key = Fernet.generate_key().decode()
    app.config["TOKEN_ENCRYPTION_KEY"] = f"{new_key},{old_key}"
    result = app.test_cli_runner().invoke(args=["rotate-token-key"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted the tokens of 1 connection" in result.output
    app.config["TOKEN_ENCRYPTION_KEY"] = new_key  # the old key can now be dropped
    assert load_token(the_connection(admin))["refresh_token"] == REFRESH
    del connection


# -- which organisations an approval added ------------------------------------------------

def jwt_access_token(claims: dict) -> str:
    """An access token shaped as Xero's (a JWT); the signature is never checked for this claim."""
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


EVENT_BEFORE = "d9b2f2a4-0000-4000-8000-000000000001"
EVENT_NOW = "d9b2f2a4-0000-4000-8000-000000000002"


def mock_connections_of_two_approvals(xero_api, *, honours_filter=True):
    """UK was connected by an earlier approval, US by this one; /connections lists both."""
    listed = [{**connection_json(UK), "authEventId": EVENT_BEFORE}, {**connection_json(US), "authEventId": EVENT_NOW}]

    def answer(request):
        wanted = parse_qs(urlsplit(request.url).query).get("authEventId", [None])[0]
        rows = [c for c in listed if not wanted or not honours_filter or c["authEventId"] == wanted]
        return 200, {"Content-Type": "application/json"}, json.dumps(rows)

    access = jwt_access_token({"sub": "user-1", "authentication_event_id": EVENT_NOW, "xero_userid": "u-1"})
    xero_api.rsps.add("POST", TOKEN_URL, json=token_json(access=access))
    xero_api.rsps.add_callback("GET", CONNECTIONS_URL, callback=answer)


@pytest.mark.parametrize("honours_filter", [True, False])
def test_only_the_organisations_this_approval_added_are_offered(app, client, admin, xero_api, honours_filter):
    mock_connections_of_two_approvals(xero_api, honours_filter=honours_filter)
    params = start_connect(client)
    page = come_back(client, code="the-code", state=params["state"]).get_data(as_text=True)

    listing = xero_api.requests_to("GET", CONNECTIONS_URL)[0]
    assert parse_qs(urlsplit(listing.url).query)["authEventId"] == [EVENT_NOW]
    # Only US was approved just now: it connects at once, UK is not offered.
    assert "Connected to Demo Company (US)" in page and "Which Xero organisation" not in page
    connection = the_connection(admin)
    assert connection.state == "connected" and connection.tenant_id == US["tenantId"]


def test_a_token_that_is_not_a_jwt_offers_every_organisation_it_reaches(app, client, admin, xero_api):
    mock_identity(xero_api, orgs=(UK, US))  # plain (opaque) access token
    params = start_connect(client)
    page = come_back(client, code="the-code", state=params["state"]).get_data(as_text=True)
    assert "Which Xero organisation" in page
    assert "authEventId" not in xero_api.requests_to("GET", CONNECTIONS_URL)[0].url


# -- the organisation's currencies ---------------------------------------------------------

def test_the_organisations_currencies_load_after_connecting_and_on_refresh(app, client, admin, xero_api):
    connect_one(app, client, xero_api)
    assert the_connection(admin).settings["currencies"] == ["GBP", "USD"]
    assert xero_api.requests_to("GET", "/Currencies")[0].headers["xero-tenant-id"] == UK["tenantId"]

    xero_api.rsps.reset()
    mock_org_details(xero_api, currencies=("GBP", "USD", "EUR"))  # EUR enabled in Xero since
    post_form(client, "/integrations/xero/refresh", {}, form_url="/integrations/xero")
    run_jobs(app)
    assert the_connection(admin).settings["currencies"] == ["EUR", "GBP", "USD"]
