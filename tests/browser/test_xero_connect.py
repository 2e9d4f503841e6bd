"""Connect To Xero in a real browser against the Xero stand-in: an admin
connects, approves on the consent page, picks settings while HTMX loads the
organisation's lists, disconnects and reconnects, all under the strict CSP."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]

PASSWORD = "browser-password"


@pytest.fixture
def app(integration_app):
    return integration_app


def watch_csp(page: Page) -> list:
    errors = []
    page.on("console", lambda message: "Content Security Policy" in message.text and errors.append(message.text))
    return errors


def sign_up(page: Page, base: str) -> None:
    page.goto(f"{base}/signup")
    page.fill("#firm_name", "Browser & Co")
    page.select_option("#currency", "GBP")
    page.fill("#name", "Bea Browser")
    page.fill("#email", "owner@example.com")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/clients/")


def approve_on_consent_page(page: Page, organisation: str = "Demo Company (UK)") -> None:
    expect(page.get_by_text("Allow access to your Xero organisation").first).to_be_visible()
    page.get_by_label(organisation).check()
    page.get_by_role("button", name="Allow access").click()


def test_connect_choose_settings_disconnect_and_reconnect(page: Page, live_server, sandbox, rq_workers):
    rq_workers.start(1)
    csp_errors = watch_csp(page)
    sign_up(page, live_server)

    # Setup > Integrations > Xero > Connect To Xero
    page.goto(f"{live_server}/setup/")
    page.click("#setup-integrations")
    expect(page.locator("#integration-xero")).to_contain_text("Not connected")
    page.click("#integration-xero h2 a")
    page.click("#connect-xero")
    expect(page).to_have_url(re.compile(re.escape(sandbox.url) + r"/identity/connect/authorize\?"))
    approve_on_consent_page(page)

    expect(page).to_have_url(f"{live_server}/integrations/xero")
    expect(page.locator(".flash-success")).to_contain_text("Connected to Demo Company (UK).")
    expect(page.locator("#connection-state")).to_contain_text("Connected to Demo Company (UK)")

    # The settings arrive from the worker; HTMX polls until they do.
    expect(page.locator("#settings-form")).to_be_visible(timeout=20000)
    expect(page.locator("#sales_account_code")).to_have_value("200")
    expect(page.locator("#no_tax_type")).to_have_value("NONE")
    for select in page.locator("select[name^=tax_type_]").all():
        if not select.input_value():
            select.select_option("ZERORATEDOUTPUT")
    page.select_option("#invoice_status", "SUBMITTED")
    page.click("#save-settings")
    expect(page.locator(".flash-success")).to_contain_text("Xero settings saved.")
    expect(page.locator("#invoice_status")).to_have_value("SUBMITTED")

    # Refresh from Xero swaps the settings area through HTMX and comes back loaded.
    page.click("#refresh-details")
    expect(page.locator("#settings-form")).to_be_visible(timeout=20000)
    expect(page.locator("#invoice_status")).to_have_value("SUBMITTED")

    page.goto(f"{live_server}/integrations/")
    expect(page.locator("#integration-xero")).to_contain_text("Connected to Demo Company (UK) since")
    expect(page.locator("#integration-xero")).to_contain_text("by Bea Browser")

    # Disconnect, then reconnect the same organisation.
    page.goto(f"{live_server}/integrations/xero")
    page.click("#disconnect-xero")
    expect(page.locator(".flash-success")).to_contain_text("Disconnected from Demo Company (UK).")
    expect(page.locator("#connection-state")).to_contain_text("Not connected")
    page.click("#connect-xero")
    approve_on_consent_page(page)
    expect(page.locator("#connection-state")).to_contain_text("Connected to Demo Company (UK)")
    expect(page.locator("#settings-form")).to_be_visible(timeout=20000)
    # Same organisation: the choices made before are still there.
    expect(page.locator("#invoice_status")).to_have_value("SUBMITTED")

    assert csp_errors == []
    assert sandbox.violations() == []
