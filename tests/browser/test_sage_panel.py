"""Sage in a real browser, with a real worker and the Sage stand-in: Connect to
Sage, allow on the stand-in's consent page, pick the business in PlanMan,
choose the income account, then Send a client and an invoice from their Sage
tabs, edit and Update."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from standins.sage.demo import GB_BUSINESS_ID, GB_NAME, IE_NAME, ledger_account_id
from tests.browser.test_core_flows import add_client
from tests.browser.test_xero_connect import sign_up, watch_csp
from tests.fixtures.services import sage_config

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def config_overrides(sage_url):
    return sage_config(sage_url)


@pytest.fixture
def app(integration_app):
    return integration_app


def business(standin):
    return next(b for b in standin.state()["businesses"] if b["id"] == GB_BUSINESS_ID)


def connect(page: Page, live_server: str, standin) -> None:
    page.goto(f"{live_server}/integrations/sage")
    page.get_by_role("button", name="Connect to Sage").click()
    expect(page).to_have_url(re.compile(re.escape(standin.url) + r"/oauth2/auth/central\?"))
    page.get_by_label(re.compile(re.escape(GB_NAME))).check()
    page.get_by_role("button", name="Allow").click()
    # Back in PlanMan: the token reaches both of the user's businesses, so the admin picks one.
    expect(page).to_have_url(f"{live_server}/integrations/sage/choose")
    expect(page.locator("#choose-tenant")).to_contain_text(IE_NAME)
    page.get_by_label(GB_NAME).check()
    page.click("#choose-tenant button[type=submit]")
    expect(page.locator("#connection-state")).to_contain_text(f"Connected to {GB_NAME}")
    account = page.locator("#ledger_account_id")
    expect(account).to_be_visible(timeout=20000)
    account.select_option(ledger_account_id(GB_BUSINESS_ID, "4000"))
    for picker in page.locator("select[id^='tax_rate_']").all():  # the 0% rates have two Sage matches
        if not picker.input_value():
            picker.select_option("GB_ZERO")
    page.click("#save-settings")
    expect(page.locator("body")).to_contain_text("Sage settings saved.")


def test_connect_then_send_and_update_from_the_sage_tabs(page: Page, live_server, sage_standin, rq_workers):
    rq_workers.start(1)
    csp_errors = watch_csp(page)
    sign_up(page, live_server)
    connect(page, live_server, sage_standin)

    add_client(page, live_server, "Browser Client Ltd")
    page.click("#tab-sage")
    panel = page.locator("#panel-sage")
    expect(panel).to_have_attribute("data-panel-state", "never_sent")
    panel.get_by_role("button", name="Send").click()
    expect(panel).to_have_attribute("data-panel-state", "sent", timeout=30000)
    expect(page.locator("#tab-sage .chip")).to_have_text("Sent")
    expect(panel.get_by_role("link", name="View in Sage")).to_be_visible()
    [remote] = business(sage_standin)["contacts"]
    assert (remote["name"], remote["main_contact_person"]["email"]) == ("Browser Client Ltd", "accounts@example.com")

    page.goto(re.sub(r"\?.*$", "", page.url) + "/edit")
    page.fill("#email", "changed@example.com")
    page.click("#client-form button[type=submit]")
    expect(page.locator("#tab-sage .chip")).to_have_text("Changed since sent")
    panel.get_by_role("button", name="Update").click()
    expect(page.locator("#tab-sage .chip")).to_have_text("Sent", timeout=30000)
    [remote] = business(sage_standin)["contacts"]
    assert remote["main_contact_person"]["email"] == "changed@example.com"

    # An invoice for that client (20% VAT, the default rate), sent as a draft, then edited and updated.
    page.goto(f"{live_server}/invoices/new")
    page.select_option("#client_id", label="Browser Client Ltd")
    page.locator("textarea[name$='description']").first.fill("Consulting")
    page.locator("input[name$='quantity']").first.fill("2")
    page.locator("input[name$='unit_price']").first.fill("150")
    page.click("#invoice-form button[type=submit]")
    page.click("#tab-sage")
    panel.get_by_role("button", name="Send").click()
    expect(panel).to_have_attribute("data-panel-state", "sent", timeout=30000)
    expect(panel).to_contain_text("Draft")
    [invoice] = business(sage_standin)["sales_invoices"]
    assert invoice["status"]["id"] == "DRAFT" and invoice["total_amount"] == "360.00"

    page.goto(re.sub(r"\?.*$", "", page.url) + "/edit")
    page.locator("input[name$='quantity']").first.fill("3")
    page.click("#invoice-form button[type=submit]")
    expect(page.locator("#tab-sage .chip")).to_have_text("Changed since sent")
    panel.get_by_role("button", name="Update").click()
    expect(page.locator("#tab-sage .chip")).to_have_text("Sent", timeout=30000)
    [invoice] = business(sage_standin)["sales_invoices"]
    assert invoice["total_amount"] == "540.00" and len(invoice["invoice_lines"]) == 1
    assert csp_errors == []
