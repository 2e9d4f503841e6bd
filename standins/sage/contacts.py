"""Contacts (REF 4): POST/GET/PUT/DELETE /contacts, GET /contacts?search=&contact_type_id=.

Required on create: name and contact_type_ids (one type only, REF 4). `reference` is the
contact's unique reference (REF 4), unique per business here, compared without case
(guess: Sage's case rule). No idempotency keys (REF 5): a lost create answer leaves a
contact that only a lookup by reference finds."""
from __future__ import annotations

import json

from flask import g, request

from . import errors, records, settings
from .api import bp, envelope, ledger_accounts, since, tax_rates
from .records import now_iso
from .errors import Invalid

CONTACT_TYPES = {"CUSTOMER": "Customer", "VENDOR": "Supplier"}  # REF 4: CUSTOMER; VENDOR is Sage's other type
CURRENCIES = ("GBP", "EUR", "USD")  # guess: the currencies a demo business may use
ADDRESS_FIELDS = ("address_line_1", "address_line_2", "city", "region", "postal_code", "country_id",
                  "country_group_id", "address_type_id")
PERSON_FIELDS = ("name", "email", "telephone", "mobile")
TEXT_FIELDS = {"name": 100, "reference": 50, "tax_number": 50, "notes": None, "source_guid": 100}  # lengths: guess


def contact_docs(db, business_id: str | None = None) -> list[dict]:
    return [json.loads(r["doc"]) for r in db.execute("SELECT doc FROM contacts WHERE business_id=? ORDER BY seq",
                                                     (business_id or g.business_id,))]


def one_contact(db, contact_id: str) -> dict | None:
    row = db.execute("SELECT doc FROM contacts WHERE business_id=? AND id=?", (g.business_id, contact_id)).fetchone()
    return json.loads(row["doc"]) if row else None


def _save(db, doc: dict) -> None:
    db.execute("UPDATE contacts SET doc=? WHERE id=?", (json.dumps(doc), doc["id"]))


def _sent() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("contact"), dict):
        raise Invalid("contact", 'The request body must be {"contact": {...}}.')  # guess: wording
    return body["contact"]


def displayed_as(doc: dict) -> str:
    return f"{doc['name']} ({doc['reference']})" if doc.get("reference") else doc["name"]  # guess: the format


def _nested(sent: dict, key: str, fields: tuple) -> dict | None:
    value = sent.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(key, "must be an object")
    return {f: records.text(value.get(f), f"{key}.{f}") for f in fields if f in value}


def apply(db, doc: dict, sent: dict, creating: bool) -> None:
    """Validate what was sent onto doc (raises Invalid). Fields left out keep their value (guess)."""
    for field, max_length in TEXT_FIELDS.items():
        if field in sent:
            doc[field] = records.text(sent[field], field, max_length=max_length)
    if not (doc.get("name") or "").strip():
        raise Invalid("name", "can't be blank")
    if "contact_type_ids" in sent or creating:
        types = sent.get("contact_type_ids")
        if not isinstance(types, list) or not types:
            raise Invalid("contact_type_ids", "can't be blank")  # REF 5's example $source
        if len(types) > 1:
            raise Invalid("contact_type_ids", "only one contact type is allowed")  # REF 4: one type per contact
        if types[0] not in CONTACT_TYPES:
            raise Invalid("contact_type_ids", f"{types[0]} is not a valid contact type")
        doc["contact_types"] = [records.ref("contact_types", types[0], CONTACT_TYPES[types[0]])]
    if doc.get("reference"):
        taken = [c for c in contact_docs(db) if c["id"] != doc["id"]
                 and (c.get("reference") or "").casefold() == doc["reference"].casefold()]
        if taken:
            raise Invalid("reference", "has already been taken")  # REF 4: "unique reference"; wording guess
    if "currency_id" in sent:
        if sent["currency_id"] not in CURRENCIES:
            raise Invalid("currency_id", "is not a valid currency")
        doc["currency"] = {"id": sent["currency_id"], "displayed_as": sent["currency_id"]}
    if "credit_days" in sent:
        days = sent["credit_days"]
        if days is not None and (not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 365):
            raise Invalid("credit_days", "must be a whole number from 0 to 365")  # guess: range
        doc["credit_days"] = days
    address = _nested(sent, "main_address", ADDRESS_FIELDS)
    if address is not None:
        doc["main_address"] = {**(doc.get("main_address") or {}), **address}
    person = _nested(sent, "main_contact_person", PERSON_FIELDS)
    if person is not None:
        if person.get("email") and not records.EMAIL.match(person["email"]):
            raise Invalid("main_contact_person.email", "is not a valid email address")  # $source form: guess
        doc["main_contact_person"] = {**(doc.get("main_contact_person") or {}), **person}
        doc["email"] = doc["main_contact_person"].get("email")
    if "default_sales_ledger_account_id" in sent:
        found = [a for a in ledger_accounts(db) if a["id"] == sent["default_sales_ledger_account_id"]]
        if sent["default_sales_ledger_account_id"] and not found:
            raise Invalid("default_sales_ledger_account_id", "is not a valid ledger account")
        doc["default_sales_ledger_account"] = ({k: found[0][k] for k in ("id", "displayed_as", "$path")}
                                               if found else None)
    if "default_sales_tax_rate_id" in sent:
        found = [t for t in tax_rates(db) if t["id"] == sent["default_sales_tax_rate_id"]]
        if sent["default_sales_tax_rate_id"] and not found:
            raise Invalid("default_sales_tax_rate_id", "is not a valid tax rate")
        doc["default_sales_tax_rate"] = ({k: found[0][k] for k in ("id", "displayed_as", "$path")}
                                         if found else None)
    doc["displayed_as"] = displayed_as(doc)
    doc["updated_at"] = now_iso()


@bp.get("/contacts")
def list_contacts():
    """search: name or reference, substring without case (REF 4: "search=… (name/reference)"; matching: guess);
    contact_type_id (REF 4); updated_or_created_since (REF 4). Order: name (guess)."""
    with settings.store().read() as db:
        items = contact_docs(db)
    term = (request.args.get("search") or "").casefold()
    if term:
        items = [c for c in items if term in c["name"].casefold() or term in (c.get("reference") or "").casefold()]
    wanted_type = request.args.get("contact_type_id")
    if wanted_type:
        items = [c for c in items if any(t["id"] == wanted_type.upper() for t in c["contact_types"])]
    items = sorted(since(items), key=lambda c: c["name"].casefold())
    return errors.answer(envelope(items))


@bp.get("/contacts/<contact_id>")
def get_contact(contact_id):
    with settings.store().read() as db:
        doc = one_contact(db, contact_id)
    return errors.answer(doc) if doc else errors.not_found("Contact")


@bp.post("/contacts")
def create_contact():
    sent = _sent()
    with settings.store().tx() as db:
        business = json.loads(db.execute("SELECT doc FROM businesses WHERE id=?", (g.business_id,)).fetchone()["doc"])
        contact_id, stamp = records.new_id(), now_iso()
        doc = {"id": contact_id, "displayed_as": "", "$path": f"/contacts/{contact_id}", "created_at": stamp,
               "updated_at": stamp, "contact_types": [], "name": "", "reference": None, "tax_number": None,
               "notes": None, "source_guid": None, "email": None, "currency": business["currency"],
               "credit_days": None, "main_address": None, "main_contact_person": None,
               "default_sales_ledger_account": None, "default_sales_tax_rate": None, "balance": "0.00",
               "deletable": True}
        apply(db, doc, sent, creating=True)
        db.execute("INSERT INTO contacts(id, business_id, doc) VALUES (?, ?, ?)",
                   (contact_id, g.business_id, json.dumps(doc)))
    return errors.answer(doc, 201)


@bp.put("/contacts/<contact_id>")
def update_contact(contact_id):
    sent = _sent()
    with settings.store().tx() as db:
        doc = one_contact(db, contact_id)
        if doc is None:
            return errors.not_found("Contact")
        apply(db, doc, sent, creating=False)
        _save(db, doc)
    return errors.answer(doc)


@bp.delete("/contacts/<contact_id>")
def delete_contact(contact_id):
    with settings.store().tx() as db:
        doc = one_contact(db, contact_id)
        if doc is None:
            return errors.not_found("Contact")
        used = db.execute("SELECT COUNT(*) FROM sales_invoices WHERE business_id=? AND json_extract(doc, "
                          "'$.contact.id')=?", (g.business_id, contact_id)).fetchone()[0]
        if used:
            raise Invalid("base", "A contact with transactions cannot be deleted.")  # guess: rule and wording
        db.execute("DELETE FROM contacts WHERE id=?", (contact_id,))
    return "", 204
