"""The Accounting API v3.1 as REFERENCE.md sections 2, 4, 5 and 7 describe it: X-Business on every
business call and echoed back, contacts, ledger accounts, tax rates, sales invoices (draft, update,
release, void), the list envelope, and the error array with $source."""
import pytest

from standins.sage.demo import GB_BUSINESS_ID, IE_BUSINESS_ID, OTHER_BUSINESS_ID, ledger_account_id

from .conftest import GB_SALES, Api, connect, ok, only_error

GB_BANK = ledger_account_id(GB_BUSINESS_ID, "1200")
IE_SALES = ledger_account_id(IE_BUSINESS_ID, "4000")


# -- X-Business -----------------------------------------------------------------------------

def test_x_business_is_required_and_echoed(sage, tokens, api):
    r = api.get("/contacts")
    assert r.status_code == 200 and r.headers["X-Business"] == GB_BUSINESS_ID
    ie = Api(sage, tokens["access_token"], IE_BUSINESS_ID).get("/contacts")
    assert ie.status_code == 200 and ie.headers["X-Business"] == IE_BUSINESS_ID
    missing = Api(sage, tokens["access_token"], business_id=None).get("/contacts")
    assert only_error(missing, 400)["$source"] == "X-Business"


def test_another_users_business_is_refused(sage, tokens):
    error = only_error(Api(sage, tokens["access_token"], OTHER_BUSINESS_ID).get("/contacts"), 403)
    assert error["$source"] == "X-Business"


def test_without_x_business_sage_serves_the_lead_business_when_told_to_behave_so(sage):
    tokens = connect(sage, business_id=IE_BUSINESS_ID)
    ok(sage.post("/_control/x_business", json={"missing": "lead"}))
    r = Api(sage, tokens["access_token"], business_id=None).get("/contacts")
    assert r.status_code == 200 and r.headers["X-Business"] == IE_BUSINESS_ID


def test_a_misrouted_call_echoes_the_business_that_served_it(sage, tokens, api):
    ok(sage.post("/_control/misroute", json={"next": 1}))
    created = api.post("/contacts", {"contact": {"name": "Lost Ltd", "contact_type_ids": ["CUSTOMER"]}})
    assert created.status_code == 201 and created.headers["X-Business"] == IE_BUSINESS_ID
    assert api.get("/contacts").headers["X-Business"] == GB_BUSINESS_ID  # only the next call
    assert ok(api.get("/contacts"))["$total"] == 0
    assert ok(Api(sage, tokens["access_token"], IE_BUSINESS_ID).get("/contacts"))["$total"] == 1
    assert ok(sage.get("/_control/stats"))["misrouted"] == 1


def test_businesses_never_see_each_others_records(sage, tokens, api):
    contact = api.contact()
    ie = Api(sage, tokens["access_token"], IE_BUSINESS_ID)
    assert ie.get(f"/contacts/{contact['id']}").status_code == 404
    assert ok(ie.get("/contacts"))["$total"] == 0


# -- contacts -------------------------------------------------------------------------------

def test_create_and_get_a_customer_contact(api):
    contact = api.contact(main_contact_person={"name": "Ann", "email": "ann@acme.test"},
                          main_address={"address_line_1": "1 Road", "city": "Leeds", "postal_code": "LS1 1AA"},
                          tax_number="GB123456789", credit_days=14)
    assert contact["contact_types"][0]["id"] == "CUSTOMER" and contact["reference"] == "ACME001"
    assert contact["$path"] == f"/contacts/{contact['id']}" and contact["displayed_as"] == "Acme Ltd (ACME001)"
    assert contact["currency"]["id"] == "GBP" and contact["email"] == "ann@acme.test"
    got = ok(api.get(f"/contacts/{contact['id']}"))
    assert got["main_address"]["city"] == "Leeds" and got["credit_days"] == 14


@pytest.mark.parametrize("fields, source", [
    ({"name": "X"}, "contact_type_ids"),
    ({"name": "X", "contact_type_ids": ["CUSTOMER", "VENDOR"]}, "contact_type_ids"),
    ({"name": "X", "contact_type_ids": ["FRIEND"]}, "contact_type_ids"),
    ({"contact_type_ids": ["CUSTOMER"]}, "name"),
    ({"name": "X", "contact_type_ids": ["CUSTOMER"], "main_contact_person": {"email": "not-an-email"}},
     "main_contact_person.email"),
    ({"name": "X", "contact_type_ids": ["CUSTOMER"], "currency_id": "XYZ"}, "currency_id"),
])
def test_invalid_contacts_answer_422_with_the_source(api, fields, source):
    error = only_error(api.post("/contacts", {"contact": fields}))
    assert error["$dataCode"] == "RecordInvalid" and error["$source"] == source and error["$message"]


def test_an_unwrapped_body_is_refused(api):
    assert only_error(api.post("/contacts", {"name": "X", "contact_type_ids": ["CUSTOMER"]}))["$source"] == "contact"


def test_reference_is_unique_per_business(sage, tokens, api):
    api.contact(reference="REF1")
    assert only_error(api.post("/contacts", {"contact": {"name": "Other", "contact_type_ids": ["CUSTOMER"],
                                                         "reference": "ref1"}}))["$source"] == "reference"
    Api(sage, tokens["access_token"], IE_BUSINESS_ID).contact(reference="REF1")  # another business: fine


def test_search_finds_by_name_or_reference_and_lists_are_slim_unless_attributes(api):
    a = api.contact(name="Acme Ltd", reference="PM-0001")
    api.contact(name="Brown & Co", reference="PM-0002")
    found = ok(api.get("/contacts", query_string={"search": "pm-0001"}))
    assert found["$total"] == 1 and found["$items"] == [{"id": a["id"], "displayed_as": "Acme Ltd (PM-0001)",
                                                         "$path": f"/contacts/{a['id']}"}]
    assert ok(api.get("/contacts", query_string={"search": "brown"}))["$total"] == 1
    full = ok(api.get("/contacts", query_string={"search": "PM-000", "attributes": "all"}))
    assert [c["reference"] for c in full["$items"]] == ["PM-0001", "PM-0002"]
    some = ok(api.get("/contacts", query_string={"attributes": "reference"}))["$items"][0]
    assert set(some) == {"id", "displayed_as", "$path", "reference"}
    assert ok(api.get("/contacts", query_string={"contact_type_id": "VENDOR"}))["$total"] == 0


def test_update_changes_only_what_is_sent(api):
    contact = api.contact(notes="keep me", main_contact_person={"name": "Ann", "email": "ann@acme.test"})
    updated = ok(api.put(f"/contacts/{contact['id']}", {"contact": {"name": "Acme Group Ltd",
                                                                    "main_contact_person": {"telephone": "0113"}}}))
    assert updated["name"] == "Acme Group Ltd" and updated["notes"] == "keep me"
    assert updated["main_contact_person"] == {"name": "Ann", "email": "ann@acme.test", "telephone": "0113"}
    assert api.put("/contacts/nope", {"contact": {"name": "X"}}).status_code == 404


def test_delete_a_contact_without_transactions(api):
    contact = api.contact()
    assert api.delete(f"/contacts/{contact['id']}").status_code == 204
    assert only_error(api.get(f"/contacts/{contact['id']}"), 404)["$dataCode"] == "RecordNotFound"
    used = api.contact(reference="USED")
    api.invoice(used["id"])
    assert only_error(api.delete(f"/contacts/{used['id']}"))["$source"] == "base"


# -- ledger accounts and tax rates ------------------------------------------------------------

def test_ledger_accounts_visible_in_sales_are_the_income_accounts(api):
    sales = ok(api.get("/ledger_accounts", query_string={"visible_in": "sales", "attributes": "all"}))
    assert sales["$total"] == 3
    assert {a["ledger_account_group"]["id"] for a in sales["$items"]} == {"INCOME"}
    assert GB_SALES in {a["id"] for a in sales["$items"]} and GB_BANK not in {a["id"] for a in sales["$items"]}
    assert ok(api.get("/ledger_accounts"))["$total"] == 7
    assert ok(api.get(f"/ledger_accounts/{GB_SALES}"))["nominal_code"] == 4000
    assert ok(api.get("/ledger_accounts", query_string={"search": "4900"}))["$total"] == 1


def test_tax_rates_are_the_businesss_countrys(sage, tokens, api):
    gb = ok(api.get("/tax_rates", query_string={"attributes": "all"}))["$items"]
    assert {t["id"]: t["percentage"] for t in gb}["GB_STANDARD"] == "20.0"
    ie = ok(Api(sage, tokens["access_token"], IE_BUSINESS_ID).get("/tax_rates", query_string={"attributes": "all"}))
    assert {t["id"]: t["percentage"] for t in ie["$items"]} == {"IE_STANDARD": "23.0", "IE_REDUCED": "13.5",
                                                                "IE_SECOND_REDUCED": "9.0", "IE_ZERO": "0.0",
                                                                "IE_EXEMPT": "0.0"}
    assert api.get("/tax_rates/IE_STANDARD").status_code == 404  # not a GB rate


# -- sales invoices ---------------------------------------------------------------------------

def test_create_a_posted_invoice_with_sages_amounts(api):
    contact = api.contact()
    inv = api.invoice(contact["id"], reference="PM-INV-1", lines=[
        {"description": "Bookkeeping", "ledger_account_id": GB_SALES, "quantity": "3", "unit_price": "33.335",
         "tax_rate_id": "GB_STANDARD"},
        {"description": "Filing", "ledger_account_id": GB_SALES, "unit_price": 50, "tax_rate_id": "GB_ZERO"}])
    assert inv["status"]["id"] == "UNPAID" and inv["invoice_number"] == "SI-1" and inv["displayed_as"] == "SI-1"
    assert inv["contact"]["id"] == contact["id"] and inv["contact_reference"] == "ACME001"
    assert [line["net_amount"] for line in inv["invoice_lines"]] == ["100.01", "50.00"]
    assert [line["tax_amount"] for line in inv["invoice_lines"]] == ["20.00", "0.00"]
    assert (inv["net_amount"], inv["tax_amount"], inv["total_amount"], inv["outstanding_amount"]) == \
        ("150.01", "20.00", "170.01", "170.01")
    assert inv["due_date"] == "2026-12-31" and inv["currency"]["id"] == "GBP"
    assert all(line["id"] for line in inv["invoice_lines"])
    assert api.invoice(contact["id"])["invoice_number"] == "SI-2"


def test_a_draft_is_released_into_a_posted_invoice(api):
    inv = api.invoice(api.contact()["id"], status_id="DRAFT")
    assert inv["status"]["id"] == "DRAFT"
    released = ok(api.post(f"/sales_invoices/{inv['id']}/release"))
    assert released["status"]["id"] == "UNPAID"
    assert only_error(api.post(f"/sales_invoices/{inv['id']}/release"))["$source"] == "base"


@pytest.mark.parametrize("fields, source", [
    ({"contact_id": None}, "contact_id"),
    ({"contact_id": "nope"}, "contact_id"),
    ({"date": None}, "date"),
    ({"date": "01/12/2026"}, "date"),
    ({"due_date": "2026-11-01"}, "due_date"),
    ({"invoice_lines": []}, "invoice_lines"),
    ({"invoice_lines": [{"ledger_account_id": GB_SALES, "unit_price": 1}]}, "invoice_lines[0].description"),
    ({"invoice_lines": [{"description": "x", "ledger_account_id": GB_BANK, "unit_price": 1}]},
     "invoice_lines[0].ledger_account_id"),
    ({"invoice_lines": [{"description": "x", "ledger_account_id": IE_SALES, "unit_price": 1}]},
     "invoice_lines[0].ledger_account_id"),
    ({"invoice_lines": [{"description": "x", "ledger_account_id": GB_SALES}]}, "invoice_lines[0].unit_price"),
    ({"invoice_lines": [{"description": "x", "ledger_account_id": GB_SALES, "unit_price": "ten"}]},
     "invoice_lines[0].unit_price"),
    ({"invoice_lines": [{"description": "x", "ledger_account_id": GB_SALES, "unit_price": 1,
                         "tax_rate_id": "IE_STANDARD"}]}, "invoice_lines[0].tax_rate_id"),
    ({"status_id": "PAID"}, "status_id"),
])
def test_invalid_invoices_answer_422_with_the_source(api, fields, source):
    contact = api.contact()
    body = {"contact_id": contact["id"], "date": "2026-12-01",
            "invoice_lines": [{"description": "x", "ledger_account_id": GB_SALES, "unit_price": 1}], **fields}
    error = only_error(api.post("/sales_invoices", {"sales_invoice": body}))
    assert error["$source"] == source and error["$dataCode"] == "RecordInvalid"
    assert ok(api.get("/sales_invoices"))["$total"] == 0


def test_a_supplier_cannot_be_invoiced_and_a_number_is_used_once(api):
    vendor = api.contact(name="Supplies Ltd", reference="SUP", contact_type_ids=["VENDOR"])
    r = api.post("/sales_invoices", {"sales_invoice": {"contact_id": vendor["id"], "date": "2026-12-01",
                                                       "invoice_lines": [{"description": "x", "unit_price": 1,
                                                                          "ledger_account_id": GB_SALES}]}})
    assert only_error(r)["$source"] == "contact_id"
    customer = api.contact()
    api.invoice(customer["id"], invoice_number="PM-100")
    r = api.post("/sales_invoices", {"sales_invoice": {"contact_id": customer["id"], "date": "2026-12-01",
                                                       "invoice_number": "pm-100", "invoice_lines": [
                                                           {"description": "x", "unit_price": 1,
                                                            "ledger_account_id": GB_SALES}]}})
    assert only_error(r)["$source"] == "invoice_number"


def test_a_line_without_a_tax_rate_takes_the_ledger_accounts(api):
    inv = api.invoice(api.contact()["id"], lines=[{"description": "x", "ledger_account_id": GB_SALES,
                                                   "unit_price": "10"}])
    assert inv["invoice_lines"][0]["tax_rate"]["id"] == "GB_STANDARD" and inv["tax_amount"] == "2.00"


def test_update_changes_sent_fields_and_lines_by_id(api):
    inv = api.invoice(api.contact()["id"], notes="keep")
    [line] = inv["invoice_lines"]
    updated = ok(api.put(f"/sales_invoices/{inv['id']}", {"sales_invoice": {
        "reference": "PM-INV-9",
        "invoice_lines": [{"id": line["id"], "unit_price": "200.00"},
                          {"description": "Extra", "ledger_account_id": GB_SALES, "unit_price": "10",
                           "tax_rate_id": "GB_ZERO"}]}}))
    assert updated["reference"] == "PM-INV-9" and updated["notes"] == "keep"
    first, extra = updated["invoice_lines"]
    assert first["id"] == line["id"] and first["description"] == "Bookkeeping" and first["net_amount"] == "200.00"
    assert extra["description"] == "Extra" and updated["total_amount"] == "250.00"
    removed = ok(api.put(f"/sales_invoices/{inv['id']}", {"sales_invoice": {
        "invoice_lines": [{"id": extra["id"], "_destroy": True}]}}))
    assert [x["id"] for x in removed["invoice_lines"]] == [line["id"]] and removed["total_amount"] == "240.00"
    unknown = api.put(f"/sales_invoices/{inv['id']}", {"sales_invoice": {"invoice_lines": [{"id": "nope"}]}})
    assert only_error(unknown)["$source"] == "invoice_lines[0].id"


def test_paid_and_part_paid_invoices_cannot_be_edited_or_voided(sage, api):
    inv = api.invoice(api.contact()["id"])
    part = ok(sage.post(f"/_control/sales_invoices/{inv['id']}/payment", json={"amount": "20.00"}))
    assert part["status"]["id"] == "PART_PAID" and part["outstanding_amount"] == "100.00"
    assert only_error(api.put(f"/sales_invoices/{inv['id']}", {"sales_invoice": {"notes": "x"}}))["$source"] == "base"
    assert only_error(api.delete(f"/sales_invoices/{inv['id']}", query_string={"void_reason": "x"}))
    paid = ok(sage.post(f"/_control/sales_invoices/{inv['id']}/payment", json={}))
    assert paid["status"]["id"] == "PAID" and paid["outstanding_amount"] == "0.00"
    assert only_error(api.put(f"/sales_invoices/{inv['id']}", {"sales_invoice": {"notes": "x"}}))["$message"]
    assert ok(api.get(f"/sales_invoices/{inv['id']}"))["status"]["id"] == "PAID"


def test_voiding_needs_a_reason_and_a_void_invoice_is_locked(api):
    inv = api.invoice(api.contact()["id"])
    assert only_error(api.delete(f"/sales_invoices/{inv['id']}"))["$source"] == "void_reason"
    r = api.delete(f"/sales_invoices/{inv['id']}", query_string={"void_reason": "Raised in error"})
    assert r.status_code == 204
    void = ok(api.get(f"/sales_invoices/{inv['id']}"))
    assert void["status"]["id"] == "VOID" and void["void_reason"] == "Raised in error"
    assert void["outstanding_amount"] == "0.00"
    assert only_error(api.put(f"/sales_invoices/{inv['id']}", {"sales_invoice": {"notes": "x"}}))["$source"] == "base"


def test_a_draft_is_deleted_without_a_reason(api):
    inv = api.invoice(api.contact()["id"], status_id="DRAFT")
    assert api.delete(f"/sales_invoices/{inv['id']}").status_code == 204
    assert api.get(f"/sales_invoices/{inv['id']}").status_code == 404


def test_invoice_lookups_by_number_reference_contact_and_status(api):
    a, b = api.contact(), api.contact(name="Brown", reference="BROWN")
    first = api.invoice(a["id"], reference="PM-1")
    api.invoice(b["id"], reference="PM-2", status_id="DRAFT")
    assert [i["id"] for i in ok(api.get("/sales_invoices", query_string={"search": "SI-1"}))["$items"]] == \
        [first["id"]]
    assert ok(api.get("/sales_invoices", query_string={"search": "pm-2"}))["$total"] == 1
    assert ok(api.get("/sales_invoices", query_string={"contact_id": a["id"]}))["$total"] == 1
    assert ok(api.get("/sales_invoices", query_string={"status_id": "DRAFT"}))["$total"] == 1


# -- lists ----------------------------------------------------------------------------------

def test_paging_follows_next_until_it_is_null(sage, api):
    for n in range(5):
        api.contact(name=f"Client {n}", reference=f"C{n}")
    page = ok(api.get("/contacts", query_string={"items_per_page": 2, "search": "client"}))
    seen = [c["id"] for c in page["$items"]]
    assert page["$total"] == 5 and page["$page"] == 1 and page["$back"] is None and page["$itemsPerPage"] == 2
    while page["$next"]:
        assert page["$next"].startswith("/contacts?") and "search=client" in page["$next"]
        page = ok(api.get(page["$next"]))
        seen += [c["id"] for c in page["$items"]]
    assert len(seen) == len(set(seen)) == 5 and page["$page"] == 3 and page["$back"]
    assert ok(api.get("/contacts", query_string={"items_per_page": 1000}))["$itemsPerPage"] == 200


def test_updated_or_created_since(api):
    api.contact()
    assert ok(api.get("/contacts", query_string={"updated_or_created_since": "2000-01-01T00:00:00Z"}))["$total"] == 1
    assert ok(api.get("/contacts", query_string={"updated_or_created_since": "2999-01-01T00:00:00Z"}))["$total"] == 0
    assert only_error(api.get("/contacts", query_string={"updated_or_created_since": "soon"}))["$source"] == \
        "updated_or_created_since"


def test_a_readonly_token_reads_but_cannot_write(sage):
    api = Api(sage, connect(sage, scope="readonly")["access_token"])
    assert api.get("/contacts").status_code == 200
    r = api.post("/contacts", {"contact": {"name": "X", "contact_type_ids": ["CUSTOMER"]}})
    assert only_error(r, 403)["$dataCode"] == "AccessDenied"
    assert ok(api.get("/contacts"))["$total"] == 0


def test_unknown_paths_and_methods_answer_the_error_array(sage, api):
    assert only_error(api.get("/products"), 404)["$dataCode"] == "RecordNotFound"
    assert only_error(api.client.patch("/v3.1/contacts", headers=api.headers()), 405)["$dataCode"] == \
        "MethodNotAllowed"
    assert "<html" in sage.get("/nowhere").get_data(as_text=True).lower()
