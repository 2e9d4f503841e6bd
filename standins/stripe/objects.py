"""Reading and writing the stand-in's objects, each owned by one account, and emitting their events."""
from __future__ import annotations

import json
import secrets
import time

from ..core import webhooks
from .settings import API_VERSION

PLATFORM = "platform"  # the owner of objects made without Stripe-Account


def new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}" if prefix == "cs" else f"{prefix}_{secrets.token_hex(12)}"


def save(db, doc: dict, account: str, *, due: float | None = None) -> dict:
    db.execute("INSERT INTO objects(id, account, kind, doc, due) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT(id) DO UPDATE SET doc=excluded.doc, due=excluded.due",
               (doc["id"], account, doc["object"], json.dumps(doc), due))
    return doc


def get(db, object_id: str, account: str, kind: str | None = None) -> dict | None:
    """The object, only if this account owns it (one account never sees another's)."""
    row = db.execute("SELECT doc, kind FROM objects WHERE id=? AND account=?", (object_id, account)).fetchone()
    if row is None or (kind and row["kind"] != kind):
        return None
    return json.loads(row["doc"])


def owner(db, object_id: str) -> str | None:
    row = db.execute("SELECT account FROM objects WHERE id=?", (object_id,)).fetchone()
    return row["account"] if row else None


def all_of(db, account: str, kind: str) -> list[dict]:
    return [json.loads(r["doc"]) for r in db.execute(
        "SELECT doc FROM objects WHERE account=? AND kind=? ORDER BY seq", (account, kind))]


def account(db, account_id: str) -> dict | None:
    row = db.execute("SELECT doc FROM accounts WHERE id=?", (account_id,)).fetchone()
    return json.loads(row["doc"]) if row else None


def save_account(db, doc: dict) -> None:
    db.execute("INSERT INTO accounts(id, doc, created) VALUES (?, ?, ?) "
               "ON CONFLICT(id) DO UPDATE SET doc=excluded.doc", (doc["id"], json.dumps(doc), time.time()))


def connected(db, account_id: str) -> bool:
    return db.execute("SELECT 1 FROM connections WHERE account_id=?", (account_id,)).fetchone() is not None


def _matches(endpoint: dict, event_type: str, account_id: str) -> bool:
    """Connect endpoints get the connected accounts' events, the others the platform's own
    (docs.stripe.com/connect/webhooks)."""
    return webhooks.wants(endpoint, event_type) and bool(endpoint["doc"].get("connect")) == bool(account_id)


def emit(db, event_type: str, obj: dict, account_id: str | None, *, previous: dict | None = None) -> dict:
    """An Event (stored, retrievable by the account it is about) and its deliveries."""
    event = {"id": new_id("evt"), "object": "event", "api_version": API_VERSION, "created": int(time.time()),
             "data": {"object": obj, **({"previous_attributes": previous} if previous else {})},
             "livemode": False, "pending_webhooks": 0, "request": {"id": None, "idempotency_key": None},
             "type": event_type}
    if account_id:
        event["account"] = account_id
    count = sum(1 for e in webhooks.endpoints(db) if _matches(e, event_type, account_id or ""))
    event["pending_webhooks"] = count
    save(db, event, account_id or PLATFORM)
    webhooks.emit(db, event_id=event["id"], event_type=event_type, body=json.dumps(event, indent=2),
                  account=account_id or "", matches=_matches)
    return event
