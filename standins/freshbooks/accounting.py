"""FreshBooks' accounting API under /accounting/account/{account_id}/: clients, invoices, taxes.

Every call passes the guard first: bearer token (401), the account among the
identity's businesses (403 errno 1003), rate limits (429), injected faults
(5xx, latency, lost answers), all from the core. FreshBooks has no idempotency
keys (REFERENCE.md section 5), so a lost POST answer leaves a record that only
a lookup (search[...]) finds."""
from __future__ import annotations

import json
from datetime import datetime

from flask import Blueprint, Response, g, request

from ..core import guard as core_guard
from ..core.store import Store
from . import auth, errors, records, settings
from .settings import cfg

bp = Blueprint("accounting", __name__, url_prefix="/accounting/account/<account_id>")

# search[...] filters each list understands (others are ignored: a guess, REFERENCE.md lists no full set).
CLIENT_SEARCH = ("email", "organization", "fname", "lname")
INVOICE_SEARCH = ("invoice_number", "customerid")


def _too_many(retry_after: int | None) -> Response:
    # FreshBooks' 429 body and Retry-After are unconfirmed (REFERENCE.md section 5): both are guesses.
    headers = {"Retry-After": str(max(int(retry_after), 1))} if retry_after else {}
    return errors.error(429, "Too many requests: slow down.", status=429, headers=headers)


@bp.url_value_preprocessor
def _account(_endpoint, values):
    g.account_id = values.pop("account_id")


@bp.before_request
def guard():
    with settings.store().tx() as db:
        grant, refusal = auth.bearer(db)
        if refusal:
            return refusal
        if db.execute("SELECT 1 FROM businesses WHERE account_id=?", (g.account_id,)).fetchone() is None:
            Store.bump(db, "forbidden")
            return errors.error(errors.ACCESS_DENIED, "The server could not verify that you are authorized to "
                                "access the URL requested.", status=403)
        call = core_guard.admit(db, g.account_id, settings.limits(db), request.method in ("POST", "PUT", "DELETE"))
    if call["refused"]:
        return _too_many(call["retry_after"])
    core_guard.pause(call)
    if call["fail_status"]:
        return errors.error(call["fail_status"], "Injected failure (stand-in fault injection).",
                            status=call["fail_status"])
    return None


bp.after_request(core_guard.finish)
bp.teardown_request(core_guard.release)


# -- helpers ---------------------------------------------------------------------

def _sent(name: str) -> dict | None:
    body = request.get_json(silent=True)
    return body.get(name) if isinstance(body, dict) and isinstance(body.get(name), dict) else None


def _missing_body(name: str):
    return errors.error(errors.REQUIRED, f"The request body must be {{\"{name}\": {{...}}}}.", field=name, obj=name)


def _search() -> dict:
    """search[field]=value and search[field][]=v1&... as {field: value or [values]}."""
    out = {}
    for key in request.args:
        if key.startswith("search[") and "]" in key:
            field = key[len("search["):key.index("]")]
            out[field] = request.args.getlist(key) if key.endswith("[]") else request.args[key]
    return out


def _page(items: list[dict], plural: str) -> dict:
    """page/pages/per_page/total, as FreshBooks lists answer (REFERENCE.md section 4)."""
    try:
        page = max(int(request.args.get("page", 1)), 1)
        per_page = min(max(int(request.args.get("per_page", cfg("PER_PAGE_DEFAULT"))), 1), cfg("PER_PAGE_MAX"))
    except ValueError:
        page, per_page = 1, cfg("PER_PAGE_DEFAULT")
    pages = max(-(-len(items) // per_page), 1)
    return {plural: items[(page - 1) * per_page: page * per_page], "page": page, "pages": pages,
            "per_page": per_page, "total": len(items)}


def _visible(items: list[dict], search: dict) -> list[dict]:
    # Lists show active records unless search[vis_state] asks for others (a guess; REFERENCE.md section 4
    # documents vis_state, not the list default).
    wanted = search.get("vis_state")
    if wanted is None:
        return [i for i in items if i["vis_state"] == 0]
    return [i for i in items if str(i["vis_state"]) == str(wanted)]


def _rows(db, table: str) -> list[dict]:
    return [json.loads(r["doc"]) for r in db.execute(f"SELECT doc FROM {table} WHERE account_id=? ORDER BY id",
                                                     (g.account_id,))]


def _one(db, table: str, record_id: int) -> dict | None:
    row = db.execute(f"SELECT doc FROM {table} WHERE account_id=? AND id=?", (g.account_id, record_id)).fetchone()
    return json.loads(row["doc"]) if row else None


def _save(db, table: str, doc: dict) -> None:
    db.execute(f"UPDATE {table} SET doc=? WHERE id=?", (json.dumps(doc), doc["id"]))


def _not_found(obj: str, record_id):
    return errors.error(errors.UNKNOWN_RESOURCE, f"{obj.capitalize()} not found.", field=f"{obj}id", obj=obj,
                        value=record_id, status=404)


def _business(db) -> dict:
    row = db.execute("SELECT * FROM businesses WHERE account_id=?", (g.account_id,)).fetchone()
    return {**json.loads(row["doc"]), "taxes": json.loads(row["taxes"]), "next": row["next_invoice_number"]}


# -- clients ----------------------------------------------------------------------

@bp.get("/users/clients")
def list_clients():
    search = _search()
    with settings.store().read() as db:
        items = _visible(_rows(db, "clients"), search)
    for field in CLIENT_SEARCH:
        if field in search:  # exact, case-insensitive (a guess for FreshBooks' matching)
            items = [c for c in items if (c.get(field) or "").casefold() == search[field].casefold()]
    for field in ("organization_like", "email_like"):
        if field in search:
            key = field[:-len("_like")]
            items = [c for c in items if search[field].casefold() in (c.get(key) or "").casefold()]
    if "userids" in search:
        wanted = {str(v) for v in search["userids"]}
        items = [c for c in items if str(c["id"]) in wanted]
    return errors.result(_page(items, "clients"))


@bp.get("/users/clients/<int:client_id>")
def get_client(client_id):
    with settings.store().read() as db:
        doc = _one(db, "clients", client_id)
    return errors.result({"client": doc}) if doc else _not_found("client", client_id)


@bp.post("/users/clients")
def create_client():
    sent = _sent("client")
    if sent is None:
        return _missing_body("client")
    try:
        changes = records.client_changes(sent, creating=True)
    except records.Invalid as invalid:
        return invalid.response
    with settings.store().tx() as db:
        business = _business(db)
        client_id = db.execute("INSERT INTO clients(account_id, doc) VALUES (?, '{}')", (g.account_id,)).lastrowid
        doc = {"id": client_id, "userid": client_id, "accounting_systemid": g.account_id, "fname": "", "lname": "",
               "organization": "", "email": "", "currency_code": business["currency_code"], "vis_state": 0,
               **{k: v for k, v in changes.items() if v is not None},
               "signup_date": records.utc_now(), "updated": records.eastern_now()}
        _save(db, "clients", doc)
    return errors.result({"client": doc})


@bp.put("/users/clients/<int:client_id>")
def update_client(client_id):
    sent = _sent("client")
    if sent is None:
        return _missing_body("client")
    try:
        changes = records.client_changes(sent, creating=False)
    except records.Invalid as invalid:
        return invalid.response
    with settings.store().tx() as db:
        doc = _one(db, "clients", client_id)
        if doc is None:
            return _not_found("client", client_id)
        if doc["vis_state"] == 1 and changes.get("vis_state", 1) == 1:  # only a restore may touch a deleted client
            return errors.error(errors.DELETED_RESOURCE, "This client has been deleted.", field="vis_state",
                                obj="client", value=client_id)
        doc.update(changes)
        doc["updated"] = records.eastern_now()
        _save(db, "clients", doc)
    return errors.result({"client": doc})


# -- invoices ---------------------------------------------------------------------

@bp.get("/invoices/invoices")
def list_invoices():
    search = _search()
    with settings.store().read() as db:
        items = _visible(_rows(db, "invoices"), search)
    for field in INVOICE_SEARCH:
        if field in search:
            items = [i for i in items if str(i.get(field) or "").casefold() == str(search[field]).casefold()]
    if "invoiceids" in search:
        wanted = {str(v) for v in search["invoiceids"]}
        items = [i for i in items if str(i["id"]) in wanted]
    return errors.result(_page(items, "invoices"))


@bp.get("/invoices/invoices/<int:invoice_id>")
def get_invoice(invoice_id):
    with settings.store().read() as db:
        doc = _one(db, "invoices", invoice_id)
    return errors.result({"invoice": doc}) if doc else _not_found("invoice", invoice_id)


def _number_taken(db, number: str, own_id: int | None) -> bool:
    return any((i.get("invoice_number") or "").casefold() == number.casefold() and i["id"] != own_id
               and i["vis_state"] != 1 for i in _rows(db, "invoices"))


def _apply_invoice(db, doc: dict, sent: dict, business: dict) -> None:
    """Validate sent fields onto doc (raises records.Invalid) and recompute the money."""
    if "customerid" in sent:
        client = _one(db, "clients", int(sent["customerid"])) if str(sent["customerid"]).isdigit() else None
        if client is None or client["vis_state"] == 1:
            raise records.Invalid(errors.INVALID_VALUE, "Client not found.", "customerid", "invoice",
                                  sent["customerid"])
        doc.update(customerid=client["id"], organization=client.get("organization", ""),
                   fname=client.get("fname", ""), lname=client.get("lname", ""))
    if "create_date" in sent:
        value = str(sent["create_date"])
        try:
            datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise records.Invalid(errors.INVALID_VALUE, "create_date must be YYYY-MM-DD.", "create_date", "invoice",
                                  value) from None
    if "invoice_number" in sent:
        number = str(sent["invoice_number"] or "")
        if number and _number_taken(db, number, doc.get("id")):
            # Wording and errno are guesses: REFERENCE.md does not say how FreshBooks refuses a duplicate number.
            raise records.Invalid(errors.INVALID_VALUE, "Invoice number is already in use.", "invoice_number",
                                  "invoice", number)
    for key in records.INVOICE_FIELDS:
        if key in sent and key not in ("customerid",):
            doc[key] = sent[key]
    if doc.get("vis_state") not in records.VIS_STATES:
        raise records.Invalid(errors.INVALID_VALUE, "vis_state must be 0, 1 or 2.", "vis_state", "invoice",
                              doc.get("vis_state"))
    doc["currency_code"] = doc.get("currency_code") or business["currency_code"]
    if "lines" in sent:
        doc["lines"] = records.line_items(sent["lines"], doc["currency_code"])
    sums = records.totals(doc.get("lines", []))
    doc["amount"] = records.money(sums["total"], doc["currency_code"])
    doc["updated"] = records.eastern_now()
    records.with_status(doc, 2 if sent.get("action_mark_as_sent") and doc["status"] == 1 else doc["status"])


@bp.post("/invoices/invoices")
def create_invoice():
    sent = _sent("invoice")
    if sent is None:
        return _missing_body("invoice")
    for required in ("customerid", "create_date"):
        if sent.get(required) in (None, ""):
            return errors.error(errors.REQUIRED, f"Field {required} is required.", field=required, obj="invoice")
    with settings.store().tx() as db:
        business = _business(db)
        doc = {"status": 1, "vis_state": 0, "lines": [], "invoice_number": "", "notes": "", "terms": "",
               "po_number": None, "due_offset_days": 0, "accounting_systemid": g.account_id,
               "created_at": records.eastern_now()}
        try:
            _apply_invoice(db, doc, {**sent, "action_mark_as_sent": False}, business)
        except records.Invalid as invalid:
            return invalid.response
        if not doc["invoice_number"]:  # auto-assigned, skipping numbers in use (format: the stand-in's choice)
            number = business["next"]
            while _number_taken(db, f"{number:07d}", None):
                number += 1
            doc["invoice_number"] = f"{number:07d}"
            db.execute("UPDATE businesses SET next_invoice_number=? WHERE account_id=?", (number + 1, g.account_id))
        invoice_id = db.execute("INSERT INTO invoices(account_id, doc) VALUES (?, '{}')", (g.account_id,)).lastrowid
        doc.update(id=invoice_id, invoiceid=invoice_id)
        _save(db, "invoices", doc)
    return errors.result({"invoice": doc})


@bp.put("/invoices/invoices/<int:invoice_id>")
def update_invoice(invoice_id):
    sent = _sent("invoice")
    if sent is None:
        return _missing_body("invoice")
    with settings.store().tx() as db:
        doc = _one(db, "invoices", invoice_id)
        if doc is None:
            return _not_found("invoice", invoice_id)
        if doc["vis_state"] == 1 and sent.get("vis_state", 1) == 1:
            return errors.error(errors.DELETED_RESOURCE, "This invoice has been deleted.", field="vis_state",
                                obj="invoice", value=invoice_id)
        try:
            _apply_invoice(db, doc, sent, _business(db))
        except records.Invalid as invalid:
            return invalid.response
        _save(db, "invoices", doc)
    return errors.result({"invoice": doc})


# -- taxes ------------------------------------------------------------------------

@bp.get("/taxes/taxes")
def list_taxes():
    with settings.store().read() as db:
        taxes = _business(db)["taxes"]
    items = [{**t, "id": t["taxid"], "accounting_systemid": g.account_id, "updated": "2025-01-01 00:00:00"}
             for t in taxes]
    return errors.result(_page(items, "taxes"))

