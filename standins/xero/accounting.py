"""Xero's Accounting API under /api.xro/2.0: the guard every call passes, then the resources.

The guard runs in Xero's order as far as a client can observe it: bearer token
(401), tenant connection (403), scope (401), rate limits (429), injected
faults, then the official spec (400). Only then does a view run."""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from decimal import Decimal

from flask import Blueprint, Response, g, request

from ..core import faults, latency, ratelimit
from ..core.store import Store
from . import contacts, identity, invoices, payments, query, settings, specval
from .settings import cfg
from .xdates import ms_date, ms_of, now_ms, parse_since

bp = Blueprint("accounting", __name__, url_prefix="/api.xro/2.0")

MAX_IDEMPOTENCY_KEY = 128
READ_SCOPES = {
    "Contacts": {"accounting.contacts", "accounting.contacts.read"},
    "Invoices": {"accounting.transactions", "accounting.transactions.read", "accounting.invoices",
                 "accounting.invoices.read"},
    "Payments": {"accounting.transactions", "accounting.transactions.read", "accounting.payments",
                 "accounting.payments.read"},
}
WRITE_SCOPES = {"Contacts": {"accounting.contacts"},
                "Invoices": {"accounting.transactions", "accounting.invoices"},
                "Payments": {"accounting.transactions", "accounting.payments"}}
SETTINGS_SCOPES = {"accounting.settings", "accounting.settings.read"}


LostResponse = faults.LostResponse  # what the in-process test client sees instead of a dropped answer


def _json(body, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def forbidden() -> Response:
    return _json({"title": "Forbidden", "status": 403, "detail": "AuthenticationUnsuccessful",
                  "instance": str(uuid.uuid4())}, 403)


def not_found() -> Response:
    return _json({"title": "Not Found", "status": 404,
                  "detail": "The resource you're looking for cannot be found", "instance": str(uuid.uuid4())}, 404)


def _scope_ok(granted: set[str]) -> bool:
    resource = request.path[len(bp.url_prefix) + 1:].split("/")[0]
    if resource in READ_SCOPES:
        needed = WRITE_SCOPES[resource] if request.method in ("PUT", "POST") else READ_SCOPES[resource]
    else:
        needed = SETTINGS_SCOPES
    return bool(needed & granted)


def _too_many(problem: str, retry_after: int | None, headers: dict) -> Response:
    headers = {**headers, "X-Rate-Limit-Problem": problem}
    if retry_after is not None:
        headers["Retry-After"] = str(max(int(retry_after), 1))
    return _json({"title": "Too Many Requests", "status": 429,
                  "detail": f"Rate limit exceeded: {problem}"}, 429, headers)


def _rate_headers(remaining: dict) -> dict:
    return {"X-MinLimit-Remaining": remaining["minute"], "X-DayLimit-Remaining": remaining["day"],
            "X-AppMinLimit-Remaining": remaining["app_minute"]}


def _admit(db) -> tuple[Response | None, dict | None]:
    """Token, tenant, scope, rate limits and the fault plan, in one transaction.

    Returns (refusal, None) or (None, fault plan); on a missing or unconnected tenant
    (refusal None, plan None) so the caller can record the spec violation first."""
    grant, error = identity.bearer_grant(db)
    if error:
        return error, None
    tenant_id = (request.headers.get("xero-tenant-id") or "").strip().lower()
    if not (tenant_id and identity.connected(db, grant, tenant_id)):
        Store.bump(db, "forbidden")
        return None, None
    if not _scope_ok(set(grant["scope"].split())):
        return identity.unauthorized("AuthorizationUnsuccessful"), None
    g.tenant_id = tenant_id
    Store.bump(db, f"calls:{tenant_id}")
    plan = faults.plan(db, request.method in ("PUT", "POST"))
    limits = settings.limits(db)
    if plan["rate_limit"]:
        Store.bump(db, "rate_limited")
        Store.bump(db, "rate_limited:injected")
        return _too_many("minute", plan["rate_limit"], _rate_headers(ratelimit.remaining(db, tenant_id, limits))), None
    admitted = ratelimit.admit(db, tenant_id, limits)
    g.rate_headers = _rate_headers(admitted["remaining"])
    if not admitted["ok"]:
        return _too_many(admitted["problem"], admitted["retry_after"], {}), None
    g.in_flight_id = admitted["in_flight_id"]
    g.latency = latency.in_force(db, settings.LATENCY_ESTIMATE)
    if plan["fail_status"]:
        Store.bump(db, "injected_5xx")
    return None, plan


@bp.before_request
def guard():
    g.in_flight_id, g.rate_headers, g.drop, g.started = None, {}, False, time.monotonic()
    with settings.store().tx() as db:
        refusal, plan = _admit(db)
    if refusal is not None:
        return refusal
    if plan is None:
        if not request.headers.get("xero-tenant-id"):  # a spec violation too: record it, answer as Xero does
            specval.record(request, specval.violations(request))
        return forbidden()

    if plan["latency_ms"]:
        time.sleep(plan["latency_ms"] / 1000)
    if plan["fail_status"]:
        return _json({"title": "Injected failure", "status": plan["fail_status"],
                      "detail": "stand-in fault injection"}, plan["fail_status"])
    g.drop = plan["drop"]  # whatever this write's answer turns out to be, it will be lost
    refusal = specval.check(request)
    if refusal:
        return refusal
    key = request.headers.get("Idempotency-Key")
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        return _json({"ErrorNumber": 10, "Type": "ValidationException",
                      "Message": f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} characters."}, 400)
    return None


@bp.after_request
def finish(response: Response):
    response.headers.update({k: str(v) for k, v in g.get("rate_headers", {}).items()})
    if g.get("in_flight_id") and g.get("latency") and g.latency.enabled:  # Xero's time, while in flight
        latency.pause(g.latency, latency.records_in(response.get_data()))
    if g.get("drop") and response.status_code < 500:
        faults.drop_connection(settings.store())
    return response


@bp.teardown_request
def release(_exc):
    if g.get("in_flight_id"):
        with settings.store().tx() as db:
            ratelimit.release(db, g.in_flight_id)
            Store.bump(db, "busy_ms", int((time.monotonic() - g.started) * 1000))


# -- shared helpers ----------------------------------------------------------

def envelope(key: str, items: list, **extra) -> dict:
    return {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": cfg("PROVIDER_NAME"),
            "DateTimeUTC": ms_date(now_ms(), offset=False), **extra, key: items}


def _csv(name: str) -> list[str]:
    return [v.strip() for v in request.args.get(name, "").split(",") if v.strip()]


def _filtered(items: list[dict], record_type: str, updated_key: str = "UpdatedDateUTC") -> list[dict]:
    """Apply where= and If-Modified-Since; raises query.QueryError (record_type names it in messages)."""
    if request.args.get("where"):
        predicate = query.parse(request.args["where"], record_type)
        items = [i for i in items if predicate(i)]
    since = parse_since(request.headers.get("If-Modified-Since"))
    if since is not None:
        items = [i for i in items if ms_of(i.get(updated_key)) > since * 1000]
    return items


def _query_error(exc: Exception) -> Response:
    # Xero's shape for a where clause it cannot parse (Xero-Java issue 347, xeroizer issue 160).
    return _json({"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)}, 400)


def _page(items: list[dict]) -> tuple[list[dict], dict]:
    if "page" not in request.args:
        return items, {}
    page = max(int(request.args["page"]), 1)
    size = min(max(int(request.args.get("pageSize", 100)), 1), 1000)
    pagination = {"page": page, "pageSize": size, "pageCount": -(-len(items) // size), "itemCount": len(items)}
    return items[(page - 1) * size: page * size], {"pagination": pagination}


def _idempotent(handler) -> Response:
    """Run a write once per Idempotency-Key (per tenant); a replay returns the first answer."""
    key = request.headers.get("Idempotency-Key")
    fingerprint = hashlib.sha256(
        f"{request.method} {request.path}?{sorted(request.args.items(multi=True))}\n".encode()
        + request.get_data()).hexdigest()
    with settings.store().tx() as db:
        if key:
            row = db.execute("SELECT * FROM idempotency WHERE tenant_id=? AND key=?", (g.tenant_id, key)).fetchone()
            if row and row["fingerprint"] != fingerprint:
                return _json({"ErrorNumber": 10, "Type": "ValidationException",
                              "Message": "This Idempotency-Key was already used with a different request. "
                                         "Use a new key for a different request."}, 400)
            if row:
                Store.bump(db, "idempotent_replays")
                return _json(json.loads(row["body"]), row["status"], {"Idempotent-Replayed": "true"})
        status, body = handler(db)
        if key:
            db.execute("INSERT INTO idempotency(tenant_id, key, fingerprint, status, body) VALUES (?, ?, ?, ?, ?)",
                       (g.tenant_id, key, fingerprint, status, json.dumps(body)))
    return _json(body, status)


def _batch(key: str, write_one, render, elements: list | None = None) -> Response:
    """PUT/POST of a wrapped batch, with Xero's two summarizeErrors behaviours (REFERENCE.md 2)."""
    if elements is None:
        elements = (request.get_json(silent=True) or {}).get(key) or []
    summarize = request.args.get("summarizeErrors", "true").lower() != "false"
    error_flag = "HasErrors" if key == "Invoices" else "HasValidationErrors"

    def handler(db):
        results, failed = [], []
        for element in elements:
            doc, errors = write_one(db, element)
            if errors:
                out = {**element, error_flag: True, "StatusAttributeString": "ERROR",
                       "ValidationErrors": [{"Message": m} for m in errors]}
                failed.append(out)
            else:
                out = {**render(db, doc), error_flag: False, "StatusAttributeString": "OK"}
            results.append(out)
        if failed and summarize:
            # Valid elements of the batch are saved all the same; the 400 lists only the failures.
            return 400, {"ErrorNumber": 10, "Type": "ValidationException",
                         "Message": "A validation exception occurred", "Elements": failed}
        return 200, envelope(key, results)
    return _idempotent(handler)


def _unit_places() -> Decimal:
    return invoices.FOUR if request.args.get("unitdp") == "4" else invoices.TWO


# -- organisation settings -------------------------------------------------------

def _org_row(db):
    return db.execute("SELECT * FROM organisations WHERE tenant_id=?", (g.tenant_id,)).fetchone()


@bp.get("/Organisation")
def organisation():
    with settings.store().read() as db:
        doc = json.loads(_org_row(db)["doc"])
    return _json(envelope("Organisations", [doc]))


def _settings_list(column: str, key: str) -> Response:
    with settings.store().read() as db:
        items = json.loads(_org_row(db)[column])
    try:
        items = _filtered(items, key[:-1], "CreatedDateUTC" if key == "BrandingThemes" else "UpdatedDateUTC")
    except query.QueryError as exc:
        return _query_error(exc)
    return _json(envelope(key, items))


@bp.get("/Accounts")
def accounts():
    return _settings_list("accounts", "Accounts")


@bp.get("/TaxRates")
def tax_rates():
    if request.args.get("TaxType"):
        with settings.store().read() as db:
            items = [r for r in json.loads(_org_row(db)["tax_rates"]) if r["TaxType"] == request.args["TaxType"]]
        return _json(envelope("TaxRates", items))
    return _settings_list("tax_rates", "TaxRates")


@bp.get("/Currencies")
def currencies():
    with settings.store().read() as db:
        items = invoices.org_currencies(db, g.tenant_id)
    try:
        items = _filtered(items, "Currency")
    except query.QueryError as exc:
        return _query_error(exc)
    return _json(envelope("Currencies", items))


@bp.get("/BrandingThemes")
def branding_themes():
    return _settings_list("branding_themes", "BrandingThemes")


# -- contacts -------------------------------------------------------------------

@bp.get("/Contacts")
def list_contacts():
    with settings.store().read() as db:
        items = contacts.all_contacts(db, g.tenant_id)
    ids = {i.lower() for i in _csv("IDs")}
    if ids:
        items = [c for c in items if c["ContactID"] in ids]
    # Archived contacts only when asked for, by includeArchived, IDs or a where clause.
    if not (ids or request.args.get("where") or request.args.get("includeArchived", "").lower() == "true"):
        items = [c for c in items if c["ContactStatus"] != "ARCHIVED"]
    term = request.args.get("searchTerm", "").casefold()
    if term:
        fields = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
        items = [c for c in items if any(term in (c.get(f) or "").casefold() for f in fields)]
    try:
        items = _filtered(items, "Contact")
    except query.QueryError as exc:
        return _query_error(exc)
    items.sort(key=lambda c: c["Name"].casefold())
    items, extra = _page(items)
    return _json(envelope("Contacts", items, **extra))


@bp.get("/Contacts/<ref>")
def get_contact(ref):
    with settings.store().read() as db:
        contact = contacts.get_by_id_or_number(db, g.tenant_id, ref)
    return _json(envelope("Contacts", [contact])) if contact else not_found()


def _contacts_write(mode: str, path_id: str | None = None) -> Response:
    return _batch("Contacts", lambda db, el: contacts.write(db, g.tenant_id, el, mode, path_id), lambda db, doc: doc)


@bp.put("/Contacts")
def put_contacts():
    return _contacts_write("put")


@bp.post("/Contacts")
def post_contacts():
    return _contacts_write("post")


@bp.post("/Contacts/<contact_id>")
def post_contact(contact_id):
    with settings.store().read() as db:
        if contacts.get(db, g.tenant_id, contact_id) is None:
            return not_found()
    return _contacts_write("post", contact_id)


# -- invoices -------------------------------------------------------------------

@bp.get("/Invoices")
def list_invoices():
    unitdp4 = request.args.get("unitdp") == "4"
    with settings.store().read() as db:
        items = [invoices.render(db, g.tenant_id, d, unitdp4) for d in invoices.all_invoices(db, g.tenant_id)]
    filters = (("IDs", lambda i: i["InvoiceID"], str.lower), ("InvoiceNumbers", lambda i: i.get("InvoiceNumber"), str),
               ("ContactIDs", lambda i: i["Contact"].get("ContactID"), str.lower), ("Statuses", lambda i: i["Status"], str))
    for param, field, norm in filters:
        wanted = {norm(v) for v in _csv(param)}
        if wanted:
            items = [i for i in items if field(i) in wanted]
    term = request.args.get("searchTerm", "").casefold()
    if term:
        items = [i for i in items if term in (i.get("InvoiceNumber") or "").casefold()
                 or term in (i.get("Reference") or "").casefold()]
    try:
        items = _filtered(items, "Invoice")
    except query.QueryError as exc:
        return _query_error(exc)
    items, extra = _page(items)
    return _json(envelope("Invoices", items, **extra))


@bp.get("/Invoices/<invoice_id>")
def get_invoice(invoice_id):
    with settings.store().read() as db:
        doc = invoices.get(db, g.tenant_id, invoice_id)
        if doc is None:
            return not_found()
        body = envelope("Invoices", [invoices.render(db, g.tenant_id, doc, request.args.get("unitdp") == "4")])
    return _json(body)


def _invoices_write(mode: str, path_id: str | None = None) -> Response:
    places, unitdp4 = _unit_places(), request.args.get("unitdp") == "4"
    return _batch("Invoices",
                  lambda db, el: invoices.write(db, g.tenant_id, el, mode, places, path_id),
                  lambda db, doc: invoices.render(db, g.tenant_id, doc, unitdp4))


@bp.put("/Invoices")
def put_invoices():
    return _invoices_write("put")


@bp.post("/Invoices")
def post_invoices():
    return _invoices_write("post")


@bp.post("/Invoices/<invoice_id>")
def post_invoice(invoice_id):
    with settings.store().read() as db:
        if invoices.get(db, g.tenant_id, invoice_id) is None:
            return not_found()
    return _invoices_write("post", invoice_id)


# -- payments -------------------------------------------------------------------

@bp.get("/Payments")
def list_payments():
    with settings.store().read() as db:
        items = [payments.render(db, g.tenant_id, d) for d in payments.all_payments(db, g.tenant_id)]
    try:
        items = _filtered(items, "Payment")
    except query.QueryError as exc:
        return _query_error(exc)
    items, extra = _page(items)
    return _json(envelope("Payments", items, **extra))


@bp.get("/Payments/<payment_id>")
def get_payment(payment_id):
    with settings.store().read() as db:
        doc = payments.get(db, g.tenant_id, payment_id)
        if doc is None:
            return not_found()
        body = envelope("Payments", [payments.render(db, g.tenant_id, doc)])
    return _json(body)


def _payments_write(elements: list | None = None) -> Response:
    return _batch("Payments", lambda db, el: payments.create(db, g.tenant_id, el),
                  lambda db, doc: payments.render(db, g.tenant_id, doc), elements)


@bp.put("/Payments")
def put_payments():
    return _payments_write()


@bp.post("/Payments")
def post_payments():
    # The spec's createPayment takes one Payment, unwrapped; a wrapped batch works as for PUT.
    body = request.get_json(silent=True) or {}
    return _payments_write(None if "Payments" in body else [body])


@bp.post("/Payments/<payment_id>")
def delete_payment(payment_id):
    with settings.store().read() as db:
        if payments.get(db, g.tenant_id, payment_id) is None:
            return not_found()
    body = request.get_json(silent=True) or {}
    elements = body.get("Payments") if "Payments" in body else [body]
    return _batch("Payments", lambda db, el: payments.delete(db, g.tenant_id, payment_id, el),
                  lambda db, doc: payments.render(db, g.tenant_id, doc), elements)
