"""The client payment page behind an invoice's unguessable link, and "Copy
payment link" on the invoice page."""
import re

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations import registry
from planman.models import Connection, PaymentLink, utcnow
from tests.conftest import csrf_token_from
from tests.helpers import make_client, make_invoice, new_client, post_form, signup, tax_rate  # noqa: F401
from tests.test_payments import record
from tests.webhook_provider import TestPayProvider


@pytest.fixture
def user(client):
    return signup(client, firm_name="Reid & Co Accountants")


@pytest.fixture
def invoice(user):
    customer = make_client(user, name="Acme Ltd")
    return make_invoice(user, customer, lines=((2, "50.00", tax_rate(user, "VAT 20%")),), status="sent")


@pytest.fixture
def testpay(monkeypatch):
    provider = TestPayProvider()
    monkeypatch.setitem(registry.PROVIDERS, provider.key, provider)
    return provider


def make_link(client, invoice) -> str:
    response = post_form(client, f"/invoices/{invoice.id}/payment-link", {}, form_url=f"/invoices/{invoice.id}")
    assert response.status_code == 302 and response.headers["Location"].endswith("#payment-link")
    return link_on_page(client, invoice)


def link_on_page(client, invoice) -> str:
    html = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    match = re.search(r'<input type="text" id="payment-link-url" readonly value="([^"]+)">', html)
    assert match, "no payment link shown"
    return match.group(1)


def visit(app, url: str):
    """Open the link as the client would: another browser, nobody logged in."""
    path = url.removeprefix(app.config["PUBLIC_BASE_URL"])
    return new_client(app).get(path)


def test_the_invoice_page_offers_a_link_to_make_then_copy(client, invoice):
    html = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "No payment link yet." in html and "Make a payment link" in html and "payment-link-url" not in html
    url = make_link(client, invoice)
    assert re.fullmatch(r"http://planman\.test/pay/[A-Za-z0-9_-]{43}", url)
    html = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert 'data-copy-target="payment-link-url">Copy payment link</button>' in html
    assert '<script src="/static/js/copy_link.js" defer></script>' in html and "<script>" not in html
    assert "Online payment is not set up" in html
    assert client.get("/static/js/copy_link.js").status_code == 200


def test_the_client_sees_the_invoice_without_logging_in(app, client, invoice):
    url = make_link(client, invoice)
    response = visit(app, url)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Reid &amp; Co Accountants: invoice " + invoice.number in html
    assert "Acme Ltd" in html and "Line 1" in html
    assert re.search(r'id="pay-amount-due">GBP 120.00<', html)
    assert "Online payment is not set up for this invoice" in html and invoice.number in html
    assert response.headers["Cache-Control"] == "no-store"
    assert "noindex" in response.headers["X-Robots-Tag"] and '<meta name="robots" content="noindex' in html
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Log out" not in html


def test_the_page_shows_what_is_left_and_says_when_paid(app, client, invoice):
    url = make_link(client, invoice)
    record(client, invoice, amount="100.00")
    assert re.search(r'id="pay-amount-due">GBP 20.00<', visit(app, url).get_data(as_text=True))
    record(client, invoice, amount="20.00")
    html = visit(app, url).get_data(as_text=True)
    assert "This invoice is paid. Thank you." in html and "pay-amount-due" not in html


def test_a_void_invoice_says_so(app, client, user, invoice):
    url = make_link(client, invoice)
    invoice.status = "void"
    db.session.commit()
    response = visit(app, url)
    assert response.status_code == 410
    assert "This invoice has been cancelled (voided)" in response.get_data(as_text=True)


def test_a_new_link_replaces_the_old(app, client, invoice):
    old = make_link(client, invoice)
    new = make_link(client, invoice)
    assert new != old
    gone = visit(app, old)
    assert gone.status_code == 404
    html = gone.get_data(as_text=True)
    assert "This payment link does not work" in html and "replaced by a newer link" in html
    assert "Reid" not in html and invoice.number not in html
    assert visit(app, new).status_code == 200
    assert link_on_page(client, invoice) == new  # the firm can show it again


def test_a_made_up_token_shows_nothing(app, client, invoice):
    make_link(client, invoice)
    for token in ("x", "A" * 43, "a" * 200):
        response = new_client(app).get(f"/pay/{token}")
        assert response.status_code == 404 and "Reid" not in response.get_data(as_text=True)


def test_each_link_opens_only_its_own_invoice(app, client, user, invoice):
    second = make_invoice(user, make_client(user, name="Bramble Bakery"), lines=((1, "7.00", None),))
    first_url, second_url = make_link(client, invoice), make_link(client, second)
    first, other = visit(app, first_url).get_data(as_text=True), visit(app, second_url).get_data(as_text=True)
    assert invoice.number in first and second.number not in first and "Bramble" not in first
    assert second.number in other and "Acme" not in other


def test_the_database_does_not_hold_a_working_token(client, invoice):
    url = make_link(client, invoice)
    token = url.rsplit("/", 1)[1]
    row = db.session.scalar(sa.select(PaymentLink))
    assert token not in (row.nonce, row.token_hash)


def test_another_firm_cannot_make_a_link_for_my_invoice(app, client, invoice):
    other = new_client(app)
    signup(other)
    response = post_form(other, f"/invoices/{invoice.id}/payment-link", {}, form_url="/clients/")
    assert response.status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PaymentLink)) == 0


def connect_testpay(user):
    db.session.add(Connection(firm_id=user.firm_id, provider="testpay", state="connected", tenant_id="acct_1",
                              tenant_name="TestPay account", connected_at=utcnow()))
    db.session.commit()


def test_one_button_per_connected_payment_provider(app, client, user, invoice, testpay):
    url = make_link(client, invoice)
    html = visit(app, url).get_data(as_text=True)
    assert "Pay by card with TestPay" not in html and "Online payment is not set up" in html  # not connected
    connect_testpay(user)
    browser = new_client(app)
    path = url.removeprefix(app.config["PUBLIC_BASE_URL"])
    html = browser.get(path).get_data(as_text=True)
    assert "Pay by card with TestPay" in html and "Online payment is not set up" not in html
    # A payment provider takes no records: no integration tab on the firm's invoice page.
    firm_page = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert 'id="tab-xero"' in firm_page and 'id="tab-testpay"' not in firm_page
    assert "Online payment is not set up" not in firm_page
    assert browser.post(f"{path}/testpay").status_code == 400  # CSRF, even with no log-in
    response = browser.post(f"{path}/testpay", data={"csrf_token": csrf_token_from(html)})
    assert response.status_code == 303
    assert response.headers["Location"] == f"https://pay.testpay.example/checkout?invoice={invoice.number}&amount=120.00"
    assert browser.post(f"{path}/xero", data={"csrf_token": csrf_token_from(html)}).status_code == 404


def test_no_button_once_paid(app, client, user, invoice, testpay):
    connect_testpay(user)
    url = make_link(client, invoice)
    record(client, invoice, amount="120.00")
    html = visit(app, url).get_data(as_text=True)
    assert "Pay by card with TestPay" not in html and "This invoice is paid" in html
