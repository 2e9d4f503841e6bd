"""Sage's pure mapping functions on plain records: contacts, sales invoices with
Decimal money per line, and Sage's error array tied to PlanMan's fields."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from planman.integrations.errors import ValidationFailed
from planman.integrations.sage import mapping
from planman.integrations.sage import settings as sage_settings

SETTINGS = {"ledger_account_id": "acc-4000", "tax_rates": {"1": "GB_STANDARD", "2": "GB_REDUCED"},
            "no_tax_rate_id": "GB_NO_TAX"}
VAT = SimpleNamespace(id=1, name="VAT 20%", percent=Decimal("20"))
REDUCED = SimpleNamespace(id=2, name="VAT 5%", percent=Decimal("5"))


def a_client(**fields):
    values = dict(name="  Acme Ltd ", reference="PM-0A1B2C3D4E", first_name="Ann", last_name="Lee",
                  email="ap@acme.test", phone="0113 496 0000", address_line1="1 High St", address_line2="",
                  city="Leeds", region="", postcode="LS1 1AA", country="gb", tax_number="GB123456789",
                  payment_terms_days=14)
    return SimpleNamespace(**{**values, **fields})


_line_ids = iter(range(100, 10_000))


def line(quantity, price, rate=None, discount="0", description="Consulting"):
    return SimpleNamespace(id=next(_line_ids), description=description, quantity=Decimal(quantity),
                           unit_price=Decimal(price), discount_percent=Decimal(discount), tax_rate=rate,
                           tax_rate_id=rate.id if rate else None)


def an_invoice(lines, amounts_are="exclusive", **fields):
    values = dict(number="INV-7", issue_date=date(2026, 1, 5), due_date=date(2026, 2, 4), reference=" PO-1 ",
                  currency="GBP", amounts_are=amounts_are, lines=lines)
    return SimpleNamespace(**{**values, **fields})


def test_a_client_is_a_customer_contact_carrying_planmans_reference():
    payload = mapping.contact_payload(a_client())
    assert payload == {
        "name": "Acme Ltd", "contact_type_ids": ["CUSTOMER"], "reference": "PM-0A1B2C3D4E",
        "tax_number": "GB123456789", "credit_days": 14,
        "main_contact_person": {"name": "Ann Lee", "email": "ap@acme.test", "telephone": "0113 496 0000"},
        "main_address": {"address_line_1": "1 High St", "address_line_2": "", "city": "Leeds", "region": "",
                         "postal_code": "LS1 1AA", "country_id": "GB"},
    }
    assert mapping.contact_body(payload) == {"contact": payload}


def test_a_country_written_out_is_not_sent_as_a_sage_country_id():
    assert "country_id" not in mapping.contact_payload(a_client(country="United Kingdom"))["main_address"]


def test_uk_as_people_write_it_is_sent_as_isos_gb():
    assert mapping.contact_payload(a_client(country=" uk "))["main_address"]["country_id"] == "GB"
    assert mapping.client_problems(a_client(country="uk")) == []


def test_a_contact_found_in_sage_gets_only_what_planman_holds():
    payload = mapping.contact_payload(a_client(first_name="", last_name="", phone="", tax_number="",
                                               address_line1="", city="", postcode="", country=""), only_held=True)
    assert payload == {"name": "Acme Ltd", "contact_type_ids": ["CUSTOMER"], "reference": "PM-0A1B2C3D4E",
                       "credit_days": 14, "main_contact_person": {"email": "ap@acme.test"}}


def test_an_invoice_line_names_the_income_account_and_the_sage_tax_rate_with_planmans_tax():
    payload = mapping.invoice_payload(an_invoice([line("3", "33.33", VAT), line("1", "0.05", REDUCED),
                                                  line("2", "19.99")]), contact_id="c-1", settings=SETTINGS)
    assert {k: v for k, v in payload.items() if k != "invoice_lines"} == {
        "contact_id": "c-1", "invoice_number": "INV-7", "date": "2026-01-05", "due_date": "2026-02-04",
        "reference": "PO-1", "currency_id": "GBP", "status_id": "DRAFT"}
    first, second, third = payload["invoice_lines"]
    assert first == {"description": "Consulting", "ledger_account_id": "acc-4000", "quantity": "3.00",
                     "unit_price": "33.33", "tax_rate_id": "GB_STANDARD", "tax_amount": "20.00"}
    assert (second["tax_rate_id"], second["tax_amount"]) == ("GB_REDUCED", "0.00")
    assert (third["tax_rate_id"], third["tax_amount"]) == ("GB_NO_TAX", "0.00")


@pytest.mark.parametrize("invoice, field", [
    (an_invoice([line("1", "120.00", VAT)], amounts_are="inclusive"), "amounts_are"),
    (an_invoice([line("1", "120.00", VAT, discount="10")]), "lines"),
])
def test_what_sage_cannot_hold_is_refused_beside_its_field(invoice, field):
    with pytest.raises(ValidationFailed) as refused:
        mapping.invoice_payload(invoice, contact_id="c-1", settings=SETTINGS)
    assert field in refused.value.field_errors and mapping.invoice_problems(invoice)


def test_an_update_sends_sages_line_ids_and_removes_every_other_line():
    invoice = an_invoice([line("1", "10", VAT, description="Kept"), line("2", "5", VAT, description="New")])
    payload = mapping.invoice_payload(invoice, contact_id="c-1", settings=SETTINGS)
    kept, new = invoice.lines
    remote = {"id": "inv-1", "invoice_lines": [{"id": "L1"}, {"id": "L2"}]}
    update = mapping.update_payload(payload, invoice, {str(kept.id): "L1", str(new.id): "GONE"}, remote)
    assert "status_id" not in update
    assert [(i.get("id"), i.get("description"), i.get("_destroy")) for i in update["invoice_lines"]] == [
        ("L1", "Kept", None), (None, "New", None), ("L2", None, True)]
    answer = {"invoice_lines": [{"id": "L1", "description": "Kept"}, {"id": "L3", "description": "New"}]}
    assert mapping.line_ids(invoice, answer) == {str(kept.id): "L1", str(new.id): "L3"}


def test_an_invoice_of_no_tax_uses_the_no_tax_rate_on_every_line():
    payload = mapping.invoice_payload(an_invoice([line("1", "50", VAT)], amounts_are="no_tax"), contact_id="c",
                                      settings=SETTINGS)
    assert [(i["tax_rate_id"], i["tax_amount"]) for i in payload["invoice_lines"]] == [("GB_NO_TAX", "0.00")]


@pytest.mark.parametrize("settings, field, words", [
    ({**SETTINGS, "ledger_account_id": ""}, "settings", "income account"),
    ({**SETTINGS, "tax_rates": {}}, "lines", "“VAT 20%”"),
    ({**SETTINGS, "no_tax_rate_id": None}, "settings", "lines without a tax rate"),
])
def test_missing_choices_are_refused_before_any_call(settings, field, words):
    with pytest.raises(ValidationFailed) as refused:
        mapping.invoice_payload(an_invoice([line("1", "10", VAT), line("1", "10")]), contact_id="c",
                                settings=settings)
    assert field in refused.value.field_errors and words in refused.value.user_message


def test_the_error_array_is_read_and_each_source_tied_to_planmans_field():
    body = [{"$severity": "error", "$dataCode": "RecordInvalid", "$message": "Email is invalid",
             "$source": "main_contact_person.email"},
            {"$severity": "error", "$dataCode": "RecordInvalid", "$message": "Tax rate is not valid",
             "$source": "invoice_lines[1].tax_rate_id"},
            {"$severity": "error", "$dataCode": "RecordInvalid", "$message": "Invoice number already taken",
             "$source": "invoice_number"},
            {"$severity": "error", "$dataCode": "Unknown", "$message": "Something else", "$source": ""}]
    errors = mapping.error_items(body)
    assert [e["code"] for e in errors] == ["RecordInvalid"] * 3 + ["Unknown"]
    assert mapping.field_errors("client", errors[:1]) == {"email": ["Email is invalid"]}
    assert mapping.field_errors("invoice", errors[1:]) == {"lines": ["Tax rate is not valid"],
                                                          "number": ["Invoice number already taken"]}


def test_statuses_and_money_read_from_sage_shapes():
    assert mapping.invoice_status({"status": {"id": "PART_PAID", "displayed_as": "Part Paid"}}) == "PART_PAID"
    assert mapping.money("120.0") == Decimal("120.00") and mapping.money(None) is None
    assert "credit note" in mapping.locked_invoice_message("PAID")


def test_settings_suggest_the_sage_rate_of_equal_percentage_and_the_only_income_account():
    loaded = {sage_settings.LEDGER_ACCOUNTS_KEY: [{"id": "acc-4000", "code": "4000", "name": "Sales"}],
              sage_settings.TAX_RATES_KEY: sage_settings.tax_rates([
                  {"id": "GB_STANDARD", "name": "Standard", "percentage": "20.0"},
                  {"id": "GB_LOWER", "name": "Lower", "percentage": "5.0"},
                  {"id": "GB_ZERO", "name": "Zero", "percentage": "0.0"},
                  {"id": "GB_NO_TAX", "name": "No VAT", "percentage": "0.0"}])}
    chosen = sage_settings.apply_default_choices(loaded, [VAT, REDUCED, SimpleNamespace(id=3, name="Zero",
                                                                                       percent=Decimal("0"))])
    assert chosen["ledger_account_id"] == "acc-4000"
    assert chosen["tax_rates"] == {"1": "GB_STANDARD", "2": "GB_LOWER"}  # two rates at 0%: the admin picks
    assert chosen["no_tax_rate_id"] == "GB_NO_TAX"
