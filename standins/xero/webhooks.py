"""Xero's webhooks, as the stand-in delivers them (REFERENCE.md section 9).

- A subscription is a URL and a webhook key (``POST /_control/webhooks``).
  Setting it runs the intent-to-receive sequence: empty deliveries, some
  signed with the key and some not; the endpoint must answer 200 to the first
  kind and 401 to the second, or the subscription stays off ("intent_failed").
- Once it is on, every change to an invoice or contact (through the API or a
  bookkeeper's action: approve, pay, void, archive, rename) becomes an event
  (``CREATE`` or ``UPDATE``; a payment is an ``UPDATE`` of its invoice).
  Events are batched into deliveries, each signed with
  ``x-xero-signature: base64(HMAC-SHA256(key, raw body))``.
- A delivery not answered 200 within 5 seconds is retried, less and less
  often, and after ``give_up_seconds`` (Xero: 24 hours) the subscription is
  disabled; ``POST /_control/webhooks/intent`` turns it on again.
- Controls for what Xero does anyway: the next deliveries sent twice
  (``duplicate_next``), held and sent newest first (``reorder_next``),
  or held back altogether (``paused``: Xero not delivering).

Deliveries are rows in the shared SQLite store, claimed with a lease, so any
number of stand-in processes deliver each once. A thread in each server
process sends what is due; tests call ``POST /_control/webhooks/deliver``."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from datetime import datetime, timezone

import requests

from ..core.store import Store

log = logging.getLogger(__name__)

SETTING = "webhooks"
TIMEOUT_SECONDS = 5  # Xero's: "respond within 5 seconds"
LEASE_SECONDS = 30
DEFAULTS = {"url": "", "key": "", "status": "off", "reason": "", "retry_seconds": 60, "give_up_seconds": 86400,
            "duplicate_next": 0, "reorder_next": 0, "paused": False}
CONTROL_KEYS = ("retry_seconds", "give_up_seconds", "duplicate_next", "reorder_next", "paused")
# The intent-to-receive probes: (signed with the key?) in the order sent.
INTENT_PROBES = (True, False, True, False)

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, category TEXT NOT NULL,
    resource_id TEXT NOT NULL, event_type TEXT NOT NULL, at REAL NOT NULL, delivery_id INTEGER);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, created REAL NOT NULL, due REAL NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_status INTEGER, last_error TEXT,
    delivered REAL, held INTEGER NOT NULL DEFAULT 0);
"""


def signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def subscription(db) -> dict:
    return {**DEFAULTS, **Store.get_setting(db, SETTING, {})}


def _put(db, sub: dict) -> None:
    Store.put_setting(db, SETTING, sub)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


# -- events -------------------------------------------------------------------------

def record(db, tenant_id: str, category: str, resource_id: str, event_type: str) -> None:
    """A change to one record; becomes an event if a subscription is on (called inside the change's transaction)."""
    if subscription(db)["status"] != "active":
        return
    db.execute("INSERT INTO webhook_events(tenant_id, category, resource_id, event_type, at) VALUES (?, ?, ?, ?, ?)",
               (tenant_id, category, resource_id, event_type, time.time()))


def _batch(db) -> None:
    """Gather events not yet in a delivery into one (Xero batches what happened meanwhile)."""
    rows = db.execute("SELECT * FROM webhook_events WHERE delivery_id IS NULL ORDER BY seq").fetchall()
    if not rows:
        return
    sub = subscription(db)
    events = [{"resourceUrl": f"https://api.xero.com/api.xro/2.0/{r['category'].title()}s/{r['resource_id']}",
               "resourceId": r["resource_id"], "eventDateUtc": _iso(r["at"]), "eventType": r["event_type"],
               "eventCategory": r["category"], "tenantId": r["tenant_id"], "tenantType": "ORGANISATION"}
              for r in rows]
    body = json.dumps({"events": events, "firstEventSequence": rows[0]["seq"], "lastEventSequence": rows[-1]["seq"],
                       "entropy": secrets.token_urlsafe(15)})
    copies = 2 if sub["duplicate_next"] > 0 else 1
    held = 1 if sub["reorder_next"] > 0 else 0
    now = time.time()
    for _ in range(copies):
        delivery_id = db.execute("INSERT INTO webhook_deliveries(body, created, due, state, held) "
                                 "VALUES (?, ?, ?, 'pending', ?)", (body, now, now, held)).lastrowid
    db.execute("UPDATE webhook_events SET delivery_id=? WHERE seq BETWEEN ? AND ? AND delivery_id IS NULL",
               (delivery_id, rows[0]["seq"], rows[-1]["seq"]))
    sub["duplicate_next"] = max(sub["duplicate_next"] - 1, 0)
    sub["reorder_next"] = max(sub["reorder_next"] - 1, 0)
    if held and sub["reorder_next"] == 0:
        # The held deliveries go out now, newest first.
        for offset, row in enumerate(db.execute("SELECT id FROM webhook_deliveries WHERE held=1 "
                                                "ORDER BY id DESC").fetchall()):
            db.execute("UPDATE webhook_deliveries SET held=0, due=? WHERE id=?", (now + offset * 0.001, row["id"]))
    _put(db, sub)


# -- sending ------------------------------------------------------------------------

def _post(url: str, key: str, body: str, *, signed: bool = True) -> tuple[int | None, str]:
    raw = body.encode()
    sent = signature(key if signed else secrets.token_hex(16), raw)
    try:
        response = requests.post(url, data=raw, timeout=TIMEOUT_SECONDS,
                                 headers={"Content-Type": "application/json", "x-xero-signature": sent,
                                          "User-Agent": "Xero-Webhooks (stand-in)"})
    except requests.RequestException as error:
        return None, type(error).__name__
    return response.status_code, ""


def deliver_due(store: Store) -> int:
    """Send every delivery that is due (claimed with a lease first); the number sent."""
    sent = 0
    while True:
        with store.tx() as db:
            sub = subscription(db)
            if sub["status"] != "active" or sub["paused"]:
                return sent
            _batch(db)
            now = time.time()
            row = db.execute("SELECT * FROM webhook_deliveries WHERE state='pending' AND held=0 AND due<=? "
                             "ORDER BY due, id LIMIT 1", (now,)).fetchone()
            if row is None:
                return sent
            db.execute("UPDATE webhook_deliveries SET due=?, attempts=attempts+1 WHERE id=?",
                       (now + LEASE_SECONDS, row["id"]))
        status, error = _post(sub["url"], sub["key"], row["body"])
        sent += 1
        with store.tx() as db:
            attempts = row["attempts"] + 1
            if status == 200:
                db.execute("UPDATE webhook_deliveries SET state='delivered', delivered=?, last_status=200, "
                           "last_error='' WHERE id=?", (time.time(), row["id"]))
                Store.bump(db, "webhook_deliveries")
                continue
            Store.bump(db, "webhook_failures")
            sub = subscription(db)
            if time.time() - row["created"] >= sub["give_up_seconds"]:
                db.execute("UPDATE webhook_deliveries SET state='failed', last_status=?, last_error=? WHERE id=?",
                           (status, error, row["id"]))
                sub["status"], sub["reason"] = "disabled", "Deliveries failed for too long, so Xero turned the webhook off."
                _put(db, sub)
                return sent
            # Less and less often: retry_seconds, then twice that, and so on.
            due = time.time() + sub["retry_seconds"] * 2 ** (attempts - 1)
            db.execute("UPDATE webhook_deliveries SET due=?, last_status=?, last_error=? WHERE id=?",
                       (due, status, error, row["id"]))


def intent_to_receive(store: Store) -> dict:
    """Send the probes; the subscription turns on only if each was answered as Xero expects."""
    with store.tx() as db:
        sub = subscription(db)
    body = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                       "entropy": secrets.token_urlsafe(15)})
    results = []
    for signed in INTENT_PROBES:
        status, error = _post(sub["url"], sub["key"], body, signed=signed)
        results.append({"signed": signed, "expected": 200 if signed else 401, "answered": status or error})
    wrong = [r for r in results if r["answered"] != r["expected"]]
    with store.tx() as db:
        sub = subscription(db)
        sub["intent"] = results
        if wrong:
            first = wrong[0]
            kind = "correctly" if first["signed"] else "incorrectly"
            sub["status"] = "intent_failed"
            sub["reason"] = f"A {kind} signed probe was answered {first['answered']}, not {first['expected']}."
        else:
            sub["status"], sub["reason"] = "active", ""
        _put(db, sub)
    return sub


def configure(store: Store, sent: dict) -> dict:
    """Set the URL and key (then run intent to receive) and the delivery controls."""
    with store.tx() as db:
        sub = subscription(db)
        new_target = any(k in sent and sent[k] != sub[k] for k in ("url", "key"))
        sub.update({k: sent[k] for k in ("url", "key", *CONTROL_KEYS) if k in sent})
        if new_target:
            sub["status"], sub["reason"] = "unverified", ""
        _put(db, sub)
    if new_target and sub["url"] and sub["key"]:
        return intent_to_receive(store)
    return sub


def drop_undelivered(db) -> dict:
    events = db.execute("DELETE FROM webhook_events WHERE delivery_id IS NULL").rowcount
    deliveries = db.execute("UPDATE webhook_deliveries SET state='dropped' WHERE state='pending'").rowcount
    return {"dropped_events": events, "dropped_deliveries": deliveries}


def overview(db) -> dict:
    sub = subscription(db)
    deliveries = [dict(r) for r in db.execute(
        "SELECT id, body, state, attempts, last_status, last_error, held, created, delivered "
        "FROM webhook_deliveries ORDER BY id DESC LIMIT 50")]
    for delivery in deliveries:
        delivery["events"] = json.loads(delivery.pop("body"))["events"]
    return {**{k: v for k, v in sub.items() if k != "key"}, "key_set": bool(sub["key"]),
            "pending_events": db.execute("SELECT COUNT(*) FROM webhook_events WHERE delivery_id IS NULL").fetchone()[0],
            "deliveries": deliveries}


def start_sender(store: Store, interval: float = 0.25) -> threading.Thread:
    """The server's delivery loop (one per process; the lease keeps them from sending one delivery twice)."""
    def loop():
        while True:
            try:
                deliver_due(store)
            except Exception:  # noqa: BLE001  (a locked database, a bad URL: try again shortly)
                log.exception("webhook delivery loop")
            time.sleep(interval)

    thread = threading.Thread(target=loop, name="xero-webhooks", daemon=True)
    thread.start()
    return thread
