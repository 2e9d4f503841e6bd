"""Clients, invoices and taxes under /accounting/account/{account_id}/ (REFERENCE.md sections 4, 5 and 7)."""
import pytest

from standins.core.faults import LostResponse
from standins.freshbooks.demo import UK_ACCOUNT_ID, US_ACCOUNT_ID

from .conftest import Api, only_error, result


def test_client_create_read_update_in_freshbooks_envelopes(api):
    created = result(api.post("/users/clients", {"client": {"organization": "Acme Ltd", "fname": "Ann",
                                                            "email": "ann@acme.test", "p_city": "Leeds"}}))["client"]
    assert created["organization"] == "Acme Ltd" and created["id"] == created["userid"] and created["vis_state"] == 0
    assert created["currency_code"] == "GBP" and created["accounting_systemid"] == UK_ACCOUNT_ID
    assert result(api.get(f"/users/clients/{created['id']}"))["client"]["email"] == "ann@acme.test"
    # Partial update: what is not sent keeps its value.
    updated = result(api.put(f"/users/clients/{created['id']}", {"client": {"lname": "Smith"}}))["client"]
    assert (updated["fname"], updated["lname"], updated["p_city"]) == ("Ann", "Smith", "Leeds")


def test_client_errors_use_the_errno_envelope(api):
    error = only_error(api.post("/users/clients", {"client": {"email": "not-an-email"}}))
    assert error["errno"] == 1004 and error["field"] == "email" and error["object"] == "client"
    assert only_error(api.post("/users/clients", {"client": {}}))["errno"] == 1001
    assert only_error(api.post("/users/clients", {"organization": "unwrapped"}))["errno"] == 1001
    missing = only_error(api.get("/users/clients/999999"), 404)
    assert missing["errno"] == 1012


def test_soft_delete_hides_a_client_from_lists_and_refuses_edits_until_restored(api):
    client = api.client_record(organization="Gone Ltd")
    deleted = result(api.put(f"/users/clients/{client['id']}", {"client": {"vis_state": 1}}))["client"]
    assert deleted["vis_state"] == 1
    assert result(api.get("/users/clients"))["clients"] == []
    listed = result(api.get("/users/clients", query_string={"search[vis_state]": "1"}))["clients"]
    assert [c["id"] for c in listed] == [client["id"]]
    assert result(api.get(f"/users/clients/{client['id']}"))["client"]["vis_state"] == 1  # still readable by id
    assert only_error(api.put(f"/users/clients/{client['id']}", {"client": {"fname": "X"}}))["errno"] == 1011
    assert result(api.put(f"/users/clients/{client['id']}", {"client": {"vis_state": 0}}))["client"]["vis_state"] == 0


def test_clients_are_found_by_exact_organization_and_email_and_one_email_may_have_several(api):
    first = api.client_record(organization="Shared Mail Ltd", email="office@shared.test")
    second = api.client_record(organization="Shared Mail Trading", email="office@shared.test")
    api.client_record(organization="Shared Mail Ltd Two", email="other@shared.test")
    by_email = result(api.get("/users/clients", query_string={"search[email]": "office@shared.test"}))
    assert [c["id"] for c in by_email["clients"]] == [first["id"], second["id"]] and by_email["total"] == 2
    both = result(api.get("/users/clients", query_string={"search[email]": "office@shared.test",
                                                          "search[organization]": "shared mail ltd"}))
    assert [c["id"] for c in both["clients"]] == [first["id"]]
    like = result(api.get("/users/clients", query_string={"search[organization_like]": "Ltd"}))
    assert like["total"] == 2


def test_lists_paginate_with_page_pages_per_page_total(api):
    for n in range(7):
        api.client_record(organization=f"Client {n}")
    page = result(api.get("/users/clients", query_string={"page": 2, "per_page": 3}))
    assert (page["page"], page["pages"], page["per_page"], page["total"]) == (2, 3, 3, 7)
    assert [c["organization"] for c in page["clients"]] == ["Client 3", "Client 4", "Client 5"]
    assert result(api.get("/users/clients", query_string={"per_page": 1000}))["per_page"] == 100
    assert result(api.get("/users/clients"))["per_page"] == 15


def test_invoice_arrives_as_a_draft_with_money_as_decimal_strings_and_taxes_per_line(api):
    client = api.client_record()
    invoice = api.invoice(client["id"], lines=[
        {"type": 0, "name": "Bookkeeping", "description": "November", "qty": 2,
         "unit_cost": {"amount": "100.00", "code": "GBP"}, "taxName1": "VAT", "taxAmount1": 20},
        {"type": 0, "name": "Filing", "qty": "1", "unit_cost": {"amount": "33.33", "code": "GBP"},
         "taxName1": "VAT Reduced", "taxAmount1": "5"}])
    assert invoice["status"] == 1 and invoice["v3_status"] == "draft"
    assert invoice["invoice_number"] == "0000001" and invoice["customerid"] == client["id"]
    assert invoice["amount"] == {"amount": "275.00", "code": "GBP"}  # 200 + 40 + 33.33 + 1.67 (1.6665 half up)
    assert invoice["outstanding"] == {"amount": "275.00", "code": "GBP"}
    assert [(line["amount"]["amount"], line["taxName1"], line["taxAmount1"]) for line in invoice["lines"]] == [
        ("200.00", "VAT", "20"), ("33.33", "VAT Reduced", "5")]
    assert result(api.get(f"/invoices/invoices/{invoice['id']}"))["invoice"] == invoice


def test_invoice_update_replaces_the_lines_and_mark_as_sent_changes_the_status(api):
    invoice = api.invoice(api.client_record()["id"])
    updated = result(api.put(f"/invoices/invoices/{invoice['id']}", {"invoice": {"lines": [
        {"type": 0, "name": "Payroll", "qty": 1, "unit_cost": {"amount": "50.00", "code": "GBP"}}]}}))["invoice"]
    assert [line["name"] for line in updated["lines"]] == ["Payroll"] and updated["amount"]["amount"] == "50.00"
    sent = result(api.put(f"/invoices/invoices/{invoice['id']}", {"invoice": {"action_mark_as_sent": True}}))
    assert sent["invoice"]["v3_status"] == "sent" and sent["invoice"]["lines"] == updated["lines"]


def test_invoice_validation_errors(api):
    client = api.client_record()
    line = {"type": 0, "name": "X", "qty": 1, "unit_cost": {"amount": "10.00", "code": "GBP"}}
    no_date = only_error(api.post("/invoices/invoices", {"invoice": {"customerid": client["id"], "lines": [line]}}))
    assert (no_date["errno"], no_date["field"]) == (1001, "create_date")
    unknown = only_error(api.post("/invoices/invoices", {"invoice": {"customerid": 424242, "create_date": "2026-12-01"}}))
    assert (unknown["errno"], unknown["field"]) == (1004, "customerid")
    number = only_error(api.post("/invoices/invoices", {"invoice": {
        "customerid": client["id"], "create_date": "2026-12-01",
        "lines": [{**line, "unit_cost": {"amount": 10, "code": "GBP"}}]}}))
    assert number["field"] == "unit_cost" and "decimal string" in number["message"]
    api.invoice(client["id"], invoice_number="PM-1")
    duplicate = only_error(api.post("/invoices/invoices", {"invoice": {
        "customerid": client["id"], "create_date": "2026-12-01", "invoice_number": "PM-1", "lines": [line]}}))
    assert duplicate["field"] == "invoice_number"


def test_invoices_are_found_by_invoice_number(api):
    client = api.client_record()
    api.invoice(client["id"], invoice_number="PM-7")
    wanted = api.invoice(client["id"], invoice_number="PM-8")
    found = result(api.get("/invoices/invoices", query_string={"search[invoice_number]": "PM-8"}))
    assert [i["id"] for i in found["invoices"]] == [wanted["id"]] and found["total"] == 1
    other = api.invoice(api.client_record(organization="Other Ltd")["id"])
    by_client = result(api.get("/invoices/invoices", query_string={"search[customerid]": other["customerid"]}))
    assert [i["id"] for i in by_client["invoices"]] == [other["id"]]
    by_ids = result(api.get("/invoices/invoices", query_string=[("search[invoiceids][]", wanted["id"]),
                                                                ("search[invoiceids][]", other["id"])]))
    assert [i["id"] for i in by_ids["invoices"]] == [wanted["id"], other["id"]]


def test_a_bookkeeper_marks_an_invoice_paid_through_the_control_api(fb, api):
    invoice = api.invoice(api.client_record()["id"])
    paid = fb.post(f"/_control/invoices/{invoice['id']}/status", json={"status": "paid"}).get_json()
    assert (paid["status"], paid["v3_status"], paid["payment_status"]) == (4, "paid", "paid")
    assert result(api.get(f"/invoices/invoices/{invoice['id']}"))["invoice"]["outstanding"]["amount"] == "0.00"
    assert fb.post(f"/_control/invoices/{invoice['id']}/status", json={"status": "lost"}).status_code == 400


def test_taxes_list_the_business_saved_taxes(api):
    taxes = result(api.get("/taxes/taxes"))
    assert [(t["name"], t["amount"]) for t in taxes["taxes"]] == [("VAT", "20"), ("VAT Reduced", "5")]
    us = result(Api(api.client, api.token, US_ACCOUNT_ID).get("/taxes/taxes"))["taxes"]
    assert [(t["name"], t["amount"]) for t in us] == [("Sales Tax", "8.875")]


def test_an_account_outside_the_identity_is_refused(api):
    assert only_error(Api(api.client, api.token, "noSuch").get("/users/clients"), 403)["errno"] == 1003


def test_businesses_keep_their_records_apart(api):
    api.client_record(organization="UK only")
    assert result(Api(api.client, api.token, US_ACCOUNT_ID).get("/users/clients"))["total"] == 0


def test_injected_429_and_5xx_and_the_rate_limit(fb, api):
    fb.post("/_control/faults", json={"rate_limit_next": 1, "retry_after": 7})
    limited = api.get("/users/clients")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    fb.post("/_control/faults", json={"fail_next": 1, "fail_status": 503})
    assert api.get("/users/clients").status_code == 503
    assert api.get("/users/clients").status_code == 200
    fb.post("/_control/limits", json={"per_minute": 1})
    # Minute windows are fixed: if one turned since the call above, the first
    # call here is the window's one allowed call and the second is refused.
    statuses = [api.get("/users/clients").status_code for _ in range(2)]
    assert statuses in ([429, 429], [200, 429])
    assert fb.get("/_control/stats").get_json()["rate_limited"] == 1 + statuses.count(429)


def test_a_lost_answer_still_creates_the_client_which_a_lookup_then_finds(fb, api):
    fb.post("/_control/faults", json={"drop_next_writes": 1})
    with pytest.raises(LostResponse):
        api.post("/users/clients", {"client": {"organization": "Lost Ltd", "email": "lost@x.test"}})
    found = result(api.get("/users/clients", query_string={"search[organization]": "Lost Ltd"}))["clients"]
    assert len(found) == 1 and fb.get("/_control/stats").get_json()["lost_responses"] == 1


def test_state_and_pages_show_what_arrived(fb, api):
    client = api.client_record(organization="Visible Ltd")
    invoice = api.invoice(client["id"])
    [uk] = [a for a in fb.get("/_control/state").get_json()["accounts"] if a["account_id"] == UK_ACCOUNT_ID]
    assert [c["organization"] for c in uk["clients"]] == ["Visible Ltd"] and len(uk["invoices"]) == 1
    page = fb.get(f"/accounts/{UK_ACCOUNT_ID}").get_data(as_text=True)
    assert "Visible Ltd" in page and f'id="invoice-{invoice["id"]}"' in page and "120.00 GBP" in page
    link = fb.get(f"/accounts/{UK_ACCOUNT_ID}/invoices/{invoice['id']}")
    assert link.status_code == 302 and link.headers["Location"].endswith(f"/accounts/{UK_ACCOUNT_ID}#invoice-{invoice['id']}")
    assert "Visible Ltd" not in fb.get("/").get_data(as_text=True) and UK_ACCOUNT_ID in fb.get("/").get_data(as_text=True)


def test_reset_wipes_records_and_tokens(fb, api):
    api.client_record()
    fb.post("/_control/reset")
    assert api.get("/users/clients").status_code == 401
