"""The Sage stand-in's control API (/sage/_control/...).

Faults, limits, lifetimes (access_token_seconds, refresh_token_seconds, code_seconds),
expire_tokens, age_tokens and violations come from the core; reset, state, stats, how a
missing X-Business is treated, misrouting and a bookkeeper's payments are Sage's."""
from __future__ import annotations

import json
import time
from decimal import Decimal

from flask import Blueprint, jsonify

from ..core import control, oauth
from ..core.store import Store
from . import demo, invoices, records, settings
from .contacts import contact_docs

bp = Blueprint("control", __name__, url_prefix="/_control")
control.add_common_routes(bp, limits=settings.limits, lifetimes=settings.lifetimes,
                          lifetime_keys=settings.LIFETIME_KEYS)


@bp.post("/reset")
def reset():
    store = settings.store()
    with store.tx() as db:
        store.wipe(db)
        demo.seed(db)
    return jsonify({"ok": True, "businesses": [b["id"] for b in demo.BUSINESSES]})


@bp.post("/x_business")
def x_business():
    """{"missing": "refuse" | "lead"}: a call without X-Business is refused (400, the default) or served by
    the user's lead business, as Sage does (REF 2)."""
    mode = control.body().get("missing")
    if mode not in ("refuse", "lead"):
        return control.bad('expected {"missing": "refuse" or "lead"}')
    with settings.store().tx() as db:
        Store.put_setting(db, "missing_x_business", mode)
    return jsonify({"missing": mode})


@bp.post("/misroute")
def misroute():
    """{"next": N}: the next N business calls are served by (and echo) another of the user's businesses
    than the X-Business sent: what a client's check of the echoed header must catch (REF 2)."""
    count = control.body().get("next")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        return control.bad('expected {"next": a non-negative whole number}')
    with settings.store().tx() as db:
        Store.put_setting(db, "misroute_next", count)
    return jsonify({"next": count})


@bp.post("/sales_invoices/<invoice_id>/payment")
def payment(invoice_id):
    """{"amount"?}: a bookkeeper records a customer payment (default: what is outstanding): PART_PAID or PAID."""
    sent = control.body()
    with settings.store().tx() as db:
        row = db.execute("SELECT doc FROM sales_invoices WHERE id=?", (invoice_id,)).fetchone()
        if row is None:
            return control.bad("sales invoice not found", 404)
        doc = json.loads(row["doc"])
        if doc["status"]["id"] not in ("UNPAID", "PART_PAID"):
            return control.bad("only a posted invoice with something outstanding can be paid", 409)
        outstanding = Decimal(doc["outstanding_amount"])
        try:
            amount = Decimal(str(sent.get("amount", outstanding)))
        except ArithmeticError:
            return control.bad("amount must be a number")
        if not 0 < amount <= outstanding:
            return control.bad(f"amount must be more than 0 and at most {outstanding}")
        doc["total_paid"] = records.money(Decimal(doc["total_paid"]) + amount)
        doc["status"] = invoices.status("PAID" if amount == outstanding else "PART_PAID")
        invoices.totals(doc)
        doc["updated_at"] = records.now_iso()
        db.execute("UPDATE sales_invoices SET doc=? WHERE id=?", (json.dumps(doc), invoice_id))
    return jsonify(invoices.public(doc))


@bp.post("/revoke")
def revoke():
    """Every grant is revoked (the user disconnected the app in Sage): later calls and refreshes fail."""
    with settings.store().tx() as db:
        grants = [r["grant_id"] for r in db.execute("SELECT grant_id FROM grants WHERE revoked=0")]
        for grant_id in grants:
            oauth.drop_grant_tokens(db, grant_id)
    return jsonify({"revoked_grants": len(grants)})


def businesses(db) -> list[dict]:
    """Each business with its contacts and sales invoices (state, and the pages)."""
    out = []
    for row in db.execute("SELECT * FROM businesses ORDER BY position").fetchall():
        doc = json.loads(row["doc"])
        out.append({"id": row["id"], "name": doc["name"], "country": doc["country"]["id"],
                    "currency": doc["currency"]["id"], "user": row["user_email"],
                    "ledger_accounts": json.loads(row["ledger_accounts"]), "tax_rates": json.loads(row["tax_rates"]),
                    "contacts": contact_docs(db, row["id"]),
                    "sales_invoices": [invoices.public(i) for i in invoices.invoice_docs(db, row["id"])]})
    return out


@bp.get("/state")
def state():
    with settings.store().read() as db:
        found = businesses(db)
    return jsonify({"businesses": [{k: v for k, v in b.items() if k not in ("ledger_accounts", "tax_rates")}
                                   for b in found]})


@bp.get("/stats")
def stats():
    with settings.store().read() as db:
        counters = control.counters(db)
        in_flight = db.execute("SELECT COUNT(*) FROM in_flight WHERE started>?", (time.time() - 120,)).fetchone()[0]
        settings_now = {"missing_x_business": Store.get_setting(db, "missing_x_business", "refuse"),
                        "misroute_next": Store.get_setting(db, "misroute_next", 0)}
    return jsonify({
        "calls_per_business": {k.split(":", 1)[1]: v for k, v in counters.items()
                               if k.startswith("calls:") and not k.startswith("calls:user:")},
        **{name: counters.get(name, 0) for name in ("rate_limited", "refreshes", "rotations", "invalid_grants",
                                                      "lost_responses", "injected_5xx", "forbidden", "misrouted")},
        "in_flight": in_flight, **settings_now,
    })
