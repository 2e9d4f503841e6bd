"""Invoices: numbering, line items, live totals, validation, list queries and isolation."""
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from planman.extensions import db
from planman.models import Firm, Invoice
from tests.conftest import csrf_token_from
from tests.helpers import (  # noqa: F401
    htmx_post, make_client, make_invoice, new_client, post_form, signup, tax_rate,
)


@pytest.fixture
def user(client):
    return signup(client)


@pytest.fixture
def acme(user):
    return make_client(user, name="Acme Ltd", payment_terms_days=14)


def invoice_data(client_record, vat, **changes):
    """Two lines: 3 x 33.33 at VAT 20% and 1 x 10.00 with no tax."""
    data = {
        "number": "INV-0001", "suggested_number": "INV-0001", "client_id": str(client_record.id),
        "issue_date": "2026-03-01", "due_date": "", "currency": "GBP", "reference": "PO 7",
        "amounts_are": "exclusive", "status": "draft",
        "lines-0-description": "Bookkeeping", "lines-0-quantity": "3", "lines-0-unit_price": "33.33",
        "lines-0-discount_percent": "", "lines-0-tax_rate_id": str(vat.id),
        "lines-1-description": "Postage", "lines-1-quantity": "1", "lines-1-unit_price": "10",
        "lines-1-discount_percent": "0", "lines-1-tax_rate_id": "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def invoices_of(user):
    return db.session.scalars(sa.select(Invoice).where(Invoice.firm_id == user.firm_id).order_by(Invoice.id)).all()


def test_new_form_prefills_number_currency_and_date(client, user, acme):
    html = client.get(f"/invoices/new?client_id={acme.id}").get_data(as_text=True)
    assert 'value="INV-0001"' in html
    assert f'<option selected value="{acme.id}">Acme Ltd</option>' in html
    assert '<option selected value="GBP">GBP</option>' in html
    assert f'value="{date.today().isoformat()}"' in html
    assert 'hx-post="/invoices/totals"' in html and 'hx-trigger="input changed delay:300ms"' in html


def test_new_invoice_without_clients_sends_you_to_add_one(client, user):
    response = client.get("/invoices/new")
    assert response.status_code == 302 and response.headers["Location"] == "/clients/new"


def test_create_invoice_with_two_lines(client, user, acme):
    vat = tax_rate(user, "VAT 20%")
    response = post_form(client, "/invoices/new", invoice_data(acme, vat))
    assert response.status_code == 302
    [invoice] = invoices_of(user)
    assert response.headers["Location"] == f"/invoices/{invoice.id}"
    assert (invoice.number, invoice.currency, invoice.reference, invoice.revision) == ("INV-0001", "GBP", "PO 7", 1)
    # Due date left blank: issue date plus the client's 14 days.
    assert invoice.due_date == date(2026, 3, 15)
    assert [(line.description, line.position) for line in invoice.lines] == [("Bookkeeping", 0), ("Postage", 1)]
    totals = invoice.totals
    assert (totals.subtotal, totals.tax, totals.total) == (Decimal("109.99"), Decimal("20.00"), Decimal("129.99"))
    assert db.session.get(Firm, user.firm_id).next_invoice_number == 2
    page = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "129.99" in page and "109.99" in page and "Bookkeeping" in page and 'class="record-layout"' in page
    listing = client.get("/invoices/").get_data(as_text=True)
    assert "INV-0001" in listing and "Acme Ltd" in listing and "GBP 129.99" in listing


def test_numbers_follow_the_sequence_and_a_taken_suggestion_moves_on(client, user, acme):
    vat = tax_rate(user, "VAT 20%")
    # Two people open the form: both are offered INV-0001.
    assert 'value="INV-0001"' in client.get("/invoices/new").get_data(as_text=True)
    assert post_form(client, "/invoices/new", invoice_data(acme, vat)).status_code == 302
    # The second submits the same suggestion and gets the next free number.
    assert post_form(client, "/invoices/new", invoice_data(acme, vat)).status_code == 302
    assert [i.number for i in invoices_of(user)] == ["INV-0001", "INV-0002"]
    # A number typed by hand is skipped by the sequence.
    data = invoice_data(acme, vat, number="INV-0003", suggested_number="INV-0002")
    assert post_form(client, "/invoices/new", data).status_code == 302
    assert 'value="INV-0004"' in client.get("/invoices/new").get_data(as_text=True)
    assert post_form(client, "/invoices/new", invoice_data(acme, vat, number="")).status_code == 302
    assert [i.number for i in invoices_of(user)] == ["INV-0001", "INV-0002", "INV-0003", "INV-0004"]


def test_a_typed_number_must_be_unique_within_the_firm(client, user, acme, app):
    vat = tax_rate(user, "VAT 20%")
    make_invoice(user, acme, number="CUSTOM-1")
    response = post_form(client, "/invoices/new", invoice_data(acme, vat, number="CUSTOM-1"))
    assert response.status_code == 422
    assert 'id="number-error"' in response.get_data(as_text=True)
    assert len(invoices_of(user)) == 1
    # Another firm may use the same number.
    other = new_client(app)
    other_user = signup(other)
    other_acme = make_client(other_user, name="Acme Ltd")
    data = invoice_data(other_acme, tax_rate(other_user, "VAT 20%"), number="CUSTOM-1")
    assert post_form(other, "/invoices/new", data).status_code == 302


@pytest.mark.parametrize(
    "changes, field_id, message",
    [
        ({"lines-0-description": ""}, "lines-0-description", "Describe the line."),
        ({"lines-1-description": "d" * 4001}, "lines-1-description", "4000"),
        ({"lines-0-quantity": "0"}, "lines-0-quantity", "Quantity cannot be zero."),
        ({"lines-0-quantity": ""}, "lines-0-quantity", "Enter a quantity."),
        ({"lines-0-quantity": "1.23456"}, "lines-0-quantity", "at most 4 decimal places"),
        ({"lines-0-unit_price": "abc"}, "lines-0-unit_price", "Not a valid decimal value."),
        ({"lines-0-unit_price": "NaN"}, "lines-0-unit_price", "Enter a number."),
        ({"lines-0-unit_price": "1e20"}, "lines-0-unit_price", "Number must be between"),
        ({"lines-0-discount_percent": "101"}, "lines-0-discount_percent", "Number must be between 0 and 100"),
        ({"lines-0-discount_percent": "12.345"}, "lines-0-discount_percent", "Use at most 2 decimal places."),
        ({"lines-0-tax_rate_id": "999999"}, "lines-0-tax_rate_id", "Not a valid choice."),
        ({"client_id": ""}, "client_id", "Choose a client."),
        ({"currency": "XYZ"}, "currency", "Not a valid choice."),
        ({"issue_date": "tomorrow"}, "issue_date", "Not a valid date value."),
        ({"due_date": "2026-02-01"}, "due_date", "cannot be before the issue date"),
        ({"reference": "r" * 256}, "reference", "255"),
        ({"amounts_are": "sometimes"}, "amounts_are", "Not a valid choice."),
        ({"status": "deleted"}, "status", "Not a valid choice."),
        ({"number": "INV\n1"}, "number", "control characters"),
    ],
)
def test_invalid_input_is_shown_beside_the_field_and_nothing_is_saved(client, user, acme, changes, field_id, message):
    vat = tax_rate(user, "VAT 20%")
    response = post_form(client, "/invoices/new", invoice_data(acme, vat, **changes))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'id="{field_id}-error"' in html and message in html
    assert invoices_of(user) == []
    assert db.session.get(Firm, user.firm_id).next_invoice_number == 1
    assert "Bookkeeping" in html or field_id == "lines-0-description"  # typed lines survive


def test_an_invoice_needs_a_line(client, user, acme):
    data = {k: v for k, v in invoice_data(acme, tax_rate(user, "VAT 20%")).items() if not k.startswith("lines-")}
    response = post_form(client, "/invoices/new", data)
    assert response.status_code == 422 and "Add at least one line." in response.get_data(as_text=True)


def test_another_firms_client_or_tax_rate_cannot_be_used(client, user, acme, app):
    other = new_client(app)
    other_user = signup(other)
    other_client = make_client(other_user, name="Theirs")
    vat = tax_rate(user, "VAT 20%")
    response = post_form(client, "/invoices/new", invoice_data(acme, vat, client_id=str(other_client.id)))
    assert response.status_code == 422 and 'id="client_id-error"' in response.get_data(as_text=True)
    their_vat = tax_rate(other_user, "VAT 20%")
    response = post_form(client, "/invoices/new", invoice_data(acme, vat, **{"lines-0-tax_rate_id": str(their_vat.id)}))
    assert response.status_code == 422 and 'id="lines-0-tax_rate_id-error"' in response.get_data(as_text=True)
    assert invoices_of(user) == []


def test_edit_keeps_line_ids_removes_and_adds_lines_and_bumps_revision(client, user, acme):
    vat = tax_rate(user, "VAT 20%")
    invoice = make_invoice(user, acme, lines=[(1, "100.00", vat), (2, "5.00", None), (1, "1.00", None)])
    first_id, number = invoice.lines[0].id, invoice.number
    html = client.get(f"/invoices/{invoice.id}/edit").get_data(as_text=True)
    assert f'name="lines-0-line_id" type="hidden" value="{first_id}"' in html
    # Line 1 removed in the browser, so indexes 0 and 2 remain, plus a new row 3.
    data = invoice_data(acme, vat, number=invoice.number, suggested_number="", status="sent", **{
        "lines-0-line_id": str(first_id), "lines-0-description": "Changed", "lines-0-quantity": "2",
        "lines-0-unit_price": "100", "lines-1-description": None, "lines-1-quantity": None,
        "lines-1-unit_price": None, "lines-1-discount_percent": None, "lines-1-tax_rate_id": None,
        "lines-2-line_id": str(invoice.lines[2].id), "lines-2-description": "Kept", "lines-2-quantity": "1",
        "lines-2-unit_price": "1", "lines-2-tax_rate_id": "",
        "lines-3-line_id": "", "lines-3-description": "New", "lines-3-quantity": "1", "lines-3-unit_price": "9.5",
        "lines-3-tax_rate_id": str(vat.id),
    })
    response = post_form(client, f"/invoices/{invoice.id}/edit", data, form_url=f"/invoices/{invoice.id}/edit")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert (invoice.revision, invoice.status, invoice.number) == (2, "sent", number)
    assert [(line.description, line.position) for line in invoice.lines] == [("Changed", 0), ("Kept", 1), ("New", 2)]
    assert invoice.lines[0].id == first_id
    # 2 x 100 + 20% VAT, 1.00 without tax, 9.50 + 1.90 VAT
    assert invoice.totals.total == Decimal("252.40")
    page = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert page.index(">Changed<") < page.index(">Kept<") < page.index(">New<")  # every line, in order


def test_a_line_id_from_another_invoice_is_404(client, user, acme, app):
    vat = tax_rate(user, "VAT 20%")
    mine = make_invoice(user, acme)
    other_invoice = make_invoice(user, acme)
    data = invoice_data(acme, vat, number=mine.number, **{"lines-0-line_id": str(other_invoice.lines[0].id)})
    response = post_form(client, f"/invoices/{mine.id}/edit", data)
    assert response.status_code == 404
    assert other_invoice.lines[0].description == "Line 1" and mine.revision == 1


def test_another_firms_invoice_is_404(client, user, acme, app):
    invoice = make_invoice(user, acme)
    other = new_client(app)
    other_user = signup(other)
    for url in [f"/invoices/{invoice.id}", f"/invoices/{invoice.id}/edit"]:
        assert other.get(url).status_code == 404
    theirs = make_client(other_user)
    data = invoice_data(theirs, tax_rate(other_user, "VAT 20%"), number="X-1")
    assert post_form(other, f"/invoices/{invoice.id}/edit", data, form_url="/invoices/new").status_code == 404
    assert invoice.revision == 1 and invoice.number != "X-1"
    assert invoice.number not in other.get("/invoices/").get_data(as_text=True)


def test_csrf_is_required(client, user, acme):
    data = invoice_data(acme, tax_rate(user, "VAT 20%"))
    assert client.post("/invoices/new", data=data).status_code == 400
    assert client.post("/invoices/totals", data=data, headers={"HX-Request": "true"}).status_code == 400
    assert invoices_of(user) == []


class TestLiveTotals:
    def test_totals_use_the_invoice_arithmetic(self, client, user, acme):
        vat = tax_rate(user, "VAT 20%")
        html = htmx_post(client, "/invoices/totals", invoice_data(acme, vat)).get_data(as_text=True)
        assert re.search(r'id="total-subtotal">109.99<', html)
        assert re.search(r'id="total-tax">20.00<', html)
        assert re.search(r'id="total-total">129.99<', html)
        # Each line's amount is swapped in out of band.
        assert '<span id="line-amount-0" class="line-amount" hx-swap-oob="true">99.99</span>' in html
        assert '<span id="line-amount-1" class="line-amount" hx-swap-oob="true">10.00</span>' in html

    def test_inclusive_amounts(self, client, user, acme):
        vat = tax_rate(user, "VAT 20%")
        html = htmx_post(client, "/invoices/totals", invoice_data(acme, vat, amounts_are="inclusive")).get_data(as_text=True)
        # 99.99 includes 16.67 tax; the postage line has none.
        assert 'id="total-tax">16.67<' in html and 'id="total-total">109.99<' in html
        assert 'id="total-subtotal">93.32<' in html and "Includes tax" in html

    def test_half_typed_lines_count_as_nothing(self, client, user, acme):
        vat = tax_rate(user, "VAT 20%")
        data = invoice_data(acme, vat, **{"lines-0-quantity": "3.", "lines-1-unit_price": "abc"})
        html = htmx_post(client, "/invoices/totals", data).get_data(as_text=True)
        assert 'id="total-total">119.99<' in html  # "3." is still 3
        assert '<span id="line-amount-1" class="line-amount" hx-swap-oob="true"></span>' in html

    def test_removing_a_line_drops_it_from_totals_and_page(self, client, user, acme):
        vat = tax_rate(user, "VAT 20%")
        html = htmx_post(client, "/invoices/totals", {**invoice_data(acme, vat), "remove_line": "0"}).get_data(as_text=True)
        assert 'id="total-total">10.00<' in html
        assert '<div hx-swap-oob="delete:#line-0"></div>' in html

    def test_other_firms_tax_rates_count_as_no_tax(self, client, user, acme, app):
        other = new_client(app)
        their_vat = tax_rate(signup(other), "VAT 20%")
        html = htmx_post(client, "/invoices/totals", invoice_data(acme, their_vat)).get_data(as_text=True)
        assert 'id="total-tax">0.00<' in html

    def test_new_line_row_takes_the_next_free_index(self, client, user, acme):
        vat = tax_rate(user, "VAT 20%")
        data = invoice_data(acme, vat, **{"lines-5-description": "gap"})
        html = htmx_post(client, "/invoices/lines", data).get_data(as_text=True)
        assert html.lstrip().startswith('<tr id="line-6"') and 'name="lines-6-description"' in html
        assert f'<option selected value="{vat.id}">VAT 20%</option>' in html
        empty = htmx_post(client, "/invoices/lines", {}).get_data(as_text=True)
        assert 'id="line-0"' in empty


class TestList:
    def test_filter_by_status(self, client, user, acme):
        make_invoice(user, acme, number="D-1", status="draft")
        make_invoice(user, acme, number="P-1", status="paid")
        paid = client.get("/invoices/?status=paid").get_data(as_text=True)
        assert listed_numbers(paid) == ["P-1"]
        everything = client.get("/invoices/?status=bogus").get_data(as_text=True)
        assert sorted(listed_numbers(everything)) == ["D-1", "P-1"]
        assert "No void invoices." in client.get("/invoices/?status=void").get_data(as_text=True)

    def test_empty_state(self, client, user):
        assert "No invoices yet." in client.get("/invoices/").get_data(as_text=True)

    def test_list_totals_are_the_invoices_own_totals(self, client, user, acme):
        """The lists show each invoice's stored total (planman.invoices.totals);
        it must equal ``Invoice.totals`` in every case, also after lines change."""
        vat, reduced, zero = (tax_rate(user, name) for name in ("VAT 20%", "Reduced 5%", "Zero rated"))
        mixed = [(3, "33.33", vat), (1, "10.00", None), (2, "7.49", reduced), (1, "5.00", zero)]
        cases = {
            "EXCL": dict(lines=mixed),
            "INCL": dict(lines=mixed, amounts_are="inclusive"),
            "NOTAX": dict(lines=mixed, amounts_are="no_tax"),
            "CREDIT": dict(lines=[(1, "100.00", vat), (-1, "40.01", vat), (1, "-0.99", reduced)]),
            "ROUNDING": dict(lines=[(Decimal("0.3333"), "0.05", reduced)] * 3, amounts_are="inclusive"),
            "ONELINE": dict(lines=[(1, "0.01", None)]),
        }
        invoices = {number: make_invoice(user, acme, number=number, **case) for number, case in cases.items()}
        discounted = make_invoice(user, acme, number="DISC", lines=mixed)
        for line, discount in zip(discounted.lines, ("12.5", "100", "0.0001", "33.3333")):
            line.discount_percent = Decimal(discount)
        invoices["DISC"] = discounted
        db.session.commit()

        expected = {number: "GBP {:,.2f}".format(invoice.totals.total) for number, invoice in invoices.items()}
        assert expected["EXCL"] == "GBP 150.72" and expected["CREDIT"] == "GBP 70.95"  # tax added, credits subtracted
        for url in ("/invoices/", f"/clients/{acme.id}"):
            page = client.get(url).get_data(as_text=True)
            shown = dict(re.findall(r'>([A-Z]+)</a></td>.*?<td class="num">([^<]+)</td>', page, re.S))
            assert shown == expected, url

    @staticmethod
    def shown_totals(client, url="/invoices/"):
        page = client.get(url).get_data(as_text=True)
        return dict(re.findall(r'>([A-Z0-9-]+)</a></td>.*?<td class="num">([^<]+)</td>', page, re.S))

    def test_totals_shown_follow_every_edit_of_the_lines(self, client, user, acme):
        vat = tax_rate(user, "VAT 20%")
        assert post_form(client, "/invoices/new", invoice_data(acme, vat)).status_code == 302
        assert self.shown_totals(client) == {"INV-0001": "GBP 129.99"}  # 99.99 + 20.00 VAT + 10.00

        [invoice] = invoices_of(user)
        edited = invoice_data(acme, vat, **{  # line 1 changed to 33.33 + 6.67 VAT, line 2 left out (removed)
            "lines-0-line_id": str(invoice.lines[0].id), "lines-0-quantity": "1", "lines-1-description": None,
            "lines-1-quantity": None, "lines-1-unit_price": None, "lines-1-discount_percent": None,
            "lines-1-tax_rate_id": None,
        })
        assert post_form(client, f"/invoices/{invoice.id}/edit", edited).status_code == 302
        assert len(invoice.lines) == 1
        assert self.shown_totals(client) == {"INV-0001": "GBP 40.00"}
        assert self.shown_totals(client, f"/clients/{acme.id}") == {"INV-0001": "GBP 40.00"}

    def test_totals_shown_follow_a_tax_rate_edit(self, client, user, acme):
        vat, reduced = tax_rate(user, "VAT 20%"), tax_rate(user, "Reduced 5%")
        post_form(client, "/invoices/new", invoice_data(acme, vat))  # INV-0001 uses VAT 20%
        post_form(client, "/invoices/new", invoice_data(acme, reduced, number="INV-0002",
                                                        suggested_number="INV-0002"))
        assert self.shown_totals(client) == {"INV-0001": "GBP 129.99", "INV-0002": "GBP 114.99"}

        assert post_form(client, f"/setup/tax-rates/{vat.id}/edit",
                         {"name": "VAT 20%", "percent": "17.5"}).status_code == 302
        # 99.99 + 17.50 VAT + 10.00; the invoice on the other rate is untouched.
        assert self.shown_totals(client) == {"INV-0001": "GBP 127.49", "INV-0002": "GBP 114.99"}

    def test_query_count_does_not_grow_with_invoices(self, client, user, acme, app):
        vat = tax_rate(user, "VAT 20%")

        def queries_for_list_page():
            statements = []

            def count(conn, cursor, statement, *args):
                statements.append(statement)

            event.listen(db.engine, "before_cursor_execute", count)
            try:
                assert client.get("/invoices/").status_code == 200
            finally:
                event.remove(db.engine, "before_cursor_execute", count)
            return len(statements)

        for n in range(3):
            other_client = make_client(user)
            make_invoice(user, other_client, lines=[(1, "10", vat), (2, "3", None)])
        few = queries_for_list_page()
        for n in range(27):
            other_client = make_client(user)
            make_invoice(user, other_client, lines=[(1, "10", vat), (2, "3", None), (1, "1", vat)])
        many = queries_for_list_page()
        assert few == many


class TestPagination:
    @pytest.fixture
    def config_overrides(self):
        return {"INVOICES_PER_PAGE": 2}

    def test_pages_keep_the_filter(self, client, user, acme):
        for n in range(3):
            make_invoice(user, acme, number=f"S-{n}", status="sent")
        make_invoice(user, acme, number="D-9", status="draft")
        first = client.get("/invoices/?status=sent").get_data(as_text=True)
        assert "Page 1 of 2" in first and "page=2&amp;status=sent" in first
        second = client.get("/invoices/?status=sent&page=2").get_data(as_text=True)
        # The rows' numbers, not a count over the page: its CSRF token is
        # random URL-safe base64 and can itself contain "S-".
        assert listed_numbers(first) == ["S-2", "S-1"] and listed_numbers(second) == ["S-0"]


def listed_numbers(page: str) -> list[str]:
    """The invoice numbers a list page's rows link to, top to bottom."""
    return re.findall(r'<a href="/invoices/\d+">([^<]+)</a></td>', page)


def test_due_date_defaults_from_payment_terms_and_can_be_set(client, user, acme):
    vat = tax_rate(user, "VAT 20%")
    post_form(client, "/invoices/new", invoice_data(acme, vat, due_date="2026-04-30"))
    [invoice] = invoices_of(user)
    assert invoice.due_date == date(2026, 4, 30)
    assert invoice.issue_date + timedelta(days=14) != invoice.due_date


def test_concurrent_saves_never_share_a_number(app, user, acme):
    """Eight sessions allocate at once: the UPDATE ... RETURNING hands out distinct numbers."""
    import threading

    from planman.invoices import services

    firm_id, client_id = user.firm_id, acme.id
    numbers, errors = [], []
    barrier = threading.Barrier(8)

    def write_invoice():
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                number = services.allocate_number(firm_id)
                db.session.add(Invoice(firm_id=firm_id, client_id=client_id, number=number, issue_date=date(2026, 1, 1),
                                       due_date=date(2026, 1, 31), currency="GBP"))
                db.session.commit()
                numbers.append(number)
                db.session.remove()
        except Exception as error:  # reported below; a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=write_invoice) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(numbers) == [f"INV-{n:04d}" for n in range(1, 9)]
    db.session.expire_all()
    assert db.session.get(Firm, firm_id).next_invoice_number == 9
