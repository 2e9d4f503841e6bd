"""What a bookkeeper does in Xero's own screens, for the control API and the
organisation page alike: approve, void or delete an invoice, record or remove
a payment, archive or rename a contact. Each change is saved as the API would
save it, so it carries a new UpdatedDateUTC and becomes a webhook event."""
from __future__ import annotations

from datetime import date

from . import contacts, invoices, payments

NO_CONTACT = "contact not found"
NO_INVOICE = "invoice not found"
NO_PAYMENT = "payment not found"
DEFAULT_PAYMENT_ACCOUNT = "090"  # the demo organisations' bank account


def _tenant_of(db, table: str, id_column: str, record_id: str):
    row = db.execute(f"SELECT tenant_id FROM {table} WHERE {id_column}=?", ((record_id or "").lower(),)).fetchone()
    return row["tenant_id"] if row else None


def set_status(db, invoice_id: str, status: str):
    tenant_id = _tenant_of(db, "invoices", "invoice_id", invoice_id)
    return invoices.set_status(db, tenant_id, invoice_id, status) if tenant_id else None


def archive_contact(db, contact_id: str):
    tenant_id = _tenant_of(db, "contacts", "contact_id", contact_id)
    if not tenant_id:
        return None
    doc = contacts.get(db, tenant_id, contact_id)
    doc["ContactStatus"] = "ARCHIVED"
    contacts.save(db, tenant_id, doc)
    return doc


def rename_contact(db, contact_id: str, name: str):
    """(contact, error): Xero's unique-name rule holds for a rename in its screens too."""
    tenant_id = _tenant_of(db, "contacts", "contact_id", contact_id)
    if not tenant_id:
        return None, NO_CONTACT
    doc = contacts.get(db, tenant_id, contact_id)
    taken = any(c["ContactID"] != doc["ContactID"] and c["ContactStatus"] == "ACTIVE"
                and c["Name"].strip().casefold() == name.strip().casefold()
                for c in contacts.all_contacts(db, tenant_id))
    if taken:
        return doc, contacts.name_clash_message(name)
    doc["Name"] = name
    contacts.save(db, tenant_id, doc)
    return doc, ""


def pay(db, invoice_id: str, sent: dict):
    """(payment, errors): the amount due unless an amount is given, today, into the bank account."""
    tenant_id = _tenant_of(db, "invoices", "invoice_id", invoice_id)
    if not tenant_id:
        return None, [NO_INVOICE]
    invoice = invoices.get(db, tenant_id, invoice_id)
    element = {"Invoice": {"InvoiceID": invoice["InvoiceID"]},
               "Account": {"Code": sent.get("account_code") or DEFAULT_PAYMENT_ACCOUNT},
               "Amount": sent.get("amount") if sent.get("amount") not in (None, "") else invoice["AmountDue"],
               "Date": sent.get("date") or date.today().isoformat(), "Reference": sent.get("reference") or ""}
    doc, errors = payments.create(db, tenant_id, element)
    return (doc if not errors else None), errors


def remove_payment(db, payment_id: str):
    tenant_id = _tenant_of(db, "payments", "payment_id", payment_id)
    if not tenant_id:
        return None, [NO_PAYMENT]
    doc, errors = payments.delete(db, tenant_id, payment_id, {"Status": "DELETED"})
    return (doc if not errors else None), errors
