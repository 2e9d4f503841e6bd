"""The integration panel in a real browser, with real workers and the Xero
stand-in: open a client's Xero tab, press Send, watch "Sending…" while the
panel polls, and see it turn into Update by itself when the job ends; then
Update after an edit."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_core_flows import add_client
from tests.browser.test_xero_connect import approve_on_consent_page, sign_up, watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def app(integration_app):
    return integration_app


def test_send_then_update_from_the_xero_tab(page: Page, live_server, sandbox, rq_workers):
    rq_workers.start(1)
    csp_errors = watch_csp(page)
    sign_up(page, live_server)
    page.goto(f"{live_server}/integrations/xero")
    page.click("#connect-xero")
    approve_on_consent_page(page)
    expect(page.locator("#connection-state")).to_contain_text("Connected to Demo Company (UK)")

    add_client(page, live_server, "Panel Test Ltd")
    polls = []  # (status, url) of every poll the panel makes
    page.on("response", lambda r: "/panel?push=" in r.url and polls.append((r.status, r.url)))

    page.click("#tab-xero")
    panel = page.locator("#panel-xero")
    expect(panel).to_have_attribute("data-panel-state", "never_sent")
    # Xero answers slowly, so the push is still under way for a few polls.
    sandbox.control("faults", latency_ms=2500)
    panel.get_by_role("button", name="Send").click()
    expect(panel).to_have_attribute("data-panel-state", "pushing")
    expect(panel).to_contain_text("Sending to Xero")

    # Nobody reloads: the panel swaps itself to the new state when the job ends.
    expect(panel).to_have_attribute("data-panel-state", "sent", timeout=30000)
    expect(panel).to_contain_text("Sent to Xero.")
    # The tab's chip followed, and screen readers were told (a live region the swap keeps).
    expect(page.locator("#tab-xero .chip")).to_have_text("Sent")
    expect(page.locator("#panel-news-xero")).to_have_text("Sent to Xero.")
    assert page.get_attribute("#panel-news-xero", "aria-live") == "polite"
    expect(panel.get_by_role("button", name="Update")).to_be_visible()
    expect(panel.get_by_role("link", name="View in Xero")).to_be_visible()
    statuses = [status for status, _ in polls]
    assert 204 in statuses, polls  # polls while nothing changed were answered "keep what you have"
    assert statuses[-1] == 200, polls  # and the last one brought the finished panel
    assert [c["Name"] for c in contacts_in_xero(sandbox)] == ["Panel Test Ltd"]

    # Edit, then Update from the same tab.
    sandbox.control("faults/clear")
    page.goto(re.sub(r"\?.*$", "", page.url) + "/edit")
    page.fill("#email", "changed@example.com")
    page.click("#client-form button[type=submit]")
    # Unsent changes open the tab by itself (issue 13), so no click is needed.
    expect(page.locator("#tab-xero")).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#tab-xero .chip")).to_have_text("Changed since sent")
    expect(panel).to_contain_text("Changed since last sent")
    panel.get_by_role("button", name="Update").click()
    expect(panel).to_contain_text("Updated in Xero.", timeout=30000)
    expect(page.locator("#panel-news-xero")).to_have_text("Updated in Xero.")
    expect(panel).not_to_contain_text("Changed since last sent")

    [contact] = contacts_in_xero(sandbox)
    assert contact["EmailAddress"] == "changed@example.com"
    assert csp_errors == []
    assert sandbox.violations() == []


def contacts_in_xero(sandbox) -> list[dict]:
    [organisation] = [o for o in sandbox.state()["organisations"] if o["name"] == "Demo Company (UK)"]
    return organisation["contacts"]
