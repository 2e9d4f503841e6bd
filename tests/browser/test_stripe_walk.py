"""The newcomer's walk of issue 16 in Chromium, under the strict CSP, against the Xero and Stripe
stand-ins with real workers: Setup > Integrations > Stripe > Connect To Stripe on the consent page;
copy an invoice's payment link; open it in a private window; pay with 4242 on the stand-in's
Checkout page; see "paid" in PlanMan and in the Xero stand-in. A declined card shows its reason."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from planman.extensions import db
from planman.models import User
from standins.xero.demo import UK_TENANT_ID
from tests.browser.test_xero_connect import approve_on_consent_page, sign_up, watch_csp
from tests.fixtures.services import stripe_config
from tests.helpers import make_client, make_invoice
from tests.integration_helpers import choose_settings
from tests.stripe_flows import register_webhook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def config_overrides(stripe_standin_url):
    return stripe_config(stripe_standin_url)


@pytest.fixture
def app(integration_app):
    return integration_app


def send_to_xero(page: Page, base: str, invoice) -> None:
    page.goto(f"{base}/invoices/{invoice.id}")
    page.click("#tab-xero")
    panel = page.locator("#panel-xero")
    panel.get_by_role("button", name="Send").click()
    expect(panel).to_contain_text("Awaiting payment in Xero", timeout=30000)  # sent as approved


def copy_payment_link(page: Page, base: str, invoice) -> str:
    page.goto(f"{base}/invoices/{invoice.id}")
    page.get_by_role("button", name="Make a payment link").click()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.get_by_role("button", name="Copy payment link").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    return page.evaluate("navigator.clipboard.readText()")


def pay_in_private_window(browser, url: str, card: str):
    """A private window (no cookies): the payment link, Pay by card, the stand-in's Checkout page."""
    private = browser.new_context()
    client_page = private.new_page()
    client_page.goto(url)
    client_page.get_by_role("button", name="Pay by card").click()
    expect(client_page.get_by_label("Card number")).to_be_visible()
    client_page.get_by_label("E-mail").fill("client@example.test")
    client_page.get_by_label("Card number").fill(card)
    client_page.get_by_label("Expiry (MM / YY)").fill("12 / 34")
    client_page.get_by_label("CVC").fill("123")
    client_page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    return private, client_page


def reload_until(page: Page, locator: str, text: str, tries: int = 60) -> None:
    """Reload until the text shows (the webhook and the worker take a moment), then assert it."""
    for _ in range(tries):
        if text in (page.locator(locator).text_content() or ""):
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator(locator)).to_contain_text(text)


def test_connect_stripe_pay_by_card_and_see_it_paid_in_planman_and_xero(page: Page, browser, app, live_server, sandbox,
                                                                         stripe_standin, rq_workers):
    rq_workers.start(2)
    csp_errors = watch_csp(page)
    sign_up(page, live_server)
    user = db.session.query(User).one()

    # Xero first (invoices sent as Awaiting payment, payments into Stripe clearing).
    page.goto(f"{live_server}/integrations/xero")
    page.click("#connect-xero")
    approve_on_consent_page(page)
    expect(page.locator("#connection-state")).to_contain_text("Connected to Demo Company (UK)")
    choose_settings(user.firm_id, invoice_status="AUTHORISED", payment_account_code="855")

    # Setup > Integrations > Stripe > Connect To Stripe, on Stripe's (the stand-in's) consent page.
    page.goto(f"{live_server}/setup/")
    page.click("#setup-integrations")
    page.click("#integration-stripe h2 a")
    page.get_by_role("button", name="Connect To Stripe").click()
    expect(page).to_have_url(re.compile(re.escape(stripe_standin.url) + r"/oauth/authorize\?"))
    page.get_by_label(re.compile("Demo Practice Ltd \\(UK\\)")).check()
    page.get_by_role("button", name="Connect my Stripe account").click()
    expect(page).to_have_url(f"{live_server}/integrations/stripe")
    expect(page.locator("#stripe-charges")).to_contain_text("Enabled", timeout=20000)
    register_webhook(app, stripe_standin.url, live_server)  # as make run does

    invoice = make_invoice(user, make_client(user, name="Acme Ltd"), number="INV-2001",
                           lines=((1, "120.00", None),), status="sent")
    send_to_xero(page, live_server, invoice)
    url = copy_payment_link(page, live_server, invoice)
    assert url.startswith(f"{live_server}/pay/")

    private, client_page = pay_in_private_window(browser, url, "4242 4242 4242 4242")
    try:
        expect(client_page).to_have_url(f"{url}?returned=stripe")
        reload_until(client_page, "#pay-status", "This invoice is paid")
    finally:
        private.close()

    page.goto(f"{live_server}/invoices/{invoice.id}")
    reload_until(page, "#payments", "Recorded in Xero")
    expect(page.locator("h1 .badge")).to_have_text("PlanMan: Paid")
    expect(page.locator("#amount-due")).to_have_text("GBP 0.00")
    page.goto(f"{sandbox.url}/orgs/{UK_TENANT_ID}")
    row = page.locator("tr", has_text="INV-2001").first
    expect(row.locator(".status")).to_have_text("PAID")

    # A declined card: the Checkout page says why, and so does the invoice, still unpaid.
    second = make_invoice(user, make_client(user, name="Brown Ltd"), number="INV-2002",
                          lines=((1, "80.00", None),), status="sent")
    url = copy_payment_link(page, live_server, second)
    private, client_page = pay_in_private_window(browser, url, "4000 0000 0000 0002")
    try:
        expect(client_page.get_by_role("alert")).to_have_text("Your card was declined.")
    finally:
        private.close()
    page.goto(f"{live_server}/invoices/{second.id}")
    reload_until(page, "#payments", "Your card was declined.")
    expect(page.locator("#amount-due")).to_have_text("GBP 80.00")
    assert csp_errors == []

