"""What Xero holds after an invoice push, beyond "sent": its lines kept across
updates, and its totals compared with PlanMan's.

Xero is played by `responses` as REFERENCE.md section 4 documents it: each
line has a `LineItemID`; an update that sends a line with its LineItemID
changes that line (keeping what a bookkeeper added, such as Tracking or an
ItemCode), a line without one is new, and lines left out are removed. Totals
are Xero's own: tax per line at the rate of the line's Xero TaxType. Every
accounting request is checked against the official spec."""
from __future__ import annotations

import html
import json
import re
import uuid
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import ExternalLink, TaxRate
from tests.helpers import client, make_client, make_invoice, post_form, signup, tax_rate  # noqa: F401
from tests.test_bulk import send as bulk_send
from tests.test_invoices import invoice_data
from tests.test_push_xero import API, _connect, panel_url, run_jobs, send
from tests.xero_spec import xero_api  # noqa: F401

XERO_RATES = {"OUTPUT2": Decimal("20"), "RROUTPUT": Decimal("5"), "NONE": Decimal("0")}
CENT = Decimal("0.01")


class InvoicingXero:
    """Contacts and invoices as Xero keeps them, lines and totals included."""

    def __init__(self, mock):
        self.mock = mock
        self.contacts: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        pattern = re.compile(rf"{re.escape(API)}/(Contacts|Invoices)(/[0-9a-f-]{{36}})?(\?.*)?$")
        for method in ("GET", "PUT", "POST"):
            mock.rsps.add_callback(method, pattern, callback=self._answer)

    def _answer(self, request):
        path = urlsplit(request.url).path
        resource, _, record_id = path.rsplit("/api.xro/2.0/", 1)[1].partition("/")
        body = json.loads(request.body) if request.body else {}
        if request.method == "GET":
            if resource == "Contacts":
                return self._ok({"Contacts": []})
            if record_id:
                return self._ok({"Invoices": [self.invoices[record_id]]})
            ids = re.search(r"IDs=([^&]*)", request.url)
            found = [i for i in self.invoices.values() if ids and i["InvoiceID"] in ids.group(1)]
            return self._ok({"Invoices": found})
        if resource == "Contacts":
            out = []
            for element in body["Contacts"]:
                contact = {**element, "ContactID": element.get("ContactID") or record_id or str(uuid.uuid4()),
                           "ContactStatus": "ACTIVE"}
                self.contacts[contact["ContactID"]] = contact
                out.append(contact)
            return self._ok({"Contacts": out})
        out = []
        for element in body["Invoices"]:
            invoice_id = element.get("InvoiceID") or record_id or str(uuid.uuid4())
            invoice = self.invoices.setdefault(invoice_id, {"InvoiceID": invoice_id, "LineItems": []})
            invoice.update({k: v for k, v in element.items() if k != "LineItems"})
            invoice["LineItems"] = self._lines(invoice["LineItems"], element["LineItems"])
            invoice.setdefault("Status", "DRAFT")
            self._total(invoice)
            out.append(invoice)
        return self._ok({"Invoices": out})

    @staticmethod
    def _lines(held, sent):
        by_id = {line["LineItemID"]: line for line in held}
        lines = []
        for line in sent:
            kept = dict(by_id.get(line.get("LineItemID"), {}))
            kept.update(line)
            kept.setdefault("LineItemID", str(uuid.uuid4()))
            lines.append(kept)
        return lines

    @staticmethod
    def _total(invoice):
        subtotal = tax = Decimal(0)
        for line in invoice["LineItems"]:
            amount = (Decimal(str(line["Quantity"])) * Decimal(str(line["UnitAmount"]))).quantize(CENT, ROUND_HALF_UP)
            subtotal += amount
            tax += (amount * XERO_RATES[line.get("TaxType", "NONE")] / 100).quantize(CENT, ROUND_HALF_UP)
        invoice.update(SubTotal=float(subtotal), TotalTax=float(tax), Total=float(subtotal + tax))

    @staticmethod
    def _ok(data):
        return 200, {"Content-Type": "application/json"}, json.dumps(data)

    def writes(self, method, resource="Invoices"):
        return [json.loads(c.request.body)[resource] for c in self.mock.calls
                if c.request.method == method and f"/{resource}" in c.request.url]


@pytest.fixture
def xero(xero_api):
    return InvoicingXero(xero_api)


@pytest.fixture
def firm(client):
    admin = signup(client)
    return admin, _connect(admin)


@pytest.fixture
def admin_with_details(client):
    """Connected, with Xero's accounts and tax rates loaded (as the details job leaves them)."""
    from tests.test_xero_connect import connected, loaded_settings

    admin = signup(client)
    vat = tax_rate(admin, "VAT 20%")
    return admin, connected(admin, settings={**loaded_settings(), "tax_types": {str(vat.id): "OUTPUT2"}})


def invoice_link(invoice):
    db.session.expire_all()
    return db.session.scalar(sa.select(ExternalLink).where(ExternalLink.record_type == "invoice",
                                                           ExternalLink.record_id == invoice.id))


def edit_lines(client, invoice, customer, vat, **lines):
    """Save the invoice through its edit form with ``lines`` (the form's line fields)."""
    data = invoice_data(customer, vat, number=invoice.number, suggested_number="", **{
        f"lines-1-{field}": None for field in ("description", "quantity", "unit_price", "discount_percent",
                                               "tax_rate_id")}, **lines)
    response = post_form(client, f"/invoices/{invoice.id}/edit", data, form_url=f"/invoices/{invoice.id}/edit")
    assert response.status_code == 302, response.get_data(as_text=True)


# --- lines keep their identity -----------------------------------------------------

def sent_and_then_edited(app, client, admin, xero):
    """An invoice of two lines sent to Xero, where a bookkeeper then tagged the
    first line; in PlanMan the first line is then changed, the second removed
    and a third added."""
    customer = make_client(admin, name="Acme Ltd")
    vat = tax_rate(admin, "VAT 20%")
    invoice = make_invoice(admin, customer, lines=((1, "100.00", vat), (2, "5.00", None)))
    first, second = (line.id for line in invoice.lines)
    send(client, "invoice", invoice.id)
    run_jobs(app)
    held = next(iter(xero.invoices.values()))
    first_xero_id, second_xero_id = (line["LineItemID"] for line in held["LineItems"])
    assert invoice_link(invoice).line_ids == {str(first): first_xero_id, str(second): second_xero_id}
    held["LineItems"][0].update(ItemCode="BOOK", Tracking=[{"Name": "Region", "Option": "North"}])

    edit_lines(client, invoice, customer, vat, **{
        "lines-0-line_id": str(first), "lines-0-description": "Bookkeeping, March", "lines-0-quantity": "2",
        "lines-0-unit_price": "100", "lines-2-line_id": "", "lines-2-description": "Postage",
        "lines-2-quantity": "1", "lines-2-unit_price": "3", "lines-2-tax_rate_id": ""})
    return invoice, first, first_xero_id, second_xero_id


def test_an_update_sends_xeros_line_ids_so_xero_keeps_its_lines(app, client, firm, xero):
    admin, _ = firm
    invoice, first, first_xero_id, second_xero_id = sent_and_then_edited(app, client, admin, xero)

    send(client, "invoice", invoice.id)
    run_jobs(app)

    update = xero.writes("POST")[-1][0]["LineItems"]
    assert [line.get("LineItemID") for line in update] == [first_xero_id, None]  # a new line goes without one
    assert second_xero_id not in json.dumps(update)  # the removed line drops out
    held = next(iter(xero.invoices.values()))["LineItems"]
    assert held[0]["LineItemID"] == first_xero_id and held[0]["Description"] == "Bookkeeping, March"
    assert held[0]["ItemCode"] == "BOOK" and held[0]["Tracking"] == [{"Name": "Region", "Option": "North"}]
    assert [line["Description"] for line in held] == ["Bookkeeping, March", "Postage"]
    third = invoice_link(invoice).line_ids
    assert third[str(first)] == first_xero_id and len(third) == 2 and held[1]["LineItemID"] in third.values()
    assert "Updated in Xero." in client.get(panel_url("invoice", invoice.id)).get_data(as_text=True)


def test_a_bulk_update_keeps_xeros_lines_too(app, client, firm, xero):
    admin, _ = firm
    invoice, first, first_xero_id, second_xero_id = sent_and_then_edited(app, client, admin, xero)

    bulk_send(client, "invoice", ids=[invoice.id])
    run_jobs(app)

    update = xero.writes("POST")[-1][0]["LineItems"]
    assert [line.get("LineItemID") for line in update] == [first_xero_id, None]
    held = next(iter(xero.invoices.values()))["LineItems"]
    assert held[0]["ItemCode"] == "BOOK" and [line["Description"] for line in held] == ["Bookkeeping, March", "Postage"]
    assert invoice_link(invoice).remote_total == Decimal("243.00")  # Xero's total, kept by bulk sends too


# --- totals that differ are said plainly -------------------------------------------------

def planman_rate(admin, name, percent):
    rate = TaxRate(firm_id=admin.firm_id, name=name, percent=Decimal(percent))
    db.session.add(rate)
    db.session.commit()
    return rate


def map_rate(connection, rate, tax_type):
    db.session.refresh(connection)
    settings = dict(connection.settings)
    settings["tax_types"] = {**settings["tax_types"], str(rate.id): tax_type}
    connection.settings = settings
    db.session.commit()


def test_settings_warn_when_a_mapped_xero_rate_bills_another_percentage(app, client, admin_with_details):
    admin, connection = admin_with_details
    old_vat = planman_rate(admin, "Old VAT", "17.5")
    map_rate(connection, old_vat, "OUTPUT2")

    page = html.unescape(client.get("/integrations/xero").get_data(as_text=True))

    assert (f'id="tax_type_{old_vat.id}-mismatch">Xero\'s “20% (VAT on Income)” is 20%, but Old VAT is 17.5% in '
            "PlanMan: Xero would bill a different total than PlanMan shows.") in page
    vat = tax_rate(admin, "VAT 20%")
    assert f'id="tax_type_{vat.id}-mismatch"' not in page  # 20% mapped to 20%: nothing to say


def test_the_panel_says_plainly_when_xeros_total_differs_from_planmans(app, client, firm, xero):
    admin, connection = firm
    old_vat = planman_rate(admin, "Old VAT", "17.5")
    map_rate(connection, old_vat, "OUTPUT2")  # a 20% Xero tax type
    customer = make_client(admin, name="Acme Ltd")
    mismatched = make_invoice(admin, customer, lines=((1, "100.00", old_vat),))
    matching = make_invoice(admin, customer, lines=((1, "100.00", tax_rate(admin, "VAT 20%")),))

    for invoice in (mismatched, matching):
        send(client, "invoice", invoice.id)
        run_jobs(app)

    page = client.get(panel_url("invoice", mismatched.id)).get_data(as_text=True)
    assert ("Xero's total for this invoice is 120.00 GBP, but PlanMan's is 117.50. Check the Xero tax rate each "
            "PlanMan tax rate is mapped to") in html.unescape(page)
    # Seen without opening the tab: the chip warns and the tab opens by itself.
    invoice_page = client.get(f"/invoices/{mismatched.id}").get_data(as_text=True)
    assert "Totals differ" in invoice_page and 'id="integration-panel-xero"' in invoice_page
    assert "total-mismatch" in invoice_page  # the panel is open in the page
    assert "Totals differ" not in client.get(f"/invoices/{matching.id}").get_data(as_text=True)
    assert invoice_link(mismatched).remote_total == Decimal("120.00")
    assert "total-mismatch" not in client.get(panel_url("invoice", matching.id)).get_data(as_text=True)


def test_editing_a_rates_percentage_marks_the_invoices_using_it_as_changed(app, client, firm, xero):
    admin, _ = firm
    vat = tax_rate(admin, "VAT 20%")
    customer = make_client(admin, name="Acme Ltd")
    using = make_invoice(admin, customer, lines=((1, "100.00", vat),))
    other = make_invoice(admin, customer, lines=((1, "100.00", None),))
    for invoice in (using, other):
        send(client, "invoice", invoice.id)
        run_jobs(app)
    assert "Changed since last sent" not in client.get(panel_url("invoice", using.id)).get_data(as_text=True)

    response = post_form(client, f"/setup/tax-rates/{vat.id}/edit", {"name": "VAT 20%", "percent": "17.5"})
    assert response.status_code == 302

    assert "Changed since last sent" in client.get(panel_url("invoice", using.id)).get_data(as_text=True)
    assert "Changed since last sent" not in client.get(panel_url("invoice", other.id)).get_data(as_text=True)
    # Renaming alone changes no total, so nothing is marked.
    send(client, "invoice", using.id)
    run_jobs(app)
    post_form(client, f"/setup/tax-rates/{vat.id}/edit", {"name": "VAT (old)", "percent": "17.5"})
    assert "Changed since last sent" not in client.get(panel_url("invoice", using.id)).get_data(as_text=True)


# --- currencies the organisation has not enabled --------------------------------------

@pytest.fixture
def gbp_only(client):
    """Connected to an organisation that has enabled GBP alone."""
    from tests.test_xero_connect import connected, loaded_settings

    admin = signup(client)
    vat = tax_rate(admin, "VAT 20%")
    return admin, connected(admin, settings={**loaded_settings(), "tax_types": {str(vat.id): "OUTPUT2"},
                                             "currencies": ["GBP"]})


def in_currency(admin, currency):
    invoice = make_invoice(admin, make_client(admin, name=f"Client in {currency}"))
    invoice.currency = currency
    db.session.commit()
    return invoice


def test_the_invoice_page_and_panel_warn_before_sending_a_currency_xero_will_refuse(app, client, gbp_only):
    admin, _ = gbp_only
    eur, gbp = in_currency(admin, "EUR"), in_currency(admin, "GBP")
    warning = ("Xero's organisation does not take invoices in EUR. Add EUR under Settings > Currencies in Xero "
               "(then click Refresh from Xero under Setup > Integrations > Xero), or change the invoice's currency.")

    page = html.unescape(client.get(f"/invoices/{eur.id}").get_data(as_text=True))
    assert warning in page
    panel = html.unescape(client.get(panel_url("invoice", eur.id)).get_data(as_text=True))
    assert warning in panel and ">Send<" in panel
    assert "does not take invoices in" not in client.get(f"/invoices/{gbp.id}").get_data(as_text=True)
    assert "record-warnings" not in client.get(panel_url("invoice", gbp.id)).get_data(as_text=True)


def test_xeros_refusal_of_a_currency_reads_plainly(app, client, firm, xero_api):
    admin, _ = firm
    invoice = in_currency(admin, "EUR")
    xero_api.add("GET", "/Contacts", json={"Contacts": []})
    xero_api.add("PUT", "/Contacts", json={"Contacts": [{"ContactID": str(uuid.uuid4()), "Name": "Client in EUR"}]})
    xero_api.add("GET", "/Invoices", json={"Invoices": []})
    refusal = "The currency EUR is not enabled for this organisation."  # Xero's exact words are not documented
    xero_api.add("PUT", "/Invoices", json={"Invoices": [{"InvoiceNumber": invoice.number, "HasErrors": True,
                                                          "ValidationErrors": [{"Message": refusal}]}]})

    send(client, "invoice", invoice.id)
    run_jobs(app)

    page = html.unescape(client.get(panel_url("invoice", invoice.id)).get_data(as_text=True))
    # The panel's headline, then Xero's reason (issue 13: one headline per state, then the details).
    assert 'id="panel-xero-headline">Sending failed.</h2>' in page
    assert ("<p>Xero refused this invoice's currency: the organisation has probably not "
            "enabled it. Add it under Settings > Currencies in Xero") in page
    assert f"Xero said: {refusal}" in page and "Currency:</strong>" in page
