"""Connect To Xero against the real stand-in, with real Redis and real
`rq worker` processes: the whole OAuth flow, the details job, disconnect, and
many workers refreshing one connection's token at the same moment."""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from rq import Queue
from rq.job import Job

from planman.extensions import db
from planman.integrations.crypto import decrypt_json, encrypt_json
from planman.integrations.tokens import load_token
from planman.models import Connection
from tests.helpers import post_form, signup
from tests.integration_helpers import connect_xero, form_fields
from standins.xero.demo import UK_TENANT_ID, US_TENANT_ID

pytestmark = pytest.mark.integration

REFRESH_JOB = "planman.jobs.refresh_tenant_details"


@pytest.fixture
def config_overrides():
    # The stand-in accepts redirect URIs on 127.0.0.1 only, as a registered app would.
    return {"PUBLIC_BASE_URL": "http://127.0.0.1:5999"}


@pytest.fixture
def app(integration_app):
    return integration_app


def connect(client, sandbox, **kwargs):
    """The real flow (tests/integration_helpers.connect_xero), following PlanMan's last redirect."""
    response = connect_xero(client, sandbox, **kwargs)
    while response.status_code in (302, 303):
        response = client.get(response.headers["Location"])
    return response


def the_connection(firm_id) -> Connection:
    db.session.expire_all()
    return db.session.scalar(sa.select(Connection).where(Connection.firm_id == firm_id))


def wait_for_details(firm_id, timeout=30) -> Connection:
    deadline = time.monotonic() + timeout
    while True:
        connection = the_connection(firm_id)
        if connection and (connection.settings or {}).get("details_state") in ("loaded", "error"):
            return connection
        assert time.monotonic() < deadline, "the details job never finished"
        time.sleep(0.1)


def wait_for_jobs(jobs, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        statuses = [job.get_status(refresh=True) for job in jobs]
        if all(status in ("finished", "failed") for status in statuses):
            return statuses
        assert time.monotonic() < deadline, f"jobs still running: {statuses}"
        time.sleep(0.1)


def test_connect_load_details_and_disconnect_against_the_stand_in(client, sandbox, rq_workers):
    rq_workers.start(1)
    admin = signup(client)
    page = connect(client, sandbox)
    assert "Connected to Demo Company (UK)" in page.get_data(as_text=True)

    connection = wait_for_details(admin.firm_id)
    assert connection.settings["details_state"] == "loaded", connection.settings.get("details_error")
    assert connection.tenant_id == UK_TENANT_ID and connection.tenant_short_code == "!dmoUK"
    assert connection.settings["sales_account_code"] == "200"
    assert connection.settings["no_tax_type"] == "NONE"

    page = client.get("/integrations/xero").get_data(as_text=True)
    fields = form_fields(page, "/settings")
    # 0% matches several Xero tax types, so that one is left for the admin to pick.
    unpicked = [name for name, value in fields.items() if name.startswith("tax_type_") and not value]
    assert len(unpicked) == 1
    fields[unpicked[0]] = "ZERORATEDOUTPUT"
    fields["invoice_status"] = "SUBMITTED"
    saved = post_form(client, "/integrations/xero/settings", fields, form_url="/integrations/xero")
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert the_connection(admin.firm_id).settings["invoice_status"] == "SUBMITTED"

    token = load_token(the_connection(admin.firm_id))
    done = post_form(client, "/integrations/xero/disconnect", {}, form_url="/integrations/xero",
                     follow_redirects=True)
    assert "Disconnected from Demo Company (UK)" in done.get_data(as_text=True)
    assert "flash-warning" not in done.get_data(as_text=True)
    assert the_connection(admin.firm_id).token_ciphertext is None
    # The stand-in no longer lists the connection for that token: access is gone.
    listed = sandbox.http.get(f"{sandbox.url}/connections", headers={"Authorization": f"Bearer {token['access_token']}"},
                              timeout=10)
    assert listed.status_code == 401 or listed.json() == []
    assert sandbox.violations() == []


def test_two_organisations_then_choose_one(client, sandbox, rq_workers):
    rq_workers.start(1)
    admin = signup(client)
    page = connect(client, sandbox, tenants=(UK_TENANT_ID, US_TENANT_ID))
    assert "Which Xero organisation" in page.get_data(as_text=True)
    chosen = post_form(client, "/integrations/xero/choose", {"tenant_id": US_TENANT_ID},
                       form_url="/integrations/xero/choose", follow_redirects=True)
    assert "Connected to Demo Company (US)" in chosen.get_data(as_text=True)
    assert "flash-warning" not in chosen.get_data(as_text=True)
    connection = wait_for_details(admin.firm_id)
    assert connection.tenant_id == US_TENANT_ID and connection.settings["base_currency"] == "USD"
    # The stand-in, like Xero, lists only the organisation chosen: the other was given back.
    token = load_token(connection)
    listed = sandbox.http.get(f"{sandbox.url}/connections", headers={"Authorization": f"Bearer {token['access_token']}"},
                              timeout=10)
    assert [c["tenantId"] for c in listed.json()] == [US_TENANT_ID]
    assert sandbox.violations() == []


@pytest.mark.slow
@pytest.mark.parametrize("how", ["expired_locally", "rejected_with_401"])
@pytest.mark.parametrize("config_overrides", [{"PUBLIC_BASE_URL": "http://127.0.0.1:5999", "XERO_MAX_IN_FLIGHT": 32}])
def test_eight_concurrent_refreshes_end_with_one_rotation_and_no_invalid_grant(client, sandbox, rq_workers, app,
                                                                              how, config_overrides):
    """Eight worker processes need a new access token for one connection at the
    same moment: the Redis lock lets one refresh, the others re-read its result.

    Xero's per-organisation limit of 5 calls in flight is raised (here and in
    the stand-in) so that all eight really run at once instead of waiting."""
    sandbox.control("limits", in_flight=32)
    workers = rq_workers.start(8)
    admin = signup(client)
    connect(client, sandbox)
    assert wait_for_details(admin.firm_id).settings["details_state"] == "loaded"
    connection = the_connection(admin.firm_id)
    before = sandbox.stats()
    assert before["invalid_grants"] == 0

    # Every access token the stand-in issued is now dead.
    sandbox.control("expire_tokens")
    if how == "expired_locally":
        # PlanMan also knows: each worker refreshes before calling.
        token = decrypt_json(connection.token_ciphertext)
        token["expires_at"] = time.time() - 5
        connection.token_ciphertext = encrypt_json(token)
        db.session.commit()
    # else: PlanMan thinks the token is fine; each worker gets a 401 and refreshes after it.
    old_refresh = load_token(connection)["refresh_token"]

    queue = Queue(app.config["RQ_QUEUE"], connection=app.redis)
    jobs = [queue.enqueue(REFRESH_JOB, connection.id) for _ in range(8)]
    statuses = wait_for_jobs(jobs)
    logs = rq_workers.logs()
    assert statuses == ["finished"] * 8, logs
    assert [Job.fetch(j.id, connection=app.redis).return_value() for j in jobs] == ["loaded"] * 8, logs
    # The jobs really ran in several processes.
    assert len({Job.fetch(j.id, connection=app.redis).worker_name for j in jobs}) > 1, logs

    after = sandbox.stats()
    assert after["rotations"] - before["rotations"] == 1, (after, logs)
    assert after["refreshes"] - before["refreshes"] == 1, (after, logs)
    assert after["invalid_grants"] == 0, (after, logs)
    connection = the_connection(admin.firm_id)
    assert connection.state == "connected"
    assert load_token(connection)["refresh_token"] != old_refresh
    assert all(w.alive() for w in workers)


def test_a_second_approval_by_the_same_xero_user_offers_only_the_organisation_it_added(app, client, sandbox,
                                                                                       rq_workers):
    # One bookkeeper keeps two PlanMan firms: each connects its own organisation.
    from tests.helpers import new_client

    rq_workers.start(1)
    signup(client)
    assert "Connected to Demo Company (UK)" in connect(client, sandbox).get_data(as_text=True)
    other = new_client(app)
    second_firm = signup(other, name="Bo Second", email="bo@second.example", firm_name="Second & Co")

    page = connect(other, sandbox, tenants=(US_TENANT_ID,)).get_data(as_text=True)

    # Xero's /connections now lists UK and US for this user; only US was just approved.
    assert "Connected to Demo Company (US)" in page and "Which Xero organisation" not in page
    assert the_connection(second_firm.firm_id).tenant_id == US_TENANT_ID
    assert sandbox.violations() == []
