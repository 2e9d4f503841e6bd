"""In Chromium, under the strict CSP: record a part payment, make and copy the
payment link, open it in a private window (another browser context, nobody
logged in) and see what is due."""
import pytest
from playwright.sync_api import expect

from planman.extensions import db
from planman.models import User
from tests.browser.test_core_flows import sign_up, watch_csp
from tests.helpers import make_client, make_invoice

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_copy_the_payment_link_and_open_it_in_a_private_window(live_server, page, browser):
    errors = watch_csp(page)
    sign_up(page, live_server)
    user = db.session.query(User).one()
    invoice = make_invoice(user, make_client(user, name="Acme Ltd"), lines=((1, "100.00", None),), status="sent")
    page.goto(f"{live_server}/invoices/{invoice.id}")
    page.get_by_role("link", name="Record a payment").click()
    expect(page.locator("#amount")).to_have_value("100")
    page.fill("#amount", "30")
    page.click("form.card button[type=submit]")
    expect(page.locator("#amount-due")).to_have_text("GBP 70.00")
    expect(page.locator("h1 .badge")).to_have_text("PlanMan: Part paid")  # the record's own status, labelled as PlanMan's

    page.get_by_role("button", name="Make a payment link").click()
    url = page.locator("#payment-link-url").input_value()
    assert url.startswith(f"{live_server}/pay/")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page.get_by_role("button", name="Copy payment link").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == url
    assert errors == []

    private = browser.new_context()  # a private window: no cookies, no log-in
    try:
        client_page = private.new_page()
        client_page.goto(url)
        expect(client_page.locator("h1")).to_contain_text(f"invoice {invoice.number}")
        expect(client_page.locator("#pay-amount-due")).to_have_text("GBP 70.00")
        expect(client_page.locator("#pay-offline")).to_contain_text("Online payment is not set up")
    finally:
        private.close()
