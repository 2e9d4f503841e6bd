"""Payments over HTTP: only on approved invoices, never over the amount due, into an account that
takes payments; found by reference; removed by Status DELETED; replayed by Idempotency-Key."""
import pytest

from standins.xero.accounting import LostResponse

from .conftest import SCOPE, Api, connect

PAY_SCOPE = SCOPE + " accounting.payments"


@pytest.fixture
def api(xero):
    return Api(xero, connect(xero, scope=PAY_SCOPE)["access_token"])


@pytest.fixture
def approved(api):
    contact = api.contact("Acme Ltd")
    return api.invoice(contact["ContactID"], Status="AUTHORISED")  # 100 + 20% VAT = 120.00


def pay(api, invoice, amount, account=None, headers=None, **fields):
    element = {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": account or {"Code": "855"},
               "Date": "2026-03-02", "Amount": amount, **fields}
    return api.put("/Payments", {"Payments": [element]}, headers=headers)


def errors(r):
    assert r.status_code == 400, r.get_data(as_text=True)
    return [e["Message"] for e in r.get_json()["Elements"][0]["ValidationErrors"]]


def invoice_now(api, invoice):
    return api.get(f"/Invoices/{invoice['InvoiceID']}").get_json()["Invoices"][0]


def test_payments_move_the_amount_due_until_the_invoice_is_paid(api, approved, no_violations):
    first = pay(api, approved, 50, Reference="PlanMan payment 1")
    assert first.status_code == 200, first.get_data(as_text=True)
    payment = first.get_json()["Payments"][0]
    assert (payment["Amount"], payment["Status"], payment["Reference"]) == (50.0, "AUTHORISED", "PlanMan payment 1")
    assert payment["Invoice"]["InvoiceID"] == approved["InvoiceID"] and payment["Account"]["Code"] == "855"
    inv = invoice_now(api, approved)
    assert (inv["Status"], inv["AmountPaid"], inv["AmountDue"]) == ("AUTHORISED", 50.0, 70.0)

    # By invoice number and bank account id, for the rest.
    bank = next(a for a in api.get("/Accounts").get_json()["Accounts"] if a["Code"] == "090")
    second = api.put("/Payments", {"Payments": [{"Invoice": {"InvoiceNumber": approved["InvoiceNumber"]},
                                                 "Account": {"AccountID": bank["AccountID"]},
                                                 "Date": "2026-03-03", "Amount": 70}]})
    assert second.status_code == 200, second.get_data(as_text=True)
    inv = invoice_now(api, approved)
    assert (inv["Status"], inv["AmountPaid"], inv["AmountDue"]) == ("PAID", 120.0, 0.0)
    assert inv["FullyPaidOnDate"]


def test_a_draft_or_submitted_invoice_cannot_be_paid(api):
    contact = api.contact("Acme Ltd")
    for status in ("DRAFT", "SUBMITTED"):
        invoice = api.invoice(contact["ContactID"], Status=status)
        assert errors(pay(api, invoice, 10)) == ["Payments can only be made against Authorised documents"]
        assert invoice_now(api, invoice)["AmountDue"] == 120.0
    assert api.get("/Payments").get_json()["Payments"] == []


def test_no_more_than_the_amount_due(api, approved):
    assert pay(api, approved, 100).status_code == 200
    assert errors(pay(api, approved, 20.01)) == ["Payment amount exceeds the amount outstanding on this document"]
    assert invoice_now(api, approved)["AmountDue"] == 20.0


def test_only_into_a_bank_account_or_one_that_takes_payments(api, approved):
    assert errors(pay(api, approved, 10, {"Code": "200"})) == ["Account type is invalid for making a payment to/from"]
    accounts = {a["Code"]: a for a in api.get("/Accounts").get_json()["Accounts"]}
    assert accounts["855"]["EnablePaymentsToAccount"] is True and accounts["200"]["EnablePaymentsToAccount"] is False


def test_found_by_reference_and_by_id(api, approved, no_violations):
    mine = pay(api, approved, 10, Reference="PlanMan payment 7").get_json()["Payments"][0]
    pay(api, approved, 10, Reference="PlanMan payment 8")
    found = api.get("/Payments", query_string={"where": 'Reference=="PlanMan payment 7"'}).get_json()["Payments"]
    assert [p["PaymentID"] for p in found] == [mine["PaymentID"]]
    assert api.get("/Payments", query_string={"where": 'Reference=="nothing"'}).get_json()["Payments"] == []
    one = api.get(f"/Payments/{mine['PaymentID']}").get_json()["Payments"][0]
    assert (one["Amount"], one["Reference"]) == (10.0, "PlanMan payment 7")
    assert api.get("/Payments/00000000-0000-0000-0000-000000000000").status_code == 404


def test_post_takes_one_unwrapped_payment_as_the_spec_says(api, approved, no_violations):
    r = api.post("/Payments", {"Invoice": {"InvoiceID": approved["InvoiceID"]}, "Account": {"Code": "090"},
                               "Date": "2026-03-02", "Amount": 120})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert invoice_now(api, approved)["Status"] == "PAID"


def test_deleting_a_payment_restores_the_invoice(api, approved, no_violations):
    payment = pay(api, approved, 120).get_json()["Payments"][0]
    assert invoice_now(api, approved)["Status"] == "PAID"
    r = api.post(f"/Payments/{payment['PaymentID']}", {"Status": "DELETED"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["Payments"][0]["Status"] == "DELETED"
    inv = invoice_now(api, approved)
    assert (inv["Status"], inv["AmountPaid"], inv["AmountDue"]) == ("AUTHORISED", 0.0, 120.0)
    assert errors(api.post(f"/Payments/{payment['PaymentID']}", {"Status": "DELETED"})) == \
        ["This payment has already been deleted"]
    assert invoice_now(api, approved)["AmountDue"] == 120.0


def test_a_delete_without_status_breaks_the_spec(xero, api, approved):
    payment = pay(api, approved, 10).get_json()["Payments"][0]
    r = api.post(f"/Payments/{payment['PaymentID']}", {})
    assert r.status_code == 400 and r.get_json()["Type"] == "PostDataInvalidException"
    assert xero.get("/_control/violations").get_json()
    assert invoice_now(api, approved)["AmountDue"] == 110.0


def test_a_retry_with_the_same_key_after_a_lost_answer_pays_once(xero, api, approved):
    key = {"Idempotency-Key": "planman-payment-1"}
    xero.post("/_control/faults", json={"drop_next_writes": 1})
    with pytest.raises(LostResponse):
        pay(api, approved, 40, headers=key)
    retry = pay(api, approved, 40, headers=key)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert len(api.get("/Payments").get_json()["Payments"]) == 1
    assert invoice_now(api, approved)["AmountDue"] == 80.0


def test_payments_need_a_payments_scope(xero, approved):
    plain = Api(xero, connect(xero)["access_token"])  # contacts, invoices and settings only
    assert plain.get("/Payments").status_code == 401
