"""Contacts: storage, Xero's rules for writing them, and their JSON form."""
from __future__ import annotations

import copy
import json
import re
import uuid

from . import webhooks
from .xdates import ms_date, now_ms

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Xero computes these (or the spec marks them readOnly); a value sent for them is dropped.
READ_ONLY = {"ContactID", "UpdatedDateUTC", "Website", "IsSupplier", "IsCustomer", "HasAttachments", "HasValidationErrors",
             "ValidationErrors", "StatusAttributeString", "Balances", "BatchPayments", "Discount",
             "MergedToContactID", "Attachments", "ContactGroups"}
ADDRESS_TYPES = ("POBOX", "STREET")
PHONE_TYPES = ("DEFAULT", "DDI", "FAX", "MOBILE")


def name_clash_message(name: str) -> str:
    return (f"The contact name {name} is already assigned to another contact. "
            "The contact name must be unique across all active contacts.")


def _key(name) -> str:
    return (name or "").strip().casefold()


def all_contacts(db, tenant_id: str) -> list[dict]:
    rows = db.execute("SELECT doc FROM contacts WHERE tenant_id=? ORDER BY seq", (tenant_id,))
    return [json.loads(r["doc"]) for r in rows]


def get(db, tenant_id: str, contact_id: str) -> dict | None:
    row = db.execute("SELECT doc FROM contacts WHERE tenant_id=? AND contact_id=?",
                     (tenant_id, (contact_id or "").lower())).fetchone()
    return json.loads(row["doc"]) if row else None


def get_by_id_or_number(db, tenant_id: str, ref: str) -> dict | None:
    """The spec's one template /Contacts/{ContactID}: a UUID is an id, anything else a ContactNumber."""
    if UUID_RE.match(ref):
        return get(db, tenant_id, ref)
    return next((c for c in all_contacts(db, tenant_id) if c.get("ContactNumber") == ref), None)


def save(db, tenant_id: str, doc: dict) -> None:
    stamp = now_ms()
    doc["UpdatedDateUTC"] = ms_date(stamp)
    exists = db.execute("SELECT 1 FROM contacts WHERE tenant_id=? AND contact_id=?",
                        (tenant_id, doc["ContactID"])).fetchone()
    webhooks.record(db, tenant_id, "CONTACT", doc["ContactID"], "UPDATE" if exists else "CREATE")
    if exists:
        db.execute("UPDATE contacts SET doc=?, updated=? WHERE tenant_id=? AND contact_id=?",
                   (json.dumps(doc), stamp / 1000, tenant_id, doc["ContactID"]))
    else:
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM contacts WHERE tenant_id=?", (tenant_id,)).fetchone()[0]
        db.execute("INSERT INTO contacts(tenant_id, contact_id, seq, updated, doc) VALUES (?, ?, ?, ?, ?)",
                   (tenant_id, doc["ContactID"], seq, stamp / 1000, json.dumps(doc)))


def _new_contact() -> dict:
    return {
        "ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE", "Name": "",
        "Addresses": [{"AddressType": t} for t in ADDRESS_TYPES],
        "Phones": [{"PhoneType": t} for t in PHONE_TYPES],
        "ContactGroups": [], "ContactPersons": [], "IsSupplier": False, "IsCustomer": False,
        "HasAttachments": False, "HasValidationErrors": False,
    }


def _merge_typed(existing: list, sent: list, type_key: str) -> list:
    # Xero keeps one address per AddressType and one phone per PhoneType: a sent one replaces its type.
    merged = {item.get(type_key): item for item in existing}
    for item in sent:
        merged[item.get(type_key)] = item
    return list(merged.values())


def write(db, tenant_id: str, element: dict, mode: str, path_id: str | None = None):
    """Apply one element of a PUT/POST batch. Returns (contact JSON, [error messages]).

    mode "put" always creates. mode "post" updates the contact named by ContactID
    (or path_id); without an id, an element whose Name matches an active contact
    updates that contact, as users report Xero does; otherwise it creates."""
    contacts = all_contacts(db, tenant_id)
    target_id = path_id or (element.get("ContactID") if mode == "post" else None)
    target = None
    if target_id:
        target = next((c for c in contacts if c["ContactID"] == target_id.lower()), None)
        if target is None:
            return element, [f"Contact with ContactID {target_id} could not be found."]
    elif mode == "post" and element.get("Name"):
        target = next((c for c in contacts if c["ContactStatus"] == "ACTIVE"
                       and _key(c["Name"]) == _key(element["Name"])), None)

    doc = copy.deepcopy(target) if target else _new_contact()
    for field, value in element.items():
        if field in READ_ONLY:
            continue
        if field == "Addresses":
            doc["Addresses"] = _merge_typed(doc.get("Addresses", []), value or [], "AddressType")
        elif field == "Phones":
            doc["Phones"] = _merge_typed(doc.get("Phones", []), value or [], "PhoneType")
        else:
            doc[field] = value

    errors = []
    if not (doc.get("Name") or "").strip():
        errors.append("The contact name must be specified.")
    elif doc.get("ContactStatus") == "ACTIVE" and any(
            c["ContactStatus"] == "ACTIVE" and c["ContactID"] != doc["ContactID"] and _key(c["Name"]) == _key(doc["Name"])
            for c in contacts):
        errors.append(name_clash_message(doc["Name"]))
    if errors:
        return element, errors
    save(db, tenant_id, doc)
    return doc, []


def summary(contact: dict | None) -> dict:
    """The contact as embedded in an invoice."""
    if contact is None:
        return {}
    keys = ("ContactID", "ContactNumber", "AccountNumber", "ContactStatus", "Name", "FirstName", "LastName",
            "EmailAddress", "Addresses", "Phones", "UpdatedDateUTC", "ContactGroups", "ContactPersons",
            "IsSupplier", "IsCustomer", "HasValidationErrors")
    return {k: contact[k] for k in keys if k in contact}
