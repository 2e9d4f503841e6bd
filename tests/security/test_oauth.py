"""The connect flow's callback against forged, replayed and misdirected
sign-ins, with the Xero stand-in as Xero: each is refused with a message on
the page and leaves the database exactly as it was."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Connection
from tests.helpers import client, new_client, post_form, signup  # noqa: F401
from tests.integration_helpers import form_fields
from tests.security.conftest import dump_database
from standins.xero.demo import UK_TENANT_ID

pytestmark = pytest.mark.integration

REPLAYED = "already used or did not start here"
CODE_REFUSED = "did not accept that sign-in"


@pytest.fixture
def config_overrides():
    return {"PUBLIC_BASE_URL": "http://127.0.0.1:5999"}  # a redirect URI the stand-in accepts


@pytest.fixture
def app(integration_app):
    return integration_app


def approve(browser) -> str:
    """Press Connect To Xero and approve on the stand-in's consent page; the
    callback URL (path and query) the browser would be sent to, not yet followed."""
    start = post_form(browser, "/integrations/xero/connect", {}, form_url="/integrations/xero")
    assert start.status_code == 302
    consent_url = start.headers["Location"]
    fields = form_fields(requests.get(consent_url, timeout=10).text)
    fields.pop("tenant", None)
    answer = requests.post(consent_url.split("?")[0], data={**fields, "tenant": [UK_TENANT_ID], "decision": "allow"},
                           allow_redirects=False, timeout=10)
    back = urlsplit(answer.headers["Location"])
    return f"{back.path}?{back.query}"


def with_params(callback: str, **params) -> str:
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    query.update(params)
    return urlsplit(callback).path + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def refused(browser, callback: str, message: str):
    before = dump_database()
    page = browser.get(callback, follow_redirects=True).get_data(as_text=True)
    assert message in page
    assert dump_database() == before


def connection(user):
    db.session.expire_all()
    return db.session.scalar(sa.select(Connection).where(Connection.firm_id == user.firm_id))


def disconnect(browser):
    response = post_form(browser, "/integrations/xero/disconnect", {}, form_url="/integrations/xero")
    assert response.status_code == 302


def test_a_forged_state_is_refused(client, sandbox):
    admin = signup(client)
    callback = approve(client)
    refused(client, with_params(callback, state="forged-state"), REPLAYED)
    assert connection(admin) is None


def test_a_replayed_callback_is_refused_even_during_a_new_attempt(client, sandbox):
    admin = signup(client)
    callback = approve(client)
    assert "Connected to" in client.get(callback, follow_redirects=True).get_data(as_text=True)
    disconnect(client)
    approve(client)  # a new attempt is under way in this browser
    refused(client, callback, REPLAYED)
    assert connection(admin).state == "disconnected"


def test_a_callback_meant_for_another_firms_session_is_refused(app, client, sandbox):
    victim = signup(client)
    victims_callback = approve(client)
    attacker_browser = new_client(app)
    attacker = signup(attacker_browser)
    approve(attacker_browser)  # the attacker has a flow of their own under way
    refused(attacker_browser, victims_callback, REPLAYED)
    assert connection(attacker) is None
    # The victim's own sign-in still works, and lands in the victim's firm only.
    assert "Connected to" in client.get(victims_callback, follow_redirects=True).get_data(as_text=True)
    assert connection(victim).state == "connected" and connection(attacker) is None


def test_a_used_code_is_refused_with_a_fresh_state(client, sandbox):
    admin = signup(client)
    callback = approve(client)
    client.get(callback)
    disconnect(client)
    stored = connection(admin).token_ciphertext
    fresh = approve(client)
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    refused(client, with_params(fresh, code=old_code), CODE_REFUSED)
    assert connection(admin).state == "disconnected" and connection(admin).token_ciphertext == stored
    assert sandbox.stats()["invalid_grants"] >= 1
