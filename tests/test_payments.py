"""Payments recorded by users, and an invoice's status following from them:
recording (amount due by default, overpayment refused beside the field),
reversing (kept, with who and when), part paid / paid in the page and the
lists, the edit form's rules for a paid invoice, CSRF and another firm's ids."""
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Invoice, Payment
from tests.conftest import csrf_token_from
from tests.helpers import make_client, make_invoice, new_client, post_form, signup, tax_rate  # noqa: F401


@pytest.fixture
def user(client):
    return signup(client, name="Ada Admin")


@pytest.fixture
def invoice(user):
    """Total 120.00: 100.00 plus VAT 20%."""
    customer = make_client(user, name="Acme Ltd")
    return make_invoice(user, customer, lines=((1, "100.00", tax_rate(user, "VAT 20%")),), status="sent")


def record(client, invoice, **data):
    fields = {"amount": "120.00", "paid_on": "2026-02-01", "method": "bank_transfer", "reference": "BACS 1",
              "note": ""}
    fields.update(data)
    return post_form(client, f"/invoices/{invoice.id}/payments/new", fields)


def page(client, invoice) -> str:
    return client.get(f"/invoices/{invoice.id}").get_data(as_text=True)


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert match, element_id
    return " ".join(match.group(1).split())


def test_the_form_offers_the_amount_due(client, invoice):
    record(client, invoice, amount="20.00")
    form = client.get(f"/invoices/{invoice.id}/payments/new").get_data(as_text=True)
    amount = re.search(r'<input[^>]*name="amount"[^>]*>', form).group(0)
    assert 'value="100"' in amount
    assert "due 100.00" in form


def test_payments_make_an_invoice_part_paid_then_paid(client, invoice):
    assert "status-sent" in page(client, invoice)
    response = record(client, invoice, amount="20.00")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/invoices/{invoice.id}#payments")
    html = page(client, invoice)
    assert "Payment of 20.00 GBP recorded." in html
    assert text_of(html, "amount-paid") == "GBP 20.00" and text_of(html, "amount-due") == "GBP 100.00"
    # The invoice page names whose status it is (issue 13): "PlanMan: Part paid".
    assert "status-part_paid" in html and ">PlanMan: Part paid<" in html
    row = text_of(html.replace("\n", " "), "payment-list")  # the table's header row exists
    assert "Date" in row
    assert "Recorded by Ada Admin" in html and "Bank transfer" in html and "BACS 1" in html

    record(client, invoice, amount="100.00", method="other", reference="Cheque 7")
    html = page(client, invoice)
    assert text_of(html, "amount-due") == "GBP 0.00" and "status-paid" in html
    assert "Record a payment" not in html  # nothing is due
    listed = client.get("/invoices/?status=paid").get_data(as_text=True)
    assert invoice.number in listed
    assert invoice.number not in client.get("/invoices/?status=sent").get_data(as_text=True)
    amounts = db.session.scalars(sa.select(Payment.amount).order_by(Payment.id)).all()
    assert amounts == [Decimal("20.00"), Decimal("100.00")]


@pytest.mark.parametrize("amount, message", [
    ("120.01", "The amount due is 120.00 GBP: a payment cannot be more."),
    ("0", "Enter an amount above zero."),
    ("-5", "Enter an amount above zero."),
    ("12.345", "Use at most 2 decimal places."),
    ("ten pounds", "Not a valid decimal value."),
    ("", "Enter the amount received."),
    ("99999999999", "That is more than one payment can be."),
])
def test_a_wrong_amount_is_refused_beside_the_field(client, invoice, amount, message):
    response = record(client, invoice, amount=amount)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(r'<small class="error" id="amount-error">' + re.escape(message), html), html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0
    assert "status-sent" in page(client, invoice)


def test_an_overpayment_after_a_part_payment_names_what_is_left(client, invoice):
    record(client, invoice, amount="100.00")
    response = record(client, invoice, amount="30.00")
    assert response.status_code == 422
    assert "The amount due is 20.00 GBP: a payment cannot be more." in response.get_data(as_text=True)


def test_other_bad_fields_are_refused_beside_them(client, invoice):
    response = record(client, invoice, paid_on="31/31/2026", method="card", reference="a\tb")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="paid_on-error"' in html and 'id="method-error">Not a valid choice' in html
    assert 'id="reference-error">Remove the control characters' in html


def test_a_void_invoice_takes_no_payment(client, user):
    invoice = make_invoice(user, make_client(user), status="void")
    response = record(client, invoice, amount="1.00")
    assert response.status_code == 422
    assert "This invoice is void, so it takes no payments." in response.get_data(as_text=True)


def test_reversing_a_payment_keeps_it_with_who_and_when(client, invoice):
    record(client, invoice, amount="120.00")
    payment = db.session.scalar(sa.select(Payment))
    html = page(client, invoice)
    token = csrf_token_from(html)
    url = f"/invoices/{invoice.id}/payments/{payment.id}/reverse"
    assert f'action="{url}"' in html
    response = client.post(url, data={"csrf_token": token})
    assert response.status_code == 302
    html = page(client, invoice)
    assert "Payment of 120.00 GBP reversed." in html
    assert text_of(html, "amount-due") == "GBP 120.00" and "status-sent" in html
    assert "Reversed" in html and "by Ada Admin on" in html
    assert f'action="{url}"' not in html  # nothing left to reverse
    again = client.post(url, data={"csrf_token": token})
    assert "This payment has already been reversed." in client.get(again.headers["Location"]).get_data(as_text=True)
    assert db.session.scalar(sa.select(Payment.state)) == "reversed"


def test_posts_need_their_csrf_token(client, invoice):
    record(client, invoice, amount="10.00")
    payment = db.session.scalar(sa.select(Payment))
    for url in (f"/invoices/{invoice.id}/payments/new", f"/invoices/{invoice.id}/payments/{payment.id}/reverse"):
        assert client.post(url, data={"amount": "10", "paid_on": "2026-01-01", "method": "other"}).status_code == 400
    assert db.session.scalar(sa.select(Payment.state)) == "succeeded"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1


def test_another_firms_invoice_and_payment_are_404(app, client, user, invoice):
    record(client, invoice, amount="10.00")
    payment = db.session.scalar(sa.select(Payment))
    other = new_client(app)
    signup(other)
    assert other.get(f"/invoices/{invoice.id}/payments/new").status_code == 404
    assert post_form(other, f"/invoices/{invoice.id}/payments/new", {"amount": "1", "paid_on": "2026-01-01",
                     "method": "other"}, form_url="/clients/").status_code == 404
    assert post_form(other, f"/invoices/{invoice.id}/payments/{payment.id}/reverse", {},
                     form_url="/clients/").status_code == 404
    # The firm's own payment under another of its invoices is not found either.
    mine = make_invoice(user, make_client(user))
    assert post_form(client, f"/invoices/{mine.id}/payments/{payment.id}/reverse", {},
                     form_url="/clients/").status_code == 404
    assert db.session.scalar(sa.select(Payment.state)) == "succeeded"


class TestTheInvoiceForm:
    def edit(self, client, invoice, user, **changes):
        vat = tax_rate(user, "VAT 20%")
        line = invoice.lines[0]
        data = {"number": invoice.number, "client_id": str(invoice.client_id), "issue_date": "2026-01-05",
                "due_date": "2026-02-04", "currency": "GBP", "reference": "", "amounts_are": "exclusive",
                "status": "sent", "lines-0-line_id": str(line.id), "lines-0-description": "Work",
                "lines-0-quantity": "1", "lines-0-unit_price": "100", "lines-0-discount_percent": "",
                "lines-0-tax_rate_id": str(vat.id)}
        data.update(changes)
        return post_form(client, f"/invoices/{invoice.id}/edit", data)

    def test_paid_is_not_a_choice(self, client, invoice):
        form = client.get(f"/invoices/{invoice.id}/edit").get_data(as_text=True)
        choices = re.findall(r'<option[^>]*value="(\w+)"', form.split('name="status"')[1].split("</select>")[0])
        assert choices == ["draft", "sent", "void"]

    def test_a_paid_invoice_stays_paid_whatever_status_is_picked(self, client, invoice, user):
        record(client, invoice, amount="120.00")
        assert self.edit(client, invoice, user, status="draft").status_code == 302
        assert "status-paid" in page(client, invoice)

    def test_a_higher_total_makes_a_paid_invoice_part_paid(self, client, invoice, user):
        record(client, invoice, amount="120.00")
        assert self.edit(client, invoice, user, **{"lines-0-unit_price": "200"}).status_code == 302
        html = page(client, invoice)
        assert "status-part_paid" in html and text_of(html, "amount-due") == "GBP 120.00"

    def test_a_total_below_what_was_paid_is_refused(self, client, invoice, user):
        record(client, invoice, amount="120.00")
        response = self.edit(client, invoice, user, **{"lines-0-unit_price": "50"})
        assert response.status_code == 422
        assert "The total (60.00) cannot be less than the 120.00 already paid" in response.get_data(as_text=True)
        assert db.session.get(Invoice, invoice.id).total == Decimal("120.00")

    def test_an_invoice_with_payments_cannot_be_voided(self, client, invoice, user):
        record(client, invoice, amount="10.00")
        response = self.edit(client, invoice, user, status="void")
        assert response.status_code == 422
        assert 'id="status-error">This invoice has payments: reverse them before voiding it.' in \
            response.get_data(as_text=True)

    def test_without_payments_the_picked_status_holds(self, client, invoice, user):
        assert self.edit(client, invoice, user, status="void").status_code == 302
        assert "status-void" in page(client, invoice)
