"""The GoCardless stand-in's control API (/_control/...): time moving forward.

Faults, limits and violations come from the core, webhook switches and
endpoints from core.webhooks; reset, state, the creditor's verification and
moving mandates and payments on (as days passing would, or a sandbox
scenario simulator) are GoCardless's."""
from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify

from ..core import control, oauth, webhooks
from . import auth, demo, resources, settings

bp = Blueprint("control", __name__, url_prefix="/_control")
control.add_common_routes(bp, limits=settings.limits, lifetimes=settings.lifetimes, lifetime_keys=())
webhooks.add_control_routes(bp)
VERIFICATION = ("action_required", "in_review", "successful")


def seed(db, cfg: dict) -> None:
    """The demo organisations, and the partner app's one webhook endpoint when one is configured."""
    demo.seed(db)
    if not cfg.get("WEBHOOK_URL"):
        return
    if any(endpoint["id"] == "partner-app" for endpoint in webhooks.endpoints(db)):
        # The app's webhook URL follows the configuration (PlanMan on another port, another secret).
        webhooks.update_endpoint(db, "partner-app", url=cfg["WEBHOOK_URL"], secret=cfg["WEBHOOK_SECRET"])
    else:
        webhooks.add_endpoint(db, url=cfg["WEBHOOK_URL"], secret=cfg["WEBHOOK_SECRET"], events=["*"],
                              endpoint_id="partner-app")


@bp.post("/reset")
def reset():
    store = settings.store()
    with store.tx() as db:
        store.wipe(db)
        seed(db, current_app.config["GOCARDLESS_STANDIN"])
    return jsonify({"ok": True, "organisations": [o[0] for o in demo.ORGANISATIONS]})


@bp.post("/creditors/<creditor_id>/verification")
def verification(creditor_id):
    status = control.body().get("status")
    if status not in VERIFICATION:
        return control.bad(f"status must be one of {', '.join(VERIFICATION)}")
    with settings.store().tx() as db:
        return _set_verification(db, creditor_id, status)


def _set_verification(db, creditor_id: str, status: str):
    for org in auth.organisations(db):
        if org["creditor"]["id"] == creditor_id:
            creditor = {**org["creditor"], "verification_status": status}
            db.execute("UPDATE organisations SET creditor=? WHERE id=?", (json.dumps(creditor), org["id"]))
            events = resources.Events(db, org["id"])
            events.add("creditors", "updated", {"creditor": creditor_id}, cause="creditor_updated",
                       description="This creditor has been updated.")
            events.send()
            return jsonify(creditor)
    return control.bad("creditor not found", 404)


def advance(db, kind: str, resource_id: str, to: str | None, cause: str = ""):
    """(doc, None) or (None, (message, status))."""
    organisation, doc = resources.find(db, kind, resource_id)
    if doc is None:
        return None, (f"{kind[:-1]} not found", 404)
    events = resources.Events(db, organisation)
    if kind == "payments":
        to = to or resources.natural_next(db, organisation, doc)
        problem = resources.move_payment(db, organisation, doc, to, events, cause=cause) if to else \
            f"a {doc['status']} payment does not move on by itself"
    else:
        to = to or resources.MANDATE_NEXT.get(doc["status"])
        problem = resources.move_mandate(db, organisation, doc, to, events) if to else \
            f"a {doc['status']} mandate does not move on by itself"
    if problem:
        return None, (problem, 409)
    events.send()
    return doc, None


@bp.post("/payments/<payment_id>/advance")
def advance_payment(payment_id):
    """{"to": "submitted"|"confirmed"|"paid_out"|"failed"|"charged_back"|"cancelled", "cause": ...};
    without "to", the next step of its natural path (the customer's scenario decides: see resources)."""
    sent = control.body()
    with settings.store().tx() as db:
        doc, problem = advance(db, "payments", payment_id, sent.get("to"), sent.get("cause") or "")
    return jsonify(doc) if doc else control.bad(*problem)


@bp.post("/mandates/<mandate_id>/advance")
def advance_mandate(mandate_id):
    """{"to": "submitted"|"active"|"failed"|"cancelled"|"expired"}; without "to", the next step to active."""
    sent = control.body()
    with settings.store().tx() as db:
        doc, problem = advance(db, "mandates", mandate_id, sent.get("to"))
    return jsonify(doc) if doc else control.bad(*problem)


@bp.post("/revoke")
def revoke_all():
    """Every grant is revoked (PlanMan removed in the GoCardless dashboard); an organisations.disconnected
    event goes to the partner app for each organisation that had one."""
    with settings.store().tx() as db:
        rows = db.execute("SELECT g.grant_id, o.organisation_id FROM grants g JOIN grant_organisations o "
                          "USING (grant_id) WHERE g.revoked=0").fetchall()
        for row in rows:
            oauth.drop_grant_tokens(db, row["grant_id"])
            events = resources.Events(db, row["organisation_id"])
            events.add("organisations", "disconnected", {}, cause="app_disconnected",
                       description="This app was disconnected from the organisation.")
            events.send()
    return jsonify({"revoked_grants": len(rows)})


def state_of(db) -> dict:
    out = []
    for org in auth.organisations(db):
        out.append({**org, **{kind: resources.listed(db, org["id"], kind)
                              for kind in ("customers", "billing_requests", "mandates", "payments")}})
    return {"organisations": out}


@bp.get("/state")
def state():
    with settings.store().read() as db:
        return jsonify(state_of(db))


@bp.get("/stats")
def stats():
    with settings.store().read() as db:
        counters = control.counters(db)
    return jsonify({"calls_per_organisation": {k.split(":", 1)[1]: v for k, v in counters.items()
                                               if k.startswith("calls:")},
                    **{name: counters.get(name, 0) for name in ("rate_limited", "injected_5xx", "lost_responses",
                                                                 "idempotency_conflicts", "webhook_deliveries",
                                                                 "webhook_failed_attempts")}})
