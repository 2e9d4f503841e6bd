"""The real-service fixtures work: Redis, rq workers, the live server, Chromium."""
from __future__ import annotations

import time

import pytest
import requests
from rq import Queue

pytestmark = pytest.mark.integration


def add(a, b):
    """A job for the worker test (imported by the worker as tests.test_infra_services.add)."""
    return a + b


def database_url_seen_by_worker():
    """A job that reports which database the worker's environment points at."""
    import os

    return os.environ["DATABASE_URL"]


def test_redis_answers_ping(real_redis, redis_url):
    assert redis_url.startswith("redis://127.0.0.1:")
    assert real_redis.ping() is True
    real_redis.set("planman:probe", "1")
    assert real_redis.get("planman:probe") == b"1"


def test_real_redis_is_flushed_between_tests(real_redis):
    assert real_redis.get("planman:probe") is None


def _wait_for(job, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = job.get_status(refresh=True)
        if status in ("finished", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job.id} still {job.get_status()} after {timeout}s")


@pytest.mark.slow
def test_real_rq_worker_runs_a_job(real_redis, rq_workers, service_env, database_url):
    workers = rq_workers.start(2)
    assert len(workers) == 2 and all(w.alive() for w in workers)
    queue = Queue(service_env["RQ_QUEUE"], connection=real_redis)

    job = queue.enqueue("tests.test_infra_services.add", 2, 3)
    assert _wait_for(job) == "finished", rq_workers.logs()
    assert job.return_value() == 5

    seen = queue.enqueue(database_url_seen_by_worker)
    assert _wait_for(seen) == "finished", rq_workers.logs()
    assert seen.return_value() == database_url


def test_live_server_answers_healthz(live_server):
    response = requests.get(f"{live_server}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.text == "ok"


@pytest.mark.browser
@pytest.mark.slow
def test_chromium_loads_the_live_server(page, live_server):
    page.goto(f"{live_server}/healthz")
    assert page.locator("body").inner_text().strip() == "ok"
    page.goto(f"{live_server}/login")
    assert page.get_by_role("heading", name="Log in").is_visible()
    assert page.locator("input[type=password]").count() == 1


def test_sandbox_is_reset_and_reports_its_state(sandbox):
    assert sandbox.control("reset")["ok"] is True
    organisations = sandbox.state()["organisations"]
    assert organisations, "the stand-in holds its demo organisations after a reset"
    assert sandbox.violations() == []


def test_integration_app_uses_real_redis_and_the_sandbox(integration_app, real_redis, sandbox, service_env):
    assert integration_app.config["XERO_API_URL"] == sandbox.url
    assert integration_app.config["XERO_LOGIN_URL"] == sandbox.url
    assert integration_app.config["XERO_IDENTITY_URL"] == sandbox.url
    job = integration_app.push_queue.enqueue("tests.test_infra_services.add", 1, 1)
    assert real_redis.exists(f"rq:job:{job.id}")
    # Subprocesses of the same test are pointed at the same stand-in.
    assert service_env["XERO_API_URL"] == sandbox.url
    assert service_env["XERO_CLIENT_ID"] == integration_app.config["XERO_CLIENT_ID"]
