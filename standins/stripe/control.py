"""The Stripe stand-in's control API (/stripe/_control/...): what a firm or a card holder does in
Stripe, for tests and people exploring (refunds, disputes, an account's readiness, a dashboard
disconnect, a confirming payment's outcome), plus the core's faults and webhook switches."""
from __future__ import annotations

import json
import time

from flask import Blueprint, jsonify

from ..core import control, webhooks
from ..core.store import Store
from . import connect, demo, objects, payments, settings
from .errors import ApiError

bp = Blueprint("control", __name__, url_prefix="/_control")
control.add_common_routes(bp, limits=lambda db: {}, lifetimes=lambda db: {}, lifetime_keys=())
webhooks.add_control_routes(bp)


@bp.errorhandler(ApiError)
def refused(error: ApiError):
    return control.bad(error.message, 400 if error.status < 500 else error.status)


@bp.post("/reset")
def reset():
    store = settings.store()
    with store.tx() as db:
        store.wipe(db)
        demo.seed(db)
    return jsonify({"ok": True, "accounts": [a["id"] for a in demo.DEMO_ACCOUNTS]})


@bp.post("/accounts/<account_id>/charges_enabled")
def charges_enabled(account_id):
    """{"charges_enabled": bool}: the firm finished (or lost) its verification; account.updated follows."""
    value = control.body().get("charges_enabled")
    if not isinstance(value, bool):
        return control.bad("expected {\"charges_enabled\": true|false}")
    with settings.store().tx() as db:
        doc = objects.account(db, account_id)
        if doc is None:
            return control.bad("account not found", 404)
        fresh = demo.account_doc(doc["id"], doc["business_profile"]["name"], doc["country"],
                                 doc["default_currency"], doc["email"], charges_enabled=value)
        previous = {"charges_enabled": doc["charges_enabled"]}
        doc.update({k: fresh[k] for k in ("charges_enabled", "details_submitted", "payouts_enabled",
                                          "requirements", "capabilities")})
        objects.save_account(db, doc)
        if objects.connected(db, account_id):
            objects.emit(db, "account.updated", doc, account_id, previous=previous)
    return jsonify(doc)


@bp.post("/accounts/<account_id>/deauthorize")
def dashboard_disconnect(account_id):
    """The firm removes the platform in its Stripe dashboard: account.application.deauthorized."""
    with settings.store().tx() as db:
        if not connect.deauthorize_account(db, account_id):
            return control.bad("that account is not connected to the platform", 404)
    return jsonify({"deauthorized": account_id})


def _charge_of(db, object_id: str):
    """A charge by its id, or the latest charge of a PaymentIntent; with its owner."""
    owner = objects.owner(db, object_id)
    doc = objects.get(db, object_id, owner) if owner else None
    if doc and doc["object"] == "payment_intent":
        doc = objects.get(db, doc.get("latest_charge") or "", owner)
    if not doc or doc["object"] != "charge":
        return None, None
    return doc, owner


@bp.post("/charges/<object_id>/refund")
def refund(object_id):
    """{"amount"?: minor units, "reason"?}: the firm refunds in its dashboard; charge.refunded follows.
    object_id: a charge (ch_) or PaymentIntent (pi_)."""
    sent = control.body()
    with settings.store().tx() as db:
        charge, owner = _charge_of(db, object_id)
        if charge is None:
            return control.bad("no such charge or PaymentIntent", 404)
        return jsonify(payments.public(payments.refund(db, charge, owner, sent.get("amount"), sent.get("reason"))))


@bp.post("/charges/<object_id>/dispute")
def dispute(object_id):
    """{"reason"?}: the card holder disputes the payment; charge.dispute.created follows."""
    reason = control.body().get("reason", "fraudulent")
    if reason not in payments.DISPUTE_REASONS:
        return control.bad(f"reason must be one of {', '.join(payments.DISPUTE_REASONS)}")
    with settings.store().tx() as db:
        charge, owner = _charge_of(db, object_id)
        if charge is None:
            return control.bad("no such charge or PaymentIntent", 404)
        return jsonify(payments.public(payments.dispute(db, charge, owner, reason)))


@bp.post("/async")
def set_async():
    """{"seconds": N | null}: how long payments that confirm later take from now on (null: only
    when settled through the control API)."""
    seconds = control.body().get("seconds", "missing")
    if seconds is not None and not (isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
                                    and seconds >= 0):
        return control.bad('expected {"seconds": a non-negative number or null}')
    with settings.store().tx() as db:
        Store.put_setting(db, "async", {"seconds": seconds})
    return jsonify({"seconds": seconds})


@bp.post("/checkout/sessions/<session_id>/settle")
def settle(session_id):
    """{"outcome"?: "succeeded"|"failed"}: a payment that was confirming ends now."""
    outcome = control.body().get("outcome")
    if outcome not in (None, "succeeded", "failed"):
        return control.bad("outcome must be succeeded or failed")
    with settings.store().tx() as db:
        owner = objects.owner(db, session_id)
        session = objects.get(db, session_id, owner, "checkout.session") if owner else None
        if session is None:
            return control.bad("no such Checkout Session", 404)
        if not session.get("_async"):
            return control.bad("this Checkout Session has no payment waiting for confirmation", 409)
        db.execute("UPDATE objects SET due=NULL WHERE id=?", (session_id,))
        return jsonify(payments.public(payments.settle(db, session, owner, outcome)))


@bp.post("/checkout/sessions/<session_id>/pay")
def pay(session_id):
    """{"card": "4242424242424242"}: the hosted page's payment without a browser."""
    card = str(control.body().get("card", "4242424242424242")).replace(" ", "")
    with settings.store().tx() as db:
        owner = objects.owner(db, session_id)
        session = objects.get(db, session_id, owner, "checkout.session") if owner else None
        if session is None:
            return control.bad("no such Checkout Session", 404)
        if session["status"] != "open":
            return control.bad(f"the Checkout Session is {session['status']}", 409)
        declined = payments.pay(db, session, owner, card, "", settings.async_seconds(db))
    return jsonify({"session": payments.public(session), "declined": declined})


def state_of(db) -> dict:
    accounts = []
    for row in db.execute("SELECT id FROM accounts ORDER BY created, id").fetchall():
        doc = objects.account(db, row["id"])
        accounts.append({
            "id": doc["id"], "name": doc["business_profile"]["name"], "charges_enabled": doc["charges_enabled"],
            "connected": objects.connected(db, doc["id"]),
            **{kind: [payments.public(o) for o in objects.all_of(db, doc["id"], obj)]
               for kind, obj in (("checkout_sessions", "checkout.session"), ("payment_intents", "payment_intent"),
                                 ("charges", "charge"), ("refunds", "refund"), ("disputes", "dispute"))}})
    return {"accounts": accounts,
            "events": [{"id": e["id"], "type": e["type"], "account": e.get("account")} for e in
                       [json.loads(r["doc"]) for r in db.execute("SELECT doc FROM objects WHERE kind='event' "
                                                                 "ORDER BY seq")]]}


@bp.get("/state")
def state():
    with settings.store().read() as db:
        return jsonify(state_of(db))


@bp.get("/stats")
def stats():
    with settings.store().read() as db:
        counters = control.counters(db)
        pending = db.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE state='pending'").fetchone()[0]
    return jsonify({"calls_per_account": {k.split(":", 1)[1]: v for k, v in counters.items()
                                          if k.startswith("calls:")},
                    **{name: counters.get(name, 0) for name in (
                        "rate_limited", "injected_5xx", "lost_responses", "idempotent_replays", "forbidden",
                        "oauth_tokens", "webhook_deliveries", "webhook_failed_attempts", "webhook_duplicates")},
                    "webhooks_pending": pending, "at": time.time()})
