"""The Xero stand-in's control API (/xero/_control/...): for tests and for people exploring failure.

Faults, limits, lifetimes, expire_tokens and violations come from the core
(core/control.py); the rest is Xero's: reset to the demo organisations, a
bookkeeper's actions, state and stats."""
from __future__ import annotations

import json
import re
import time

from flask import Blueprint, jsonify, request

from ..core import control
from ..core import webhooks as core_webhooks
from ..core.store import Store
from . import bookkeeper, contacts, demo, invoices, payments, settings, webhooks

bp = Blueprint("control", __name__, url_prefix="/_control")

INVOICE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")

_body, _bad = control.body, control.bad
control.add_common_routes(bp, limits=settings.limits, lifetimes=settings.lifetimes,
                          lifetime_keys=("access_token_seconds", "refresh_grace_seconds"),
                          latency_estimate=settings.LATENCY_ESTIMATE)


def reset_state(store: Store) -> None:
    with store.tx() as db:
        store.wipe(db)
        demo.seed(db)


@bp.post("/reset")
def reset():
    reset_state(settings.store())
    return jsonify({"ok": True, "organisations": list(demo.TENANT_IDS)})


@bp.post("/revoke")
def revoke():
    tenant_id = (_body().get("tenant_id") or "").lower()
    with settings.store().tx() as db:
        removed = db.execute("DELETE FROM connections WHERE tenant_id=?", (tenant_id,)).rowcount
    return jsonify({"removed_connections": removed})


def _find(db, table: str, id_column: str, record_id: str):
    row = db.execute(f"SELECT tenant_id FROM {table} WHERE {id_column}=?", (record_id.lower(),)).fetchone()
    return row["tenant_id"] if row else None


@bp.post("/invoices/<invoice_id>/status")
def invoice_status(invoice_id):
    status = _body().get("status")
    if status not in INVOICE_STATUSES:
        return _bad(f"status must be one of {', '.join(INVOICE_STATUSES)}")
    with settings.store().tx() as db:
        tenant_id = _find(db, "invoices", "invoice_id", invoice_id)
        doc = invoices.set_status(db, tenant_id, invoice_id, status) if tenant_id else None
    return jsonify(doc) if doc else _bad("invoice not found", 404)


@bp.post("/invoices/<invoice_id>/lines/<line_item_id>")
def invoice_line(invoice_id, line_item_id):
    body = _body()
    if not body or set(body) - set(invoices.BOOKKEEPER_LINE_FIELDS) or not isinstance(body.get("Tracking", []), list):
        return _bad(f"expected any of {', '.join(invoices.BOOKKEEPER_LINE_FIELDS)} (Tracking a list)")
    with settings.store().tx() as db:
        tenant_id = _find(db, "invoices", "invoice_id", invoice_id)
        doc = invoices.set_line_fields(db, tenant_id, invoice_id, line_item_id, body) if tenant_id else None
        rendered = invoices.render(db, tenant_id, doc, True) if doc else None
    return jsonify(rendered) if rendered else _bad("invoice or line not found", 404)


@bp.post("/organisations")
def add_organisation():
    """Another organisation to connect to: {"name": "..."} (the same name gives the same one)."""
    name = (_body().get("name") or "").strip()
    if not name or len(name) > 255:
        return _bad('expected {"name": "..."} (1 to 255 characters)')
    with settings.store().tx() as db:
        return jsonify(demo.add_organisation(db, name))


@bp.post("/organisations/<tenant_id>/currencies")
def set_currencies(tenant_id):
    """A bookkeeper adds currencies in Xero's settings: {"currencies": ["EUR", ...]} besides the base one."""
    codes = _body().get("currencies")
    if not (isinstance(codes, list) and all(isinstance(c, str) and re.fullmatch("[A-Z]{3}", c) for c in codes)):
        return _bad('expected {"currencies": ["EUR", ...]} (ISO 4217 codes)')
    with settings.store().tx() as db:
        if not db.execute("SELECT 1 FROM organisations WHERE tenant_id=?", (tenant_id.lower(),)).fetchone():
            return _bad("organisation not found", 404)
        Store.put_setting(db, f"currencies:{tenant_id.lower()}", codes)
        return jsonify(invoices.org_currencies(db, tenant_id.lower()))


@bp.post("/contacts/<contact_id>/archive")
def archive_contact(contact_id):
    with settings.store().tx() as db:
        doc = bookkeeper.archive_contact(db, contact_id)
    return jsonify(doc) if doc else _bad("contact not found", 404)


@bp.post("/contacts/<contact_id>/rename")
def rename_contact(contact_id):
    name = (_body().get("name") or "").strip()
    if not name or len(name) > 255:
        return _bad('expected {"name": "..."} (1 to 255 characters)')
    with settings.store().tx() as db:
        doc, error = bookkeeper.rename_contact(db, contact_id, name)
    return (_bad(error, 404 if doc is None and error == bookkeeper.NO_CONTACT else 400) if error
            else jsonify(doc))


@bp.post("/invoices/<invoice_id>/payments")
def pay_invoice(invoice_id):
    """A bookkeeper records a payment in Xero: {"amount"?, "date"?, "reference"?, "account_code"?} (Xero's rules apply)."""
    with settings.store().tx() as db:
        doc, errors = bookkeeper.pay(db, invoice_id, _body())
    return jsonify(doc) if not errors else _bad("; ".join(errors), 404 if errors == [bookkeeper.NO_INVOICE] else 400)


@bp.post("/payments/<payment_id>/delete")
def delete_payment(payment_id):
    with settings.store().tx() as db:
        doc, errors = bookkeeper.remove_payment(db, payment_id)
    return jsonify(doc) if not errors else _bad("; ".join(errors), 404 if errors == [bookkeeper.NO_PAYMENT] else 400)


# -- webhooks (webhooks.py; the switches, flush and deliveries are the core's) --------------

core_webhooks.add_control_routes(bp)


@bp.get("/webhooks/subscription")
def get_subscription():
    with settings.store().tx() as db:
        return jsonify(webhooks.overview(db))


@bp.post("/webhooks/subscription")
def set_subscription():
    """{"url", "key"}: set the subscription and run intent to receive."""
    sent = _body()
    url, key = sent.get("url"), sent.get("key")
    if set(sent) - {"url", "key"} or not isinstance(url, str) or not url.startswith(("http://", "https://")) \
            or not isinstance(key, str) or not key:
        return _bad('expected {"url": "http(s)://...", "key": "the webhook key"}')
    webhooks.subscribe(settings.store(), url, key)
    with settings.store().tx() as db:
        return jsonify(webhooks.overview(db))


@bp.post("/webhooks/intent")
def webhook_intent():
    """Run intent to receive again (how a disabled subscription is turned back on)."""
    webhooks.intent_to_receive(settings.store())
    with settings.store().tx() as db:
        return jsonify(webhooks.overview(db))


@bp.post("/webhooks/drop")
def webhook_drop():
    """Lose every delivery not yet made (as when Xero gives up on a subscription)."""
    with settings.store().tx() as db:
        return jsonify({"dropped": webhooks.drop_queued(db)})


@bp.get("/state")
def state():
    out = []
    with settings.store().read() as db:
        for row in db.execute("SELECT tenant_id, short_code, doc FROM organisations ORDER BY tenant_id").fetchall():
            tid = row["tenant_id"]
            links = db.execute("SELECT id, grant_id FROM connections WHERE tenant_id=? ORDER BY created", (tid,))
            out.append({"tenantId": tid, "name": json.loads(row["doc"])["Name"], "shortCode": row["short_code"],
                        "connections": [{"id": r["id"], "authEventId": r["grant_id"]} for r in links],
                        "contacts": contacts.all_contacts(db, tid),
                        "invoices": [invoices.render(db, tid, d, True) for d in invoices.all_invoices(db, tid)],
                        "payments": [payments.render(db, tid, d) for d in payments.all_payments(db, tid)]})
    return jsonify({"organisations": out})


@bp.get("/stats")
def stats():
    with settings.store().read() as db:
        counters = control.counters(db)
        in_flight = db.execute("SELECT COUNT(*) FROM in_flight WHERE started>?", (time.time() - 120,)).fetchone()[0]
    per_tenant = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("calls:")}
    return jsonify({
        "calls_per_tenant": per_tenant,
        "rate_limited": counters.get("rate_limited", 0),
        "rate_limited_by_problem": {k.split(":", 1)[1]: v for k, v in counters.items()
                                    if k.startswith("rate_limited:")},
        "refreshes": counters.get("refreshes", 0),
        "rotations": counters.get("rotations", 0),
        "grace_refreshes": counters.get("grace_refreshes", 0),
        "invalid_grants": counters.get("invalid_grants", 0),
        "lost_responses": counters.get("lost_responses", 0),
        "injected_5xx": counters.get("injected_5xx", 0),
        "idempotent_replays": counters.get("idempotent_replays", 0),
        "spec_violations": counters.get("spec_violations", 0),
        "forbidden": counters.get("forbidden", 0),
        "in_flight": in_flight,
        # Time spent answering admitted calls, latency included: what a worker waits on.
        "busy_seconds": counters.get("busy_ms", 0) / 1000,
    })
