"""Token refresh through XeroClient with Xero played by `responses`: before
expiry, after a 401, rotation saved before use, and the ways a connection ends
up "needs reconnecting". Accounting requests are checked against the spec."""
from __future__ import annotations

import time
from urllib.parse import parse_qs

import sqlalchemy as sa

from planman import jobs
from planman.extensions import db
from planman.integrations.crypto import decrypt_json
from planman.integrations.errors import NeedsReconnect
from planman.integrations.registry import get_provider
from planman.integrations.tokens import load_token, store_token
from planman.models import Connection
from tests.helpers import post_form, signup
from tests.test_xero_connect import (ACCESS, REFRESH, TOKEN_URL, UK, connected, mock_org_details, the_connection,
                                     token_json)
from tests.xero_spec import ACCOUNTING_BASE, xero_api  # noqa: F401

import pytest


@pytest.fixture
def admin(client):
    return signup(client, name="Ada Admin")


def bearer(request) -> str:
    return request.headers["Authorization"].removeprefix("Bearer ")


def test_refreshes_shortly_before_expiry_and_uses_the_new_token(app, admin, xero_api):
    connection = connected(admin, expires_in=60)  # inside the refresh margin
    xero_api.rsps.add("POST", TOKEN_URL, json=token_json(access="access-2", refresh="refresh-2"))
    mock_org_details(xero_api)

    assert jobs.refresh_tenant_details(connection.id) == "loaded"

    refresh = xero_api.requests_to("POST", TOKEN_URL)
    assert len(refresh) == 1
    form = parse_qs(refresh[0].body)
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == [REFRESH]
    assert {bearer(r) for r in xero_api.accounting_requests} == {"access-2"}
    token = load_token(the_connection(admin))
    assert token["refresh_token"] == "refresh-2" and token["access_token"] == "access-2"


def test_fresh_token_is_used_without_refreshing(app, admin, xero_api):
    connection = connected(admin)
    mock_org_details(xero_api)
    assert jobs.refresh_tenant_details(connection.id) == "loaded"
    assert not xero_api.requests_to("POST", TOKEN_URL)
    assert {bearer(r) for r in xero_api.accounting_requests} == {ACCESS}


def test_a_401_refreshes_once_and_retries_and_the_rotated_token_is_saved_first(app, admin, xero_api):
    connection = connected(admin)
    xero_api.rsps.add("POST", TOKEN_URL, json=token_json(access="access-2", refresh="refresh-2"))
    seen_in_db = []

    def organisation(request):
        if bearer(request) == ACCESS:
            return 401, {}, '{"title":"Unauthorized","status":401,"detail":"TokenExpired"}'
        # Before the new access token is used, the rotated refresh token is committed:
        # a separate database connection already sees it.
        with db.engine.connect() as conn:
            stored = conn.execute(sa.select(Connection.token_ciphertext)).scalar_one()
        seen_in_db.append(decrypt_json(stored)["refresh_token"])
        return 200, {}, '{"Organisations":[{"Name":"Demo Company (UK)","ShortCode":"!dmoUK"}]}'

    xero_api.rsps.add_callback("GET", f"{ACCOUNTING_BASE}/Organisation", callback=organisation)
    api = get_provider("xero").api_for(connection)
    assert api.organisation()["ShortCode"] == "!dmoUK"

    assert len(xero_api.requests_to("POST", TOKEN_URL)) == 1
    assert [bearer(r) for r in xero_api.accounting_requests] == [ACCESS, "access-2"]
    assert seen_in_db == ["refresh-2"]


def test_refresh_rejected_with_invalid_grant_marks_needs_reconnecting(app, client, admin, xero_api):
    connection = connected(admin, expires_in=10)
    xero_api.rsps.add("POST", TOKEN_URL, status=400, json={"error": "invalid_grant"})

    assert jobs.refresh_tenant_details(connection.id) == "failed"

    connection = the_connection(admin)
    assert connection.state == "needs_reconnect"
    assert "invalid_grant" in connection.state_reason
    assert connection.settings["details_state"] == "error"
    assert not xero_api.accounting_requests
    page = client.get("/integrations/").get_data(as_text=True)
    assert "Needs reconnecting" in page and "Xero refused to renew access" in page
    assert 'id="reconnect-xero"' in page
    assert "Reconnect To Xero" in client.get("/integrations/xero").get_data(as_text=True)

    # And the API client refuses to work until an admin reconnects.
    with pytest.raises(NeedsReconnect):
        get_provider("xero").api_for(connection).organisation()


def test_403_for_the_tenant_marks_needs_reconnecting(app, client, admin, xero_api):
    connection = connected(admin)
    xero_api.add("GET", "/Organisation", status=403, json={
        "title": "Forbidden", "status": 403, "detail": "AuthenticationUnsuccessful",
        "instance": "4ff7e8e7-0000-4000-8000-000000000000"})

    assert jobs.refresh_tenant_details(connection.id) == "failed"

    connection = the_connection(admin)
    assert connection.state == "needs_reconnect"
    assert "AuthenticationUnsuccessful" in connection.state_reason
    assert "Demo Company (UK)" in connection.state_reason
    page = client.get("/integrations/").get_data(as_text=True)
    assert "Needs reconnecting" in page and "AuthenticationUnsuccessful" in page


def test_reconnect_after_needs_reconnecting_restores_the_connection(app, client, admin, xero_api):
    from tests.test_xero_connect import come_back, mock_identity, start_connect

    connection = connected(admin)
    connection.state, connection.state_reason = "needs_reconnect", "Xero refused to renew access."
    db.session.commit()
    mock_identity(xero_api, token=token_json(access="access-3", refresh="refresh-3"))
    page = post_form(client, "/integrations/xero/connect", {}, form_url="/integrations/")
    assert page.status_code == 302
    params = start_connect(client)
    html = come_back(client, code="c", state=params["state"]).get_data(as_text=True)
    assert "Connected to Demo Company (UK)" in html
    connection = the_connection(admin)
    assert connection.state == "connected" and connection.state_reason == ""
    assert load_token(connection)["refresh_token"] == "refresh-3"
    assert connection.tenant_id == UK["tenantId"]


def test_undecryptable_tokens_mark_needs_reconnecting(app, client, admin, xero_api):
    from cryptography.fernet import Fernet

    connection = connected(admin)
    app.config["TOKEN_ENCRYPTION_KEY"] = Fernet.generate_key().decode()  # the old key was lost
    assert jobs.refresh_tenant_details(connection.id) == "failed"
    assert the_connection(admin).state == "needs_reconnect"
    assert not xero_api.calls


def test_details_job_reschedules_itself_when_xero_rate_limits(app, admin, xero_api):
    from rq.registry import ScheduledJobRegistry

    connection = connected(admin, settings={"tenant_id": UK["tenantId"], "details_state": "loading"})
    xero_api.add("GET", "/Organisation", status=429, headers={"Retry-After": "7", "X-Rate-Limit-Problem": "minute"},
                 json={})
    assert jobs.refresh_tenant_details(connection.id) == "rescheduled"
    assert len(ScheduledJobRegistry(queue=app.push_queue).get_job_ids()) == 1
    connection = the_connection(admin)
    assert connection.state == "connected" and connection.settings["details_state"] == "loading"


def quiet_for(connection, days: float) -> None:
    """As if the refresh token was issued ``days`` ago and nothing used it since."""
    token = load_token(connection)
    token["issued_at"] -= days * 86400
    store_token(connection, token)
    db.session.commit()


def keep_alive_run(app) -> list[str]:
    """`flask keep-connections-alive` from cron, then a worker running what it queued."""
    result = app.test_cli_runner().invoke(args=["keep-connections-alive"])
    assert result.exit_code == 0, result.output
    done = []
    for job in app.push_queue.get_jobs():
        if job.func_name == "planman.jobs.keep_connection_alive":
            done.append(jobs.keep_connection_alive(*job.args))
            job.delete()
    db.session.expire_all()
    return done


def test_a_quiet_xero_connection_is_renewed_before_its_refresh_token_dies_unused(app, admin, xero_api):
    connection = connected(admin)
    assert keep_alive_run(app) == []  # a fresh refresh token: nothing to do
    quiet_for(connection, 31)  # past half of Xero's 60 days, no push, no catch-up job
    xero_api.rsps.add("POST", TOKEN_URL, json=token_json(access="access-2", refresh="refresh-2"))

    assert keep_alive_run(app) == ["renewed"]
    [refresh] = xero_api.requests_to("POST", TOKEN_URL)
    assert parse_qs(refresh.body)["refresh_token"] == [REFRESH]
    token = load_token(the_connection(admin))
    assert token["refresh_token"] == "refresh-2" and time.time() - token["issued_at"] < 60
    assert keep_alive_run(app) == []  # the new one has its 60 days ahead


def test_a_xero_refresh_token_already_dead_unused_says_why(app, client, admin, xero_api):
    connection = connected(admin)
    quiet_for(connection, 61)
    xero_api.rsps.add("POST", TOKEN_URL, status=400, json={"error": "invalid_grant"})

    assert keep_alive_run(app) == ["needs reconnecting"]
    connection = the_connection(admin)
    assert connection.state == "needs_reconnect" and "went unused for 60 days" in connection.state_reason
    page = client.get("/integrations/xero").get_data(as_text=True)
    assert "went unused for 60 days" in page and "Reconnect To Xero" in page


def test_a_token_stored_before_its_issue_time_was_kept_is_renewed_at_once(app, admin, xero_api):
    """Its age is unknown, so it may be close to Xero's 60 days: renewed now, and dated from then on."""
    from planman.integrations.crypto import encrypt_json

    connection = connected(admin)
    old = load_token(connection)
    del old["issued_at"]
    connection.token_ciphertext = encrypt_json(old)
    db.session.commit()
    xero_api.rsps.add("POST", TOKEN_URL, json=token_json(access="access-2", refresh="refresh-2"))

    assert keep_alive_run(app) == ["renewed"]
    token = load_token(the_connection(admin))
    assert token["refresh_token"] == "refresh-2" and time.time() - token["issued_at"] < 60
    assert keep_alive_run(app) == []
