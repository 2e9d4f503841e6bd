"""The pure mappers: PlanMan records in, Xero payloads out. No HTTP, no database."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace as Record

import pytest

from planman.integrations.errors import ValidationFailed
from planman.integrations.xero import mapping

SETTINGS = {"sales_account_code": "200", "tax_types": {"7": "OUTPUT2"}, "no_tax_type": "NONE",
            "invoice_status": "DRAFT"}


def a_client(**overrides):
    fields = dict(name="  Acme Ltd ", reference="PM-ABC123", first_name="Ann", last_name="Lee",
                  email="ap@acme.test", phone="0113 496 0000", address_line1="1 High St", address_line2="",
                  city="Leeds", region="West Yorkshire", postcode="LS1 1AA", country="United Kingdom",
                  tax_number="GB123456789")
    fields.update(overrides)
    return Record(**fields)


def a_line(description="Consulting", quantity="2", unit_price="150.5", discount="0", tax_rate_id=7):
    return Record(description=description, quantity=Decimal(quantity), unit_price=Decimal(unit_price),
                  discount_percent=Decimal(discount), tax_rate_id=tax_rate_id,
                  tax_rate=Record(name="VAT 20%") if tax_rate_id else None)


def an_invoice(lines=None, **overrides):
    fields = dict(number="INV-0007", reference="PO 12", issue_date=date(2026, 3, 1), due_date=date(2026, 3, 31),
                  currency="GBP", amounts_are="exclusive", lines=lines if lines is not None else [a_line()])
    fields.update(overrides)
    return Record(**fields)


def test_contact_payload_carries_every_field_and_the_stable_reference():
    payload = mapping.contact_payload(a_client())
    assert payload["Name"] == "Acme Ltd"  # trimmed, as Xero compares names exactly
    assert payload["ContactNumber"] == "PM-ABC123"
    assert payload["FirstName"] == "Ann" and payload["LastName"] == "Lee"
    assert payload["EmailAddress"] == "ap@acme.test" and payload["TaxNumber"] == "GB123456789"
    assert payload["Phones"] == [{"PhoneType": "DEFAULT", "PhoneNumber": "0113 496 0000"}]
    assert payload["Addresses"] == [{"AddressType": "STREET", "AddressLine1": "1 High St", "AddressLine2": "",
                                     "City": "Leeds", "Region": "West Yorkshire", "PostalCode": "LS1 1AA",
                                     "Country": "United Kingdom"}]


def test_contact_payload_can_leave_another_systems_reference_alone():
    assert "ContactNumber" not in mapping.contact_payload(a_client(), include_contact_number=False)


def test_invoice_payload_is_a_draft_sales_invoice_with_mapped_lines():
    payload = mapping.invoice_payload(an_invoice(lines=[a_line(), a_line("Travel", "1", "20", "10", None)]),
                                      contact_id="c-1", settings=SETTINGS, url="https://pm.test/invoices/9")
    assert payload["Type"] == "ACCREC" and payload["Status"] == "DRAFT"
    assert payload["Contact"] == {"ContactID": "c-1"}
    assert (payload["InvoiceNumber"], payload["Reference"]) == ("INV-0007", "PO 12")
    assert (payload["Date"], payload["DueDate"]) == ("2026-03-01", "2026-03-31")
    assert payload["CurrencyCode"] == "GBP" and payload["LineAmountTypes"] == "Exclusive"
    assert payload["Url"] == "https://pm.test/invoices/9"
    assert payload["LineItems"] == [
        {"Description": "Consulting", "Quantity": 2, "UnitAmount": 150.5, "AccountCode": "200", "TaxType": "OUTPUT2"},
        {"Description": "Travel", "Quantity": 1, "UnitAmount": 20, "AccountCode": "200", "DiscountRate": 10,
         "TaxType": "NONE"},
    ]


@pytest.mark.parametrize("amounts_are, expected", [("inclusive", "Inclusive"), ("no_tax", "NoTax")])
def test_line_amount_types(amounts_are, expected):
    payload = mapping.invoice_payload(an_invoice(amounts_are=amounts_are), contact_id="c", settings=SETTINGS, url="u")
    assert payload["LineAmountTypes"] == expected
    assert ("TaxType" in payload["LineItems"][0]) == (amounts_are != "no_tax")


def test_status_comes_from_settings():
    settings = {**SETTINGS, "invoice_status": "AUTHORISED"}
    assert mapping.invoice_payload(an_invoice(), contact_id="c", settings=settings, url="u")["Status"] == "AUTHORISED"


def test_unmapped_tax_rate_is_refused_before_any_call():
    with pytest.raises(ValidationFailed) as refused:
        mapping.invoice_payload(an_invoice(), contact_id="c", settings={**SETTINGS, "tax_types": {}}, url="u")
    assert "VAT 20%" in refused.value.user_message and "lines" in refused.value.field_errors


def test_missing_sales_account_is_refused_before_any_call():
    with pytest.raises(ValidationFailed):
        mapping.invoice_payload(an_invoice(), contact_id="c", settings={}, url="u")


def test_fingerprint_changes_exactly_when_the_payload_does():
    first = mapping.fingerprint(mapping.contact_payload(a_client()))
    assert first == mapping.fingerprint(mapping.contact_payload(a_client()))
    assert first != mapping.fingerprint(mapping.contact_payload(a_client(email="new@acme.test")))


def test_idempotency_key_is_within_xeros_limit_and_tracks_revision_and_content():
    key = mapping.idempotency_key("invoice", 123456789, 42, "f" * 64, "create")
    assert len(key) <= 128
    assert key != mapping.idempotency_key("invoice", 123456789, 43, "f" * 64, "create")
    assert key != mapping.idempotency_key("invoice", 123456789, 42, "e" * 64, "create")


def test_where_clauses_never_carry_a_quote_xero_cannot_parse():
    # Real Xero has no working escape for " inside a where literal (REFERENCE.md section 11).
    assert not mapping.filterable('The "Best" Co') and not mapping.filterable("Back\\slash")
    with pytest.raises(ValueError):
        mapping.where_equals("Name", 'The "Best" Co')
    assert mapping.where_equals("Name", "O'Brien & Co") == 'Name=="O\'Brien & Co"'


def test_contact_names_match_without_case():
    contacts = [{"ContactID": "1", "Name": "ACME TRADING", "ContactStatus": "ARCHIVED"},
                {"ContactID": "2", "Name": "ACME TRADING ", "ContactStatus": "ACTIVE"},
                {"ContactID": "3", "Name": "Acme Trading Ltd", "ContactStatus": "ACTIVE"}]
    assert mapping.active_contact_named(contacts, "Acme Trading")["ContactID"] == "2"
    assert mapping.active_contact_named(contacts, "Acme Trading", {"2"}) is None


def test_xero_messages_are_tied_to_the_fields_they_name():
    errors = mapping.field_errors("client", [
        "The contact name Acme is already assigned to another contact. The contact name must be unique "
        "across all active contacts.", "Email address must be valid."])
    assert list(errors) == ["name", "email"]
    assert mapping.field_errors("invoice", ["Invoice # must be unique."]) == {"number": ["Invoice # must be unique."]}


@pytest.mark.parametrize("status, words", [("AUTHORISED", "approved"), ("PAID", "paid"), ("VOIDED", "voided"),
                                           ("DELETED", "send it again")])
def test_locked_messages_explain_why(status, words):
    assert words in mapping.locked_invoice_message(status)


def test_deep_links_open_the_right_organisation():
    link = mapping.deep_link("https://go.xero.com", "!dmoUK", "invoice", "abc")
    assert link == ("https://go.xero.com/organisationlogin/default.aspx?shortcode=%21dmoUK"
                    "&redirecturl=%2FAccountsReceivable%2FView.aspx%3FInvoiceID%3Dabc")


def test_lines_carry_xeros_line_ids_where_known_and_ids_are_read_back_by_line():
    lines = [Record(id=1, description="Kept", quantity=Decimal("1"), unit_price=Decimal("10"), discount_percent=0,
                    tax_rate_id=None, tax_rate=None),
             Record(id=2, description="New", quantity=Decimal("1"), unit_price=Decimal("5"), discount_percent=0,
                    tax_rate_id=None, tax_rate=None)]
    invoice = Record(lines=lines, number="INV-1", reference="", issue_date=date(2026, 1, 1),
                     due_date=date(2026, 1, 31), currency="GBP", amounts_are="exclusive")
    payload = mapping.invoice_payload(invoice, contact_id="c", settings=SETTINGS, url="u",
                                      line_item_ids={"1": "L-1", "9": "L-gone"})
    assert [item.get("LineItemID") for item in payload["LineItems"]] == ["L-1", None]
    answer = {"LineItems": [{"LineItemID": "L-1", "Description": "Kept"}, {"LineItemID": "L-2", "Description": "New"},
                            {"LineItemID": "L-3", "Description": "Rounding"}]}
    assert mapping.line_item_ids(invoice, answer) == {"1": "L-1", "2": "L-2"}
    assert mapping.line_item_ids(invoice, {"LineItems": [{"LineItemID": "L-9", "Description": "Other"}]}) == {}
