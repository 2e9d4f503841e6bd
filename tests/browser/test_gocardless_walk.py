"""In Chromium, under the strict CSP, the Direct Debit walk a newcomer makes:
Connect with GoCardless on the stand-in's consent page, see that money waits
for verification, ask a client for a Direct Debit, complete the stand-in's
hosted page as the client (another browser context), collect an invoice, and
see it paid once the stand-in moves the payment on to paid out. Real rq
workers process the webhooks the stand-in signs and delivers."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from planman.extensions import db
from planman.models import User
from standins.gocardless import create_app as gocardless_standin
from tests.browser.axe import assert_accessible
from tests.browser.test_core_flows import sign_up, watch_csp
from tests.fixtures.services import wait_until
from tests.helpers import make_client, make_invoice
from tests.standins.gocardless.conftest import Standin

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]
SECRET = "browser-webhook-secret"


@pytest.fixture
def gc(tmp_path):
    standin = Standin(gocardless_standin({"DATABASE": str(tmp_path / "gc.db"), "TESTING": True}))
    yield standin
    standin.stop()


def gocardless_config(gc) -> dict:
    return {"GOCARDLESS_API_URL": gc.url, "GOCARDLESS_CONNECT_URL": gc.url, "GOCARDLESS_PAY_URL": gc.url,
            "GOCARDLESS_CLIENT_ID": "planman-dev", "GOCARDLESS_CLIENT_SECRET": "planman-dev-secret",
            "GOCARDLESS_WEBHOOK_SECRET": SECRET}


@pytest.fixture
def app(integration_app, gc):
    integration_app.config.update(gocardless_config(gc))
    integration_app.config["CSP_FORM_ACTION_ORIGINS"] = {*integration_app.config["CSP_FORM_ACTION_ORIGINS"], gc.url}
    return integration_app


@pytest.fixture
def workers(service_env, gc, rq_workers):
    service_env.update(gocardless_config(gc))
    rq_workers.start(1)


def shows(page, url: str, selector: str, text: str) -> bool:
    page.goto(url)
    return text in (page.locator(selector).text_content() or "")


def delivered(gc) -> None:
    attempts = gc.flush()
    assert attempts and all(a["status"] == 200 for a in attempts), [(a["status"], a["error"]) for a in attempts]


def test_connect_ask_authorise_collect_and_see_it_paid(app, live_server, workers, page, browser, gc):
    gc.control("webhooks/endpoints", url=f"{live_server}/webhooks/gocardless", secret=SECRET, events=["*"])
    errors = watch_csp(page)
    sign_up(page, live_server)
    user = db.session.query(User).one()
    acme = make_client(user, name="Acme Ltd", first_name="Ann", last_name="Acme", email="ann@acme.test")
    invoice = make_invoice(user, acme, lines=((1, "100.00", None),), status="sent")

    page.goto(f"{live_server}/integrations/gocardless")
    page.get_by_role("button", name="Connect with GoCardless").click()
    expect(page.locator("h1")).to_have_text("GoCardless stand-in: connect an app")
    page.click("#allow")
    expect(page.locator("#gocardless-verification")).to_contain_text("No money moves until verification is done",
                                                                     timeout=30_000)

    client_url = f"{live_server}/clients/{acme.id}"
    page.goto(client_url)
    expect(page.locator("#direct-debit-state")).to_have_text("No Direct Debit set up.")
    page.get_by_role("button", name="Ask to set up Direct Debit").click()
    link = page.locator("#direct-debit-link").input_value()
    assert link.startswith(f"{gc.url}/flow/")

    private = browser.new_context()  # the client, in their own browser
    try:
        payer = private.new_page()
        payer.goto(link)
        expect(payer.locator("#flow-given_name")).to_have_value("Ann")
        payer.click("#flow-authorise")
        expect(payer.locator("#set-up-done")).to_contain_text("Your Direct Debit is being set up")
    finally:
        private.close()
    delivered(gc)
    [mandate] = gc.http.get(f"{gc.url}/_control/state").json()["organisations"][0]["mandates"]
    gc.control(f"mandates/{mandate['id']}/advance")
    gc.control(f"mandates/{mandate['id']}/advance")
    delivered(gc)
    wait_until(lambda: shows(page, client_url, "#direct-debit-state", "Direct Debit active"), 30,
               "the mandate to become active")

    invoice_url = f"{live_server}/invoices/{invoice.id}"
    page.goto(invoice_url)
    expect(page.locator("#collect-charge-date")).to_contain_text("GBP 100.00 will be charged on")
    page.get_by_role("button", name="Collect by Direct Debit").click()
    expect(page.locator("#collection-state")).to_contain_text("Collecting — charged on")
    [payment] = gc.http.get(f"{gc.url}/_control/state").json()["organisations"][0]["payments"]
    for _ in range(3):
        gc.control(f"payments/{payment['id']}/advance")
    delivered(gc)
    wait_until(lambda: shows(page, invoice_url, "#collection-state", "Paid"), 30, "the payout to arrive")
    # Once seen under load: the collection already "Paid" beside a "Sent" badge in one render.
    # The page's queries each see the latest commit (SQLite reads outside a transaction,
    # PostgreSQL's read committed), and the worker's one commit of collection, payment and
    # invoice landed between the invoice's query and the collection's. The next render agrees.
    wait_until(lambda: shows(page, invoice_url, "h1 .badge", "PlanMan: Paid"), 30, "the invoice to read paid")
    expect(page.locator("#collection-state")).to_contain_text("Paid")
    expect(page.locator("#amount-due")).to_have_text("GBP 0.00")
    assert errors == []

    # The pages this walk added, checked by axe (a context that lets the script in, same log-in).
    audit = browser.new_context(bypass_csp=True, storage_state=page.context.storage_state())
    try:
        checker = audit.new_page()
        for url, what in ((f"{live_server}/integrations/gocardless", "the GoCardless page"),
                          (client_url, "a client with an active Direct Debit"),
                          (invoice_url, "an invoice collected by Direct Debit"),
                          (f"{live_server}/direct-debit/set-up", "the client's page after the hosted flow")):
            checker.goto(url)
            assert_accessible(checker, what)
    finally:
        audit.close()
