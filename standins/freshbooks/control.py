"""The FreshBooks stand-in's control API (/freshbooks/_control/...).

Faults, limits, lifetimes (access_token_seconds, refresh_grace_seconds: none
by default, FreshBooks' single use), expire_tokens and violations come from the
core; reset, state, stats and a bookkeeper's actions are FreshBooks'."""
from __future__ import annotations

import json
import time

from flask import Blueprint, jsonify

from ..core import control, oauth
from . import demo, records, settings

bp = Blueprint("control", __name__, url_prefix="/_control")
control.add_common_routes(bp, limits=settings.limits, lifetimes=settings.lifetimes,
                          lifetime_keys=("access_token_seconds", "refresh_grace_seconds"))
# What a bookkeeper can do to an invoice in FreshBooks (REFERENCE.md section 7's codes).
BOOKKEEPER_STATUSES = {"draft": 1, "sent": 2, "viewed": 3, "paid": 4}


@bp.post("/reset")
def reset():
    store = settings.store()
    with store.tx() as db:
        store.wipe(db)
        demo.seed(db)
    return jsonify({"ok": True, "accounts": list(demo.ACCOUNT_IDS)})


@bp.post("/invoices/<int:invoice_id>/status")
def invoice_status(invoice_id):
    """{"status": "draft" | "sent" | "viewed" | "paid"}: marked in FreshBooks, as a bookkeeper would."""
    status = control.body().get("status")
    if status not in BOOKKEEPER_STATUSES:
        return control.bad(f"status must be one of {', '.join(BOOKKEEPER_STATUSES)}")
    with settings.store().tx() as db:
        row = db.execute("SELECT doc FROM invoices WHERE id=?", (invoice_id,)).fetchone()
        if row is None:
            return control.bad("invoice not found", 404)
        doc = records.with_status(json.loads(row["doc"]), BOOKKEEPER_STATUSES[status])
        doc["updated"] = records.eastern_now()
        db.execute("UPDATE invoices SET doc=? WHERE id=?", (json.dumps(doc), invoice_id))
    return jsonify(doc)


@bp.post("/revoke")
def revoke():
    """Every grant is revoked (the user removed the app in FreshBooks): later calls answer 401."""
    with settings.store().tx() as db:
        grants = [r["grant_id"] for r in db.execute("SELECT grant_id FROM grants WHERE revoked=0")]
        for grant_id in grants:
            oauth.drop_grant_tokens(db, grant_id)
    return jsonify({"revoked_grants": len(grants)})


def accounts(db) -> list[dict]:
    """Each business with its clients and invoices (state, and the pages)."""
    out = []
    for row in db.execute("SELECT * FROM businesses ORDER BY business_id").fetchall():
        docs = lambda table: [json.loads(r["doc"]) for r in db.execute(  # noqa: E731
            f"SELECT doc FROM {table} WHERE account_id=? ORDER BY id", (row["account_id"],))]
        business = json.loads(row["doc"])
        out.append({"account_id": row["account_id"], "business_id": row["business_id"], "name": business["name"],
                    "currency_code": business["currency_code"], "clients": docs("clients"),
                    "invoices": docs("invoices")})
    return out


@bp.get("/state")
def state():
    with settings.store().read() as db:
        return jsonify({"accounts": accounts(db)})


@bp.get("/stats")
def stats():
    with settings.store().read() as db:
        counters = control.counters(db)
        in_flight = db.execute("SELECT COUNT(*) FROM in_flight WHERE started>?", (time.time() - 120,)).fetchone()[0]
    return jsonify({
        "calls_per_account": {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("calls:")},
        "rate_limited": counters.get("rate_limited", 0),
        **{name: counters.get(name, 0) for name in ("refreshes", "rotations", "grace_refreshes", "invalid_grants",
                                                      "lost_responses", "injected_5xx", "forbidden")},
        "in_flight": in_flight,
    })
