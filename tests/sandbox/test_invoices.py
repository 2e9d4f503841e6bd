"""Invoices: Xero's totals and rounding, status rules, numbering, line replacement, lookups."""
from datetime import datetime, timezone

import pytest

NOT_MODIFIABLE = "Invoice not of valid status for modification"


def line(amount, tax_type="OUTPUT2", **kw):
    return {"Description": "Work", "Quantity": 1, "UnitAmount": amount, "AccountCode": "200", "TaxType": tax_type, **kw}


def errors(r, i=0):
    assert r.status_code == 400, r.get_data(as_text=True)
    return [e["Message"] for e in r.get_json()["Elements"][i]["ValidationErrors"]]


@pytest.fixture
def acme(api):
    return api.contact("Acme Ltd", ContactNumber="C-1")


def test_tax_is_rounded_per_line_not_on_the_subtotal(api, acme, no_violations):
    # 19.06 + 19.06 + 19.11 at 20%: per line 3.812 + 3.812 + 3.822 -> 3.81 + 3.81 + 3.82 = 11.44,
    # whereas taxing the subtotal 57.23 gives 11.446 -> 11.45 (Xero's own example shows the same cent).
    inv = api.invoice(acme["ContactID"], [line(19.06), line(19.06), line(19.11)])
    assert [li["TaxAmount"] for li in inv["LineItems"]] == [3.81, 3.81, 3.82]
    assert (inv["SubTotal"], inv["TotalTax"], inv["Total"]) == (57.23, 11.44, 68.67)


def test_half_cents_round_up(api, acme):
    inv = api.invoice(acme["ContactID"], [line(10.10, "RROUTPUT")])  # 5% of 10.10 = 0.505
    assert inv["TotalTax"] == 0.51 and inv["Total"] == 10.61


def test_inclusive_and_notax_amounts(api, acme):
    inv = api.invoice(acme["ContactID"], [line(10.00), line(10.00)], LineAmountTypes="Inclusive")
    # 10.00 * 20 / 120 = 1.6667 -> 1.67 per line.
    assert (inv["SubTotal"], inv["TotalTax"], inv["Total"]) == (16.66, 3.34, 20.00)
    inv = api.invoice(acme["ContactID"], [line(10.00)], LineAmountTypes="NoTax")
    assert (inv["TotalTax"], inv["Total"], inv["LineItems"][0]["TaxType"]) == (0.0, 10.0, "NONE")


def test_discount_rate_and_quantity(api, acme):
    inv = api.invoice(acme["ContactID"], [line(33.33, Quantity=3, DiscountRate=10)])
    assert inv["LineItems"][0]["LineAmount"] == 89.99  # 3 * 33.33 * 0.9 = 89.991
    assert inv["TotalDiscount"] == 10.0 and inv["IsDiscounted"] is True


def test_unitdp4_keeps_four_decimals_otherwise_two(api, acme):
    r = api.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]},
                                            "LineItems": [line(1.2345, Quantity=3)]}]},
                query_string={"unitdp": 4})
    inv = r.get_json()["Invoices"][0]
    assert inv["LineItems"][0]["UnitAmount"] == 1.2345 and inv["LineItems"][0]["LineAmount"] == 3.70
    plain = api.invoice(acme["ContactID"], [line(1.2345, Quantity=3)])
    assert plain["LineItems"][0]["UnitAmount"] == 1.23 and plain["LineItems"][0]["LineAmount"] == 3.69
    fetched = api.get(f"/Invoices/{inv['InvoiceID']}").get_json()["Invoices"][0]
    assert fetched["LineItems"][0]["UnitAmount"] == 1.23
    fetched = api.get(f"/Invoices/{inv['InvoiceID']}", query_string={"unitdp": 4}).get_json()["Invoices"][0]
    assert fetched["LineItems"][0]["UnitAmount"] == 1.2345


def test_fields_are_stored_and_dates_come_back_in_xero_form(api, acme, no_violations):
    inv = api.invoice(acme["ContactID"], Date="2026-03-01", DueDate="2026-03-31", Reference="Job 7",
                      Url="https://planman.test/invoices/7", CurrencyCode="GBP", Status="DRAFT")
    ms = int(datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp() * 1000)
    assert inv["Date"] == f"/Date({ms}+0000)/" and inv["DateString"] == "2026-03-01T00:00:00"
    assert inv["DueDateString"] == "2026-03-31T00:00:00"
    assert (inv["Reference"], inv["Url"], inv["CurrencyCode"], inv["Status"]) == (
        "Job 7", "https://planman.test/invoices/7", "GBP", "DRAFT")
    assert inv["Contact"]["ContactID"] == acme["ContactID"] and inv["Contact"]["Name"] == "Acme Ltd"
    assert inv["Type"] == "ACCREC" and inv["AmountDue"] == inv["Total"] == 120.0


def test_invoice_numbers_are_auto_assigned_and_unique(api, acme):
    assert api.invoice(acme["ContactID"])["InvoiceNumber"] == "INV-0001"
    assert api.invoice(acme["ContactID"], InvoiceNumber="INV-0002")["InvoiceNumber"] == "INV-0002"
    assert api.invoice(acme["ContactID"])["InvoiceNumber"] == "INV-0003"  # skips a number already taken
    r = api.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]},
                                            "InvoiceNumber": "INV-0001", "LineItems": [line(5)]}]})
    assert errors(r) == ["Invoice # must be unique."]


def test_a_deleted_invoice_frees_its_number(api, acme):
    inv = api.invoice(acme["ContactID"], InvoiceNumber="PM-1")
    r = api.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"Status": "DELETED"}]})
    assert r.status_code == 200 and r.get_json()["Invoices"][0]["Status"] == "DELETED"
    assert api.invoice(acme["ContactID"], InvoiceNumber="PM-1")["InvoiceNumber"] == "PM-1"


def test_contact_must_exist_and_be_active(xero, api, acme):
    body = {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": "0c1d2e3f-0000-4000-8000-000000000000"},
                          "LineItems": [line(5)]}]}
    assert errors(api.put("/Invoices", body)) == ["The contact specified could not be found."]
    xero.post(f"/_control/contacts/{acme['ContactID']}/archive")
    body["Invoices"][0]["Contact"] = {"ContactID": acme["ContactID"]}
    assert errors(api.put("/Invoices", body)) == ["The contact is archived and cannot be used."]


def test_contact_may_be_named_by_contact_number(api, acme):
    r = api.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactNumber": "C-1"},
                                            "LineItems": [line(5)]}]})
    assert r.get_json()["Invoices"][0]["Contact"]["ContactID"] == acme["ContactID"]


@pytest.mark.parametrize("bad_line, message", [
    (line(5, AccountCode="999"), "Account code '999' is not a valid code for this document."),
    (line(5, AccountCode="090"), "Account code '090' is not a valid code for this document."),  # bank account
    (line(5, AccountCode="610"), "Account code '610' is not a valid code for this document."),  # receivables
    (line(5, "BOGUS"), "The TaxType code BOGUS does not exist or cannot be used with this type of transaction."),
    (line(5, "INPUT2"), "The TaxType code INPUT2 does not exist or cannot be used with this type of transaction."),
    ({**line(5), "Description": ""}, "The description field is mandatory for each line item."),
])
def test_line_rules(api, acme, bad_line, message):
    r = api.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]},
                                            "LineItems": [bad_line]}]})
    assert errors(r) == [message]


def test_revenue_accounts_and_rounding_account_are_accepted(api, acme):
    inv = api.invoice(acme["ContactID"], [line(1, AccountCode=c, TaxType="NONE") for c in ("200", "260", "270", "860")])
    assert [li["AccountCode"] for li in inv["LineItems"]] == ["200", "260", "270", "860"]


def test_tax_type_defaults_to_the_accounts(api, acme):
    inv = api.invoice(acme["ContactID"], [{"Description": "Fee", "Quantity": 1, "UnitAmount": 50, "AccountCode": "200"}])
    assert inv["LineItems"][0]["TaxType"] == "OUTPUT2" and inv["TotalTax"] == 10.0


def test_line_items_on_update_replace_the_set(api, acme, no_violations):
    inv = api.invoice(acme["ContactID"], [line(10), line(20)])
    kept = inv["LineItems"][1]
    r = api.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"LineItems": [
        {"LineItemID": kept["LineItemID"], "Description": "Work", "Quantity": 2, "UnitAmount": 20,
         "AccountCode": "200", "TaxType": "OUTPUT2"}]}]})
    updated = r.get_json()["Invoices"][0]
    assert [li["LineItemID"] for li in updated["LineItems"]] == [kept["LineItemID"]]
    assert (updated["SubTotal"], updated["TotalTax"], updated["Total"]) == (40.0, 8.0, 48.0)
    # An update without LineItems leaves them alone.
    r = api.post("/Invoices", {"Invoices": [{"InvoiceID": inv["InvoiceID"], "Reference": "R2"}]})
    again = r.get_json()["Invoices"][0]
    assert again["Reference"] == "R2" and len(again["LineItems"]) == 1 and again["Total"] == 48.0


def test_post_without_id_but_with_an_existing_number_updates_it(api, acme):
    inv = api.invoice(acme["ContactID"], InvoiceNumber="PM-9")
    r = api.post("/Invoices", {"Invoices": [{"Type": "ACCREC", "InvoiceNumber": "PM-9", "Reference": "again"}]})
    assert r.get_json()["Invoices"][0]["InvoiceID"] == inv["InvoiceID"]
    assert len(api.get("/Invoices").get_json()["Invoices"]) == 1


@pytest.mark.parametrize("status", ["AUTHORISED", "PAID", "VOIDED"])
def test_only_draft_and_submitted_invoices_can_be_modified(xero, api, acme, status):
    inv = api.invoice(acme["ContactID"])
    xero.post(f"/_control/invoices/{inv['InvoiceID']}/status", json={"status": status})
    r = api.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"Reference": "changed"}]})
    assert errors(r) == [NOT_MODIFIABLE]
    assert api.get(f"/Invoices/{inv['InvoiceID']}").get_json()["Invoices"][0]["Status"] == status


def test_submitted_can_be_edited_and_authorised_can_only_be_voided(api, acme):
    inv = api.invoice(acme["ContactID"], Status="SUBMITTED")
    r = api.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"Reference": "ok", "Status": "AUTHORISED"}]})
    assert r.status_code == 200 and r.get_json()["Invoices"][0]["Status"] == "AUTHORISED"
    assert errors(api.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"Status": "DELETED"}]})) == [NOT_MODIFIABLE]
    r = api.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"Status": "VOIDED"}]})
    assert r.status_code == 200 and r.get_json()["Invoices"][0]["Status"] == "VOIDED"


def test_create_status_must_be_draft_submitted_or_authorised(api, acme):
    r = api.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]},
                                            "Status": "PAID", "LineItems": [line(5)]}]})
    assert errors(r) == ["Invoices cannot be created with a status of PAID."]


def test_paid_by_a_bookkeeper_shows_amounts(xero, api, acme):
    inv = api.invoice(acme["ContactID"])
    paid = xero.post(f"/_control/invoices/{inv['InvoiceID']}/status", json={"status": "PAID"}).get_json()
    assert paid["Status"] == "PAID" and paid["AmountPaid"] == 120.0 and paid["AmountDue"] == 0.0


def test_invoice_lookups(api, acme, no_violations):
    bolt = api.contact("Bolt plc")
    one = api.invoice(acme["ContactID"])
    two = api.invoice(bolt["ContactID"], Status="SUBMITTED")

    def numbers(**query):
        r = api.get("/Invoices", query_string=query)
        assert r.status_code == 200, r.get_data(as_text=True)
        return [i["InvoiceNumber"] for i in r.get_json()["Invoices"]]

    assert numbers() == ["INV-0001", "INV-0002"]
    assert numbers(IDs=two["InvoiceID"]) == ["INV-0002"]
    assert numbers(InvoiceNumbers="INV-0001") == ["INV-0001"]
    assert numbers(ContactIDs=bolt["ContactID"]) == ["INV-0002"]
    assert numbers(Statuses="DRAFT,AUTHORISED") == ["INV-0001"]
    assert numbers(where='Status=="SUBMITTED"') == ["INV-0002"]
    assert numbers(where=f'Contact.ContactID==Guid("{acme["ContactID"]}")') == ["INV-0001"]
    assert numbers(where='InvoiceNumber=="INV-0002" AND Type=="ACCREC"') == ["INV-0002"]
    assert numbers(where='Status!="DRAFT"') == ["INV-0002"]
    assert api.get(f"/Invoices/{one['InvoiceID']}").get_json()["Invoices"][0]["InvoiceNumber"] == "INV-0001"
    assert api.get("/Invoices/0c1d2e3f-0000-4000-8000-000000000000").status_code == 404


def test_settings_endpoints(api, no_violations):
    org = api.get("/Organisation").get_json()["Organisations"][0]
    assert (org["Name"], org["ShortCode"], org["BaseCurrency"], org["CountryCode"]) == (
        "Demo Company (UK)", "!dmoUK", "GBP", "GB")
    accounts = {a["Code"]: a for a in api.get("/Accounts").get_json()["Accounts"]}
    assert accounts["200"]["Name"] == "Sales" and accounts["200"]["Type"] == "REVENUE"
    assert accounts["860"]["SystemAccount"] == "ROUNDING"
    revenue = api.get("/Accounts", query_string={"where": 'Type=="REVENUE"'}).get_json()["Accounts"]
    assert [a["Code"] for a in revenue] == ["200", "260", "270"]
    rates = {r["TaxType"]: r for r in api.get("/TaxRates").get_json()["TaxRates"]}
    assert rates["OUTPUT2"]["Name"] == "20% (VAT on Income)" and rates["OUTPUT2"]["EffectiveRate"] == 20.0
    assert {"OUTPUT2", "RROUTPUT", "ZERORATEDOUTPUT", "EXEMPTOUTPUT", "NONE"} <= set(rates)
    assert api.get("/BrandingThemes").get_json()["BrandingThemes"][0]["Name"] == "Standard"


def test_changing_line_amount_types_recalculates_kept_lines(api, acme):
    r = api.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]},
                                            "LineItems": [line(1.2345, Quantity=100)]}]}, query_string={"unitdp": 4})
    inv = r.get_json()["Invoices"][0]
    assert (inv["SubTotal"], inv["TotalTax"]) == (123.45, 24.69)
    r = api.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"LineAmountTypes": "Inclusive"}]})
    updated = r.get_json()["Invoices"][0]
    # The 4-dp unit price survives an update sent without unitdp, and tax is re-derived: 123.45 * 20/120.
    assert (updated["Total"], updated["TotalTax"], updated["SubTotal"]) == (123.45, 20.58, 102.87)


def test_currencies_are_the_base_one_plus_those_a_bookkeeper_enabled(xero, api, no_violations):
    from xero_sandbox.demo import UK_TENANT_ID
    assert api.get("/Currencies").get_json()["Currencies"] == [{"Code": "GBP", "Description": "British Pound"}]
    enabled = xero.post(f"/_control/organisations/{UK_TENANT_ID}/currencies", json={"currencies": ["EUR", "USD"]})
    assert [c["Code"] for c in enabled.get_json()] == ["GBP", "EUR", "USD"]
    listed = api.get("/Currencies").get_json()["Currencies"]
    assert listed == [{"Code": "GBP", "Description": "British Pound"}, {"Code": "EUR", "Description": "Euro"},
                      {"Code": "USD", "Description": "United States Dollar"}]
    assert api.get("/Currencies", query_string={"where": 'Code=="EUR"'}).get_json()["Currencies"] == [listed[1]]
    assert xero.post(f"/_control/organisations/{UK_TENANT_ID}/currencies", json={"currencies": ["euro"]}).status_code == 400


def test_an_invoice_in_a_currency_the_organisation_has_not_enabled_is_refused(xero, api, acme):
    from xero_sandbox.demo import UK_TENANT_ID
    line = {"Description": "Audit", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200", "TaxType": "OUTPUT2"}
    r = api.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]},
                                            "CurrencyCode": "EUR", "LineItems": [line]}]})
    assert r.status_code == 400
    assert r.get_json()["Elements"][0]["ValidationErrors"] == [{"Message": "Organisation is not subscribed to currency EUR"}]
    assert api.get("/Invoices").get_json()["Invoices"] == []
    # Changing a GBP draft to EUR is refused the same way.
    gbp = api.invoice(acme["ContactID"])
    assert gbp["CurrencyCode"] == "GBP"
    r = api.post(f"/Invoices/{gbp['InvoiceID']}", {"Invoices": [{"CurrencyCode": "EUR"}]})
    assert r.get_json()["Elements"][0]["ValidationErrors"][0]["Message"] == "Organisation is not subscribed to currency EUR"

    xero.post(f"/_control/organisations/{UK_TENANT_ID}/currencies", json={"currencies": ["EUR"]})
    eur = api.invoice(acme["ContactID"], CurrencyCode="EUR", CurrencyRate=1.17)
    assert (eur["CurrencyCode"], eur["CurrencyRate"], eur["Total"]) == ("EUR", 1.17, 120.0)


def test_update_keeps_lines_named_by_line_item_id_adds_new_ones_and_removes_the_rest(xero, api, acme, no_violations):
    inv = api.invoice(acme["ContactID"], [line(10, Description="Audit"), line(20, Description="Payroll"), line(30, Description="Advice")])
    audit, payroll, advice = inv["LineItems"]
    assert all(len(li["LineItemID"]) == 36 for li in inv["LineItems"])
    tracking = [{"Name": "Region", "Option": "North"}]
    marked = xero.post(f"/_control/invoices/{inv['InvoiceID']}/lines/{payroll['LineItemID']}",
                       json={"ItemCode": "PAY-1", "Tracking": tracking})
    assert marked.status_code == 200
    assert marked.get_json()["LineItems"][1]["ItemCode"] == "PAY-1"

    r = api.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"LineItems": [
        {"LineItemID": payroll["LineItemID"], "Description": "Payroll (March)", "Quantity": 2, "UnitAmount": 20,
         "AccountCode": "200", "TaxType": "OUTPUT2"},
        {"LineItemID": audit["LineItemID"], "Description": "Audit", "Quantity": 1, "UnitAmount": 10,
         "AccountCode": "200", "TaxType": "OUTPUT2"},
        {"Description": "Filing", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200", "TaxType": "OUTPUT2"},
    ]}]}, query_string={"summarizeErrors": "false"})
    assert r.status_code == 200, r.get_data(as_text=True)
    lines = r.get_json()["Invoices"][0]["LineItems"]
    assert [li["Description"] for li in lines] == ["Payroll (March)", "Audit", "Filing"]
    assert lines[0]["LineItemID"] == payroll["LineItemID"] and lines[1]["LineItemID"] == audit["LineItemID"]
    assert lines[2]["LineItemID"] not in {audit["LineItemID"], payroll["LineItemID"], advice["LineItemID"]}
    # The bookkeeper's item code and tracking stay on the line that kept its id.
    assert (lines[0]["ItemCode"], lines[0]["Tracking"], lines[0]["LineAmount"]) == ("PAY-1", tracking, 40.0)
    assert "ItemCode" not in lines[1] and lines[1]["Tracking"] == []
    stored = api.get(f"/Invoices/{inv['InvoiceID']}").get_json()["Invoices"][0]
    assert stored["LineItems"] == lines and stored["SubTotal"] == 55.0

    # Lines sent without their LineItemID are new lines: the bookkeeper's details go with the old ones.
    r = api.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"LineItems": [
        {"Description": "Payroll (March)", "Quantity": 2, "UnitAmount": 20, "AccountCode": "200", "TaxType": "OUTPUT2"}]}]})
    again = r.get_json()["Invoices"][0]["LineItems"]
    assert len(again) == 1 and again[0]["LineItemID"] != payroll["LineItemID"] and "ItemCode" not in again[0]


def test_bookkeeper_line_control_refuses_other_fields_and_unknown_lines(xero, api, acme):
    inv = api.invoice(acme["ContactID"])
    line_id = inv["LineItems"][0]["LineItemID"]
    assert xero.post(f"/_control/invoices/{inv['InvoiceID']}/lines/{line_id}", json={"UnitAmount": 1}).status_code == 400
    missing = "00000000-0000-4000-8000-000000000000"
    assert xero.post(f"/_control/invoices/{inv['InvoiceID']}/lines/{missing}", json={"ItemCode": "X"}).status_code == 404


def test_an_invoice_update_keeps_absent_fields_and_an_empty_string_clears_one(api, acme, no_violations):
    inv = api.invoice(acme["ContactID"], Reference="PO-7", DueDate="2026-03-31", Url="https://planman.test/i/1")
    r = api.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"DueDate": "2026-04-30"}]})
    kept = r.get_json()["Invoices"][0]
    assert (kept["Reference"], kept["Url"], kept["DueDateString"]) == ("PO-7", "https://planman.test/i/1",
                                                                       "2026-04-30T00:00:00")
    assert kept["LineItems"] == inv["LineItems"] and kept["Contact"]["ContactID"] == acme["ContactID"]
    r = api.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"Reference": ""}]})
    assert r.get_json()["Invoices"][0]["Reference"] == "" and r.get_json()["Invoices"][0]["Url"] == kept["Url"]
