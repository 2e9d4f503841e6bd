"""Payments: money received against an approved invoice, and its removal (REFERENCE.md section 12).

Xero's rules as far as the references state them: only AUTHORISED invoices take
a payment, never more than the amount still due, into a bank account or an
account with "Enable payments to this account" ticked. A payment is removed by
setting its Status to DELETED, which puts the amount back on the invoice. The
refusal wordings are guesses (standins/README.md, "Refusals")."""
from __future__ import annotations

import json
import uuid
from decimal import Decimal, InvalidOperation

from . import invoices
from .xdates import date_fields, ms_date, now_ms, parse_date

NOT_APPROVED = "Payments can only be made against Authorised documents"  # guess
TOO_MUCH = "Payment amount exceeds the amount outstanding on this document"  # guess
BAD_ACCOUNT = "Account type is invalid for making a payment to/from"  # guess
NO_INVOICE = "Invoice could not be found"  # guess
ALREADY_DELETED = "This payment has already been deleted"  # guess


def all_payments(db, tenant_id: str) -> list[dict]:
    rows = db.execute("SELECT doc FROM payments WHERE tenant_id=? ORDER BY seq", (tenant_id,))
    return [json.loads(r["doc"]) for r in rows]


def get(db, tenant_id: str, payment_id: str) -> dict | None:
    row = db.execute("SELECT doc FROM payments WHERE tenant_id=? AND payment_id=?",
                     (tenant_id, (payment_id or "").lower())).fetchone()
    return json.loads(row["doc"]) if row else None


def save(db, tenant_id: str, doc: dict) -> None:
    stamp = now_ms()
    doc["UpdatedDateUTC"] = ms_date(stamp)
    if db.execute("SELECT 1 FROM payments WHERE tenant_id=? AND payment_id=?", (tenant_id, doc["PaymentID"])).fetchone():
        db.execute("UPDATE payments SET doc=?, updated=? WHERE tenant_id=? AND payment_id=?",
                   (json.dumps(doc), stamp / 1000, tenant_id, doc["PaymentID"]))
    else:
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM payments WHERE tenant_id=?", (tenant_id,)).fetchone()[0]
        db.execute("INSERT INTO payments(tenant_id, payment_id, seq, updated, doc) VALUES (?, ?, ?, ?, ?)",
                   (tenant_id, doc["PaymentID"], seq, stamp / 1000, json.dumps(doc)))


def _invoice(db, tenant_id: str, sent: dict) -> dict | None:
    if sent.get("InvoiceID"):
        return invoices.get(db, tenant_id, sent["InvoiceID"])
    number = (sent.get("InvoiceNumber") or "").casefold()
    return next((i for i in invoices.all_invoices(db, tenant_id) if number and i["Status"] != "DELETED"
                 and (i.get("InvoiceNumber") or "").casefold() == number), None) if number else None


def _takes_payments(account: dict | None) -> bool:
    return bool(account and account["Status"] == "ACTIVE"
                and (account["Type"] == "BANK" or account.get("EnablePaymentsToAccount")))


def create(db, tenant_id: str, element: dict):
    """One element of PUT/POST /Payments. Returns (payment doc or element, [errors])."""
    org = invoices.Org(db, tenant_id)
    invoice = _invoice(db, tenant_id, {**(element.get("Invoice") or {}),
                                       **({"InvoiceNumber": element["InvoiceNumber"]}
                                          if element.get("InvoiceNumber") else {})})
    sent_account = element.get("Account") or {}
    account = org.account(sent_account.get("Code") or element.get("Code"), sent_account.get("AccountID"))
    errors = []
    if invoice is None:
        errors.append(NO_INVOICE)
    elif invoice["Status"] != "AUTHORISED":
        errors.append(NOT_APPROVED)
    if not _takes_payments(account):
        errors.append(BAD_ACCOUNT)
    try:
        amount = invoices.q(Decimal(str(element.get("Amount"))))
    except (InvalidOperation, ValueError):
        amount = None
    if amount is None or amount <= 0:
        errors.append("Payment amount must be greater than zero.")
    elif invoice is not None and amount > invoices.dec(invoice["AmountDue"]):
        errors.append(TOO_MUCH)
    day = parse_date(element["Date"]) if element.get("Date") else parse_date(ms_date(now_ms()))
    if day is None:
        errors.append("Date is not a valid date.")
    if errors:
        return element, errors

    doc = {"PaymentID": str(uuid.uuid4()), "Date": day.isoformat(), "Amount": float(amount),
           "Reference": element.get("Reference") or "", "CurrencyRate": float(element.get("CurrencyRate") or 1),
           "Status": "AUTHORISED", "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
           "IsReconciled": False, "HasAccount": True,
           "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
           "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice.get("InvoiceNumber", ""),
                       "Type": invoice["Type"]}}
    _apply(invoice, amount)
    invoice.setdefault("Payments", []).append(
        {"PaymentID": doc["PaymentID"], "Date": doc["Date"], "Amount": doc["Amount"], "Reference": doc["Reference"]})
    invoices.save(db, tenant_id, invoice)
    save(db, tenant_id, doc)
    return doc, []


def _apply(invoice: dict, amount: Decimal) -> None:
    """Move the invoice's paid and due amounts by ``amount`` (negative to take a payment back)."""
    paid = invoices.q(invoices.dec(invoice.get("AmountPaid")) + amount)
    due = invoices.q(invoices.dec(invoice["Total"]) - paid)
    invoice["AmountPaid"], invoice["AmountDue"] = float(paid), float(due)
    if due == 0:
        invoice["Status"] = "PAID"
        invoice["FullyPaidOnDate"] = ms_date(now_ms())
    elif invoice["Status"] == "PAID":
        invoice["Status"] = "AUTHORISED"  # Xero reopens a paid invoice whose payment is removed
        invoice.pop("FullyPaidOnDate", None)


def delete(db, tenant_id: str, payment_id: str, element: dict):
    """POST /Payments/{PaymentID} with {"Status": "DELETED"}: the only change Xero allows."""
    doc = get(db, tenant_id, payment_id)
    if element.get("Status") != "DELETED":
        return element, ["A payment can only be updated to a status of DELETED."]  # guess
    if doc["Status"] == "DELETED":
        return element, [ALREADY_DELETED]
    invoice = invoices.get(db, tenant_id, doc["Invoice"]["InvoiceID"])
    _apply(invoice, -invoices.dec(doc["Amount"]))
    invoice["Payments"] = [p for p in invoice.get("Payments", []) if p["PaymentID"] != doc["PaymentID"]]
    invoices.save(db, tenant_id, invoice)
    doc["Status"] = "DELETED"
    save(db, tenant_id, doc)
    return doc, []


def render(db, tenant_id: str, doc: dict) -> dict:
    """The payment as Xero's API returns it (the invoice summarised with its contact)."""
    out = json.loads(json.dumps(doc))
    out["Date"] = date_fields(parse_date(doc["Date"]))[0]
    invoice = invoices.get(db, tenant_id, doc["Invoice"]["InvoiceID"])
    if invoice:
        rendered = invoices.render(db, tenant_id, invoice, False)
        out["Invoice"] = {k: rendered[k] for k in ("Type", "InvoiceID", "InvoiceNumber", "Contact", "Status",
                                                   "CurrencyCode", "AmountDue", "AmountPaid", "Total") if k in rendered}
    return out
