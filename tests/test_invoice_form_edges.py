"""The invoice and payment forms at their edges: far-off dates, row numbers
that only look like digits, a line named twice, a payment landing while an
edit is saved, a currency change after payments. Each is refused with a
message beside its field (or a 404 for a tampered form), never a 500 or a
silent loss."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.invoices import services as invoice_services
from planman.models import Invoice, InvoiceLine, Payment
from tests.conftest import csrf_token_from
from tests.helpers import login, make_client, make_invoice, new_client, post_form, signup
from tests.security.conftest import dump_database
from tests.test_hostile_input import invoice_data


@pytest.fixture
def user(client):
    return signup(client)


@pytest.fixture
def acme(user):
    return make_client(user, name="Acme Ltd")  # 30 days' terms


def edit_data(invoice, **changes):
    data = invoice_data(invoice.client, number=invoice.number, status=invoice.status, currency=invoice.currency)
    for index, line in enumerate(invoice.lines):
        data.update({f"lines-{index}-line_id": str(line.id), f"lines-{index}-description": line.description,
                     f"lines-{index}-quantity": str(line.quantity), f"lines-{index}-unit_price": str(line.unit_price),
                     f"lines-{index}-discount_percent": "", f"lines-{index}-tax_rate_id": ""})
    data.update(changes)
    return data


def field_error(html: str, field_id: str) -> str:
    """The message beside a field (the lines' own is below the table of lines)."""
    pattern = r'<p class="error">(.*?)</p>' if field_id == "lines" else rf'id="{field_id}-error"[^>]*>(.*?)</'
    match = re.search(pattern, html, re.S)
    assert match, f"no message beside {field_id}"
    return " ".join(match.group(1).split())


@pytest.mark.parametrize("field, value", [("issue_date", "9999-12-31"), ("issue_date", "1066-10-14"),
                                          ("due_date", "9999-12-31")])
def test_a_far_off_date_is_refused_beside_its_field(client, user, acme, field, value):
    before = dump_database()
    response = post_form(client, "/invoices/new", invoice_data(acme, **{field: value}), form_url="/invoices/new")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), field) == "Enter a date from 1900 to 2999."
    assert dump_database() == before


def test_a_far_off_payment_date_is_refused_beside_its_field(client, user, acme):
    invoice = make_invoice(user, acme, status="sent")
    response = post_form(client, f"/invoices/{invoice.id}/payments/new", {
        "amount": "1.00", "paid_on": "9999-12-31", "method": "bank_transfer", "reference": "", "note": ""})
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "paid_on") == "Enter a date from 1900 to 2999."
    assert db.session.scalar(sa.select(Payment)) is None


@pytest.mark.parametrize("digit", ["²", "①", "¹"])
def test_row_numbers_that_only_look_like_digits_are_ignored_not_a_500(client, user, acme, digit):
    invoice = make_invoice(user, acme)
    odd = {f"lines-{digit}-description": "Odd", f"lines-{digit}-quantity": "1", f"lines-{digit}-unit_price": "5"}
    # A new invoice whose rows are only those: no line at all.
    no_rows = {key: value for key, value in invoice_data(acme).items() if not key.startswith("lines-")}
    response = post_form(client, "/invoices/new", {**no_rows, **odd}, form_url="/invoices/new")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "lines") == "Add at least one line."
    # Beside a real row the odd one changes nothing.
    edited = post_form(client, f"/invoices/{invoice.id}/edit", {**edit_data(invoice), **odd})
    assert edited.status_code == 302
    assert post_form(client, "/invoices/lines", odd, form_url="/invoices/new").status_code == 200
    assert post_form(client, "/invoices/totals", {**invoice_data(acme), **odd},
                     form_url="/invoices/new").status_code == 200
    # As a line id it is a line of no invoice: as for another invoice's line.
    tampered = post_form(client, f"/invoices/{invoice.id}/edit", edit_data(invoice, **{"lines-0-line_id": digit}))
    assert tampered.status_code == 404


def test_one_line_named_twice_is_refused_and_no_line_is_lost(client, user, acme):
    invoice = make_invoice(user, acme, lines=((1, "10.00", None), (2, "20.00", None)))
    first = invoice.lines[0].id
    before = dump_database()
    response = post_form(client, f"/invoices/{invoice.id}/edit", edit_data(invoice, **{"lines-1-line_id": str(first)}))
    assert response.status_code == 404
    assert dump_database() == before
    assert len(db.session.scalars(sa.select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).all()) == 2


@pytest.mark.parametrize("change", ["lower the total", "void"])
def test_a_payment_recorded_while_an_edit_is_saved_is_not_left_against_nothing(app, client, user, acme, monkeypatch,
                                                                              change):
    invoice = make_invoice(user, acme, lines=((1, "100.00", None),), status="sent")
    colleague = new_client(app)
    login(colleague, user.email)
    token = csrf_token_from(colleague.get(f"/invoices/{invoice.id}/payments/new").get_data(as_text=True))
    apply_lines, recorded = invoice_services.apply_lines, []

    def a_colleague_records_a_payment_meanwhile(*args, **kwargs):
        # After the edit was checked against payments (none yet), before it is written.
        if not recorded:
            recorded.append(colleague.post(f"/invoices/{invoice.id}/payments/new", data={
                "csrf_token": token, "amount": "60.00", "paid_on": "2026-01-10", "method": "bank_transfer",
                "reference": "", "note": ""}).status_code)
        return apply_lines(*args, **kwargs)

    monkeypatch.setattr(invoice_services, "apply_lines", a_colleague_records_a_payment_meanwhile)
    changes = {"lines-0-unit_price": "10"} if change == "lower the total" else {"status": "void"}
    response = post_form(client, f"/invoices/{invoice.id}/edit", edit_data(invoice, **changes))

    assert recorded == [302]
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    if change == "void":
        assert field_error(html, "status") == "This invoice has payments: reverse them before voiding it."
    else:
        assert "cannot be less than the 60.00 already paid" in field_error(html, "lines")
    db.session.expire_all()
    saved = db.session.get(Invoice, invoice.id)
    assert (saved.total, saved.amount_paid, saved.status) == (100, 60, "part_paid")


def test_the_currency_of_an_invoice_with_payments_stays(client, user, acme):
    invoice = make_invoice(user, acme, lines=((1, "100.00", None),), status="sent")
    assert post_form(client, f"/invoices/{invoice.id}/payments/new", {
        "amount": "50.00", "paid_on": "2026-01-10", "method": "bank_transfer", "reference": "",
        "note": ""}).status_code == 302
    response = post_form(client, f"/invoices/{invoice.id}/edit", edit_data(invoice, currency="JPY"))
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "currency") == \
        "This invoice has payments in GBP: reverse them before changing its currency."
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).currency == "GBP"
