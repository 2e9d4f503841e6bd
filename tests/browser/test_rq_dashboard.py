"""The job queue dashboard in Chromium, as the operator opens it: a real worker
fails a job whose exception quotes a client's name (a database error with the
statement's parameters); the dashboard lists it among the failed jobs and its
page shows the name, markup and all, as text, under the app's strict CSP."""
from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect
from rq.job import Job

from tests.browser.test_xero_connect import watch_csp
from tests.dashboard_jobs import OPERATOR, OPERATOR_PASSWORD, operator_users
from tests.fixtures.services import wait_until
from tests.helpers import PASSWORD, client, make_client, signup  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]

MARKUP = "<img src=x onerror=alert(1)>"


@pytest.fixture
def app(integration_app):
    return integration_app


@pytest.fixture
def config_overrides():
    return {"RQ_DASHBOARD_USERS": operator_users()}


def test_operator_sees_the_failed_job_and_its_exception_as_text(app, client, browser: Browser, live_server,
                                                                 rq_workers, real_redis):
    admin = signup(client, email="owner@example.com")
    customer = make_client(admin, name=f"Acme {MARKUP} Ltd")
    rq_workers.start(1)
    job = app.push_queue.enqueue("tests.dashboard_jobs.save_client_copy", customer.id)
    wait_until(lambda: Job.fetch(job.id, connection=real_redis).get_status() == "failed", 60,
               "the worker to fail the job")

    context = browser.new_context(http_credentials={"username": OPERATOR, "password": OPERATOR_PASSWORD})
    page = context.new_page()
    dialogs = []  # a script run by the markup would show up here as alert("1")

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.accept() if dialog.message.startswith("Delete job") else dialog.dismiss()

    page.on("dialog", on_dialog)
    csp_errors = watch_csp(page)

    page.goto(f"{live_server}/setup/rq/")
    queue = page.locator("#queues tr[data-queue=planman]")
    expect(queue.locator(".failed-count")).to_have_text("1")
    queue.locator(".failed-count").click()

    row = page.locator(f"#jobs tr[data-job-id='{job.id}']")
    expect(row.locator("pre.exc-info")).to_contain_text(f"Acme {MARKUP} Ltd")
    expect(row).to_contain_text("IntegrityError")
    row.locator("a.job-id").click()

    expect(page.locator("#job-status")).to_have_text("failed")
    expect(page.locator("pre.exc-info")).to_contain_text(f"Acme {MARKUP} Ltd")
    # The page refreshes itself (htmx); the refreshed exception is text too.
    with page.expect_response(lambda r: r.url.endswith(f"/view/job/{job.id}") and r.request.headers.get("hx-request")):
        pass
    expect(page.locator("pre.exc-info")).to_contain_text(f"Acme {MARKUP} Ltd")
    assert page.locator("img").count() == 0
    assert dialogs == [] and csp_errors == []

    # The operator's actions post through htmx with the page's CSRF token: Delete, confirmed, removes the job.
    page.go_back()
    page.locator(f"#jobs tr[data-job-id='{job.id}'] button", has_text="Delete").click()
    expect(page.locator("#jobs")).to_contain_text("No jobs.")
    assert not Job.exists(job.id, connection=real_redis)
    assert dialogs == [f"Delete job {job.id}?"] and csp_errors == []
    context.close()

    # The firm's admin, signed in, is asked for the operator credential instead
    # (Chromium, having none to offer, would end the navigation with an error: ask with its cookies).
    firm_context = browser.new_context()
    firm_page = firm_context.new_page()
    firm_page.goto(f"{live_server}/login")
    firm_page.fill("#email", "owner@example.com")
    firm_page.fill("#password", PASSWORD)
    firm_page.click("button[type=submit]")
    expect(firm_page).to_have_url(f"{live_server}/clients/")
    answer = firm_context.request.get(f"{live_server}/setup/rq/0/view/jobs/planman/failed/20/dsc/1")
    assert answer.status == 401 and answer.headers["www-authenticate"].startswith("Basic")
    assert job.id not in answer.text()
    firm_context.close()
