"""FreshBooks in a real browser, with real workers and the FreshBooks stand-in:
Connect to FreshBooks, allow on the stand-in's consent page, pick the business,
then Send a client and an invoice from their FreshBooks tabs, edit and Update,
and confirm an Update of an invoice the customer may have seen."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from standins.freshbooks.demo import UK_ACCOUNT_ID, UK_NAME, US_NAME
from tests.browser.test_core_flows import add_client
from tests.browser.test_xero_connect import sign_up, watch_csp
from tests.fixtures.services import freshbooks_config

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def config_overrides(freshbooks_url):
    return {**freshbooks_config(freshbooks_url),
            "FRESHBOOKS_RECORD_URL": f"{freshbooks_url}/accounts/{{account_id}}/{{kind}}s/{{id}}"}


@pytest.fixture
def app(integration_app):
    return integration_app


def business(standin):
    return next(a for a in standin.state()["accounts"] if a["account_id"] == UK_ACCOUNT_ID)


def connect(page: Page, live_server: str, standin) -> None:
    page.goto(f"{live_server}/integrations/freshbooks")
    page.get_by_role("button", name="Connect to FreshBooks").click()
    expect(page).to_have_url(re.compile(re.escape(standin.url) + r"/oauth/authorize\?"))
    expect(page.locator("body")).to_contain_text(UK_NAME)
    page.get_by_role("button", name="Allow").click()
    # Back in PlanMan: the approval reaches two businesses, so the admin picks one.
    expect(page).to_have_url(f"{live_server}/integrations/freshbooks/choose")
    expect(page.locator("#choose-tenant")).to_contain_text(US_NAME)
    page.get_by_label(UK_NAME).check()
    page.click("#choose-tenant button[type=submit]")
    expect(page.locator("#connection-state")).to_contain_text(f"Connected to {UK_NAME}")
    expect(page.locator("#freshbooks-taxes")).to_contain_text("VAT · 20%", timeout=20000)


def test_connect_then_send_and_update_from_the_freshbooks_tabs(page: Page, live_server, freshbooks_standin,
                                                               rq_workers):
    rq_workers.start(1)
    csp_errors = watch_csp(page)
    sign_up(page, live_server)
    connect(page, live_server, freshbooks_standin)

    add_client(page, live_server, "Browser Client Ltd")
    page.click("#tab-freshbooks")
    panel = page.locator("#panel-freshbooks")
    expect(panel).to_have_attribute("data-panel-state", "never_sent")
    panel.get_by_role("button", name="Send").click()
    expect(panel).to_have_attribute("data-panel-state", "sent", timeout=30000)
    expect(page.locator("#tab-freshbooks .chip")).to_have_text("Sent")
    expect(panel.get_by_role("link", name="View in FreshBooks")).to_be_visible()
    [remote] = business(freshbooks_standin)["clients"]
    assert (remote["organization"], remote["email"]) == ("Browser Client Ltd", "accounts@example.com")

    page.goto(re.sub(r"\?.*$", "", page.url) + "/edit")
    page.fill("#email", "changed@example.com")
    page.click("#client-form button[type=submit]")
    expect(page.locator("#tab-freshbooks .chip")).to_have_text("Changed since sent")
    panel.get_by_role("button", name="Update").click()
    expect(page.locator("#tab-freshbooks .chip")).to_have_text("Sent", timeout=30000)
    [remote] = business(freshbooks_standin)["clients"]
    assert remote["email"] == "changed@example.com"

    # An invoice for that client, sent as a draft (20% VAT, the default rate), then marked sent in FreshBooks.
    page.goto(f"{live_server}/invoices/new")
    page.select_option("#client_id", label="Browser Client Ltd")
    page.locator("textarea[name$='description']").first.fill("Consulting")
    page.locator("input[name$='quantity']").first.fill("2")
    page.locator("input[name$='unit_price']").first.fill("150")
    page.click("#invoice-form button[type=submit]")
    page.click("#tab-freshbooks")
    panel.get_by_role("button", name="Send").click()
    expect(panel).to_have_attribute("data-panel-state", "sent", timeout=30000)
    expect(panel).to_contain_text("Draft")
    [invoice] = business(freshbooks_standin)["invoices"]
    assert invoice["v3_status"] == "draft" and invoice["amount"]["amount"] == "360.00"

    freshbooks_standin.control(f"invoices/{invoice['id']}/status", status="sent")
    page.goto(re.sub(r"\?.*$", "", page.url) + "/edit")
    page.locator("input[name$='quantity']").first.fill("3")
    page.click("#invoice-form button[type=submit]")
    # PlanMan still believes it a draft: the Update reads FreshBooks' status first,
    # changes nothing, and asks.
    panel.get_by_role("button", name="Update").click()
    expect(panel).to_contain_text("became “Sent” in FreshBooks", timeout=30000)
    expect(panel).to_contain_text("the customer may have seen it")
    expect(panel.locator(".remote-status")).to_have_text("Sent")
    assert business(freshbooks_standin)["invoices"][0]["amount"]["amount"] == "360.00"
    panel.get_by_role("button", name="Retry anyway").click()
    expect(page.locator("#tab-freshbooks .chip")).to_have_text("Sent", timeout=30000)
    [invoice] = business(freshbooks_standin)["invoices"]
    assert invoice["amount"]["amount"] == "540.00" and invoice["v3_status"] == "sent"
    assert csp_errors == []
