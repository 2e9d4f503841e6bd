"""The core flows in a real browser: sign up, add a client, write an invoice with
live totals, search clients. HTMX runs for real here, under the strict CSP."""
import re

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import make_client

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "browser-password"


def watch_csp(page: Page) -> list:
    """Collect the browser's complaints about blocked inline scripts or styles."""
    errors = []
    page.on("console", lambda message: "Content Security Policy" in message.text and errors.append(message.text))
    return errors


def sign_up(page: Page, base: str, email: str = "owner@example.com") -> None:
    page.goto(f"{base}/signup")
    page.fill("#firm_name", "Browser & Co")
    page.select_option("#currency", "GBP")
    page.fill("#name", "Bea Browser")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/clients/")


def add_client(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/clients/new")
    page.fill("#name", name)
    page.fill("#email", "accounts@example.com")
    page.fill("#payment_terms_days", "14")
    page.click("#client-form button[type=submit]")
    expect(page.locator("h1")).to_have_text(name)


def test_sign_up_and_add_a_client(page: Page, live_server):
    csp_errors = watch_csp(page)
    sign_up(page, live_server)
    expect(page.locator(".flash-success")).to_contain_text("Welcome to PlanMan")
    expect(page.locator(".empty")).to_contain_text("No clients yet.")
    add_client(page, live_server, "Acme Ltd")
    expect(page.locator(".flash-success")).to_contain_text("Client Acme Ltd added.")
    # A field error is shown beside the field, and what was typed stays.
    page.goto(f"{live_server}/clients/new")
    page.fill("#name", "Acme Ltd")
    page.fill("#email", "not-an-email")
    page.click("#client-form button[type=submit]")
    expect(page.locator("#email-error")).to_contain_text("Invalid email address.")
    expect(page.locator("#name-error")).to_contain_text("Another client already has this name")
    expect(page.locator("#email")).to_have_value("not-an-email")
    assert csp_errors == []


def test_write_an_invoice_with_two_lines_and_live_totals(page: Page, live_server):
    csp_errors = watch_csp(page)
    sign_up(page, live_server)
    add_client(page, live_server, "Acme Ltd")
    page.click("text=New invoice")
    expect(page.locator("#number")).to_have_value("INV-0001")

    page.fill("#lines-0-description", "Bookkeeping")
    page.fill("#lines-0-quantity", "3")
    page.fill("#lines-0-unit_price", "33.33")
    page.select_option("#lines-0-tax_rate_id", label="VAT 20%")
    expect(page.locator("#total-total")).to_have_text("119.99")
    expect(page.locator("#line-amount-0")).to_have_text("99.99")

    page.click("#add-line")
    expect(page.locator("#line-1")).to_be_visible()
    page.fill("#lines-1-description", "Postage")
    page.fill("#lines-1-unit_price", "10")
    page.select_option("#lines-1-tax_rate_id", label="No tax")
    expect(page.locator("#total-subtotal")).to_have_text("109.99")
    expect(page.locator("#total-tax")).to_have_text("20.00")
    expect(page.locator("#total-total")).to_have_text("129.99")

    # A third line, removed again: totals and row go together; indexes stay unique.
    page.click("#add-line")
    page.fill("#lines-2-description", "Mistake")
    page.fill("#lines-2-unit_price", "1000")
    expect(page.locator("#total-total")).to_have_text("1,329.99")
    page.click("#line-2 .remove-line")
    expect(page.locator("#line-2")).to_have_count(0)
    expect(page.locator("#total-total")).to_have_text("129.99")
    # Removing the first row leaves a gap; the next row still gets a fresh index.
    page.click("#add-line")
    expect(page.locator("#line-2")).to_be_visible()
    page.click("#line-2 .remove-line")
    expect(page.locator("#line-2")).to_have_count(0)

    page.click("#invoice-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/invoices/\d+$"))
    expect(page.locator("h1")).to_contain_text("Invoice INV-0001")
    expect(page.locator("#total-total")).to_have_text("129.99")
    expect(page.locator("#invoice-lines tbody tr")).to_have_count(2)
    assert csp_errors == []


def test_search_clients_as_you_type(page: Page, live_server, app):
    sign_up(page, live_server)
    from planman.extensions import db
    from planman.models import User
    import sqlalchemy as sa

    user = db.session.scalar(sa.select(User).where(User.email == "owner@example.com"))
    for name in ["Brown & Sons", "Green Grocers", "Greenway Cycles"]:
        make_client(user, name=name)
    page.goto(f"{live_server}/clients/")
    rows = page.locator("#client-results tbody tr")
    expect(rows).to_have_count(3)
    page.fill("#client-search", "green")
    expect(rows).to_have_count(2)
    expect(page.locator("#client-results")).not_to_contain_text("Brown")
    expect(page).to_have_url(f"{live_server}/clients/?q=green")
    page.fill("#client-search", "zebra")
    expect(page.locator("#client-results")).to_contain_text("No clients match")
    page.fill("#client-search", "")
    expect(rows).to_have_count(3)
