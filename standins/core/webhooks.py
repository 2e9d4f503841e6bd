"""Signed webhook delivery that any provider's stand-in can use.

A provider registers endpoints (a URL, a secret, the event types it wants),
emits events (`emit`, inside its own write transaction, so an event exists
exactly when the change it reports does) and says how a delivery is signed
(a signer callback: secret, body, timestamp -> headers). The core keeps a
delivery queue in the provider's SQLite store: one row per event and endpoint,
delivered by a background thread (or on demand, `flush`), retried with
exponential backoff while the receiver answers anything but 2xx or cannot be
reached, given up after `max_attempts`.

Switches (control API, shared by every process on the store): `paused` (keep
deliveries queued), `duplicate_next` N (each of the next N events is delivered
twice), `order` "reverse" or "shuffle" (deliveries due together go out newest
first or shuffled: out-of-order delivery), and `flush` (deliver every queued
delivery now, also those waiting for a retry, in an order given or the
setting's). Real providers do all of these: they retry, repeat and reorder
(Stripe: docs.stripe.com/webhooks "Handle duplicate events", "Event
ordering"; GoCardless: developer docs "Webhooks"). Nothing here names a
provider."""
from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid

import requests
from flask import Blueprint, jsonify

from .store import Store

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, events TEXT NOT NULL,
    doc TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
    account TEXT NOT NULL DEFAULT '', body TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint_id TEXT NOT NULL, event_seq INTEGER NOT NULL,
    copy INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL, lease_until REAL, last_status INTEGER, last_error TEXT NOT NULL DEFAULT '',
    delivered_at REAL);
"""

SETTING = "webhooks"
DEFAULTS = {"paused": False, "duplicate_next": 0, "order": "oldest", "retry_base_seconds": 1.0,
            "max_attempts": 8, "timeout_seconds": 10.0}
ORDERS = ("oldest", "reverse", "shuffle")


def settings(db) -> dict:
    return {**DEFAULTS, **Store.get_setting(db, SETTING, {})}


# -- endpoints ---------------------------------------------------------------

def add_endpoint(db, *, url: str, secret: str, events: list[str], doc: dict | None = None,
                 endpoint_id: str | None = None) -> str:
    """Register a receiver; events ["*"] means every type. doc: the provider's own view of it."""
    endpoint_id = endpoint_id or f"ep_{uuid.uuid4().hex[:24]}"
    db.execute("INSERT INTO webhook_endpoints(id, url, secret, events, doc, created) VALUES (?, ?, ?, ?, ?, ?)",
               (endpoint_id, url, secret, json.dumps(list(events)), json.dumps(doc or {}), time.time()))
    return endpoint_id


def endpoints(db) -> list[dict]:
    return [{"id": r["id"], "url": r["url"], "secret": r["secret"], "events": json.loads(r["events"]),
             "doc": json.loads(r["doc"]), "created": r["created"]}
            for r in db.execute("SELECT * FROM webhook_endpoints ORDER BY created, id")]


def update_endpoint(db, endpoint_id: str, **fields) -> None:
    for name in ("url", "secret"):
        if name in fields:
            db.execute(f"UPDATE webhook_endpoints SET {name}=? WHERE id=?", (fields[name], endpoint_id))
    if "events" in fields:
        db.execute("UPDATE webhook_endpoints SET events=? WHERE id=?", (json.dumps(fields["events"]), endpoint_id))
    if "doc" in fields:
        db.execute("UPDATE webhook_endpoints SET doc=? WHERE id=?", (json.dumps(fields["doc"]), endpoint_id))


def remove_endpoint(db, endpoint_id: str) -> bool:
    db.execute("DELETE FROM webhook_deliveries WHERE endpoint_id=? AND state='pending'", (endpoint_id,))
    return db.execute("DELETE FROM webhook_endpoints WHERE id=?", (endpoint_id,)).rowcount == 1


def wants(endpoint: dict, event_type: str) -> bool:
    return "*" in endpoint["events"] or event_type in endpoint["events"]


# -- emitting ------------------------------------------------------------------

def emit(db, *, event_id: str, event_type: str, body: str, account: str = "", matches=None) -> int:
    """Queue one event for every endpoint that wants it (matches(endpoint, event_type, account),
    default: its event list). Runs in the caller's write transaction. Answers how many deliveries."""
    seq = db.execute("INSERT INTO webhook_events(event_id, event_type, account, body, created) "
                     "VALUES (?, ?, ?, ?, ?)", (event_id, event_type, account, body, time.time())).lastrowid
    current = settings(db)
    copies = 1
    if current["duplicate_next"] > 0:
        copies = 2
        stored = Store.get_setting(db, SETTING, {})
        stored["duplicate_next"] = current["duplicate_next"] - 1
        Store.put_setting(db, SETTING, stored)
        Store.bump(db, "webhook_duplicates")
    matches = matches or (lambda endpoint, kind, _account: wants(endpoint, kind))
    queued, now = 0, time.time()
    for endpoint in endpoints(db):
        if not matches(endpoint, event_type, account):
            continue
        for copy in range(copies):
            db.execute("INSERT INTO webhook_deliveries(endpoint_id, event_seq, copy, due) VALUES (?, ?, ?, ?)",
                       (endpoint["id"], seq, copy, now))
            queued += 1
    return queued


# -- delivering -------------------------------------------------------------------

class Deliveries:
    """A provider's delivery machinery: its signer and, when serving, the thread that delivers.

    signer(secret, body_bytes, timestamp) -> the headers that sign one attempt
    (each attempt is signed afresh, with its own timestamp, as real providers do)."""

    def __init__(self, signer, *, content_type: str = "application/json; charset=utf-8",
                 user_agent: str = "standins-webhooks/1.0", poll_seconds: float = 0.2):
        self.signer = signer
        self.content_type = content_type
        self.user_agent = user_agent
        self.poll_seconds = poll_seconds
        self._thread = None
        self._stop = threading.Event()

    def init_app(self, app, background: bool | None = None) -> None:
        """background None: deliver from a thread unless TESTING (tests flush by hand)."""
        app.extensions["standins.webhooks"] = self
        if background is None:
            background = not app.config.get("TESTING")
        if background:
            self.start(app.extensions["standins.store"])

    def start(self, store: Store) -> None:
        if self._thread is not None:
            return

        def loop():
            while not self._stop.is_set():
                try:
                    if not self.deliver_due(store):
                        self._stop.wait(self.poll_seconds)
                except Exception:  # noqa: BLE001 (the thread must outlive one bad delivery)
                    log.exception("webhook delivery loop")
                    self._stop.wait(1)

        self._thread = threading.Thread(target=loop, name="standins-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _claim(self, store: Store, *, everything: bool, order: str | None, limit: int) -> list:
        """Take due deliveries for this process (compare-and-set on the lease, so two
        processes never send the same attempt)."""
        now = time.time()
        with store.tx() as db:
            current = settings(db)
            if current["paused"] and not everything:
                return []
            order = order or current["order"]
            sql = ("SELECT d.id, d.attempts, d.copy, e.event_id, e.event_type, e.body, p.url, p.secret "
                   "FROM webhook_deliveries d JOIN webhook_events e ON e.seq=d.event_seq "
                   "JOIN webhook_endpoints p ON p.id=d.endpoint_id "
                   "WHERE d.state='pending' AND (d.lease_until IS NULL OR d.lease_until<?)")
            args = [now]
            if not everything:
                sql += " AND d.due<=?"
                args.append(now)
            sql += " ORDER BY d.event_seq DESC, d.id DESC" if order == "reverse" else " ORDER BY d.event_seq, d.id"
            rows = [dict(r) for r in db.execute(sql + " LIMIT ?", (*args, limit)).fetchall()]
            if order == "shuffle":
                random.Random(Store.bump(db, "webhook_shuffles")).shuffle(rows)
            lease = now + current["timeout_seconds"] + 5
            for row in rows:
                db.execute("UPDATE webhook_deliveries SET lease_until=?, attempts=attempts+1 WHERE id=?",
                           (lease, row["id"]))
            return [(row, current) for row in rows]

    def deliver_due(self, store: Store, *, everything: bool = False, order: str | None = None,
                    limit: int = 100) -> list[dict]:
        """Send what is due (everything=True: every queued delivery, paused or waiting to retry).
        Answers one result per attempt: {id, event_id, event_type, url, status, error, delivered}."""
        results = []
        for row, current in self._claim(store, everything=everything, order=order, limit=limit):
            results.append(self._send(store, row, current))
        return results

    def _send(self, store: Store, row: dict, current: dict) -> dict:
        body = row["body"].encode()
        headers = {"Content-Type": self.content_type, "User-Agent": self.user_agent,
                   **self.signer(row["secret"], body, int(time.time()))}
        status, error = None, ""
        try:
            answer = requests.post(row["url"], data=body, headers=headers, timeout=current["timeout_seconds"],
                                   allow_redirects=False)
            status = answer.status_code
            if not 200 <= status < 300:
                error = answer.text[:500]
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        delivered = status is not None and 200 <= status < 300
        attempts = row["attempts"] + 1
        with store.tx() as db:
            if delivered:
                db.execute("UPDATE webhook_deliveries SET state='delivered', delivered_at=?, last_status=?, "
                           "last_error='', lease_until=NULL WHERE id=?", (time.time(), status, row["id"]))
                Store.bump(db, "webhook_deliveries")
            else:
                gave_up = attempts >= current["max_attempts"]
                due = time.time() + current["retry_base_seconds"] * 2 ** (attempts - 1)
                db.execute("UPDATE webhook_deliveries SET state=?, due=?, last_status=?, last_error=?, "
                           "lease_until=NULL WHERE id=?",
                           ("failed" if gave_up else "pending", due, status, error, row["id"]))
                Store.bump(db, "webhook_failed_attempts")
        return {"id": row["id"], "event_id": row["event_id"], "event_type": row["event_type"], "url": row["url"],
                "attempt": attempts, "copy": row["copy"], "status": status, "error": error, "delivered": delivered}


def deliveries(db, limit: int = 200) -> list[dict]:
    rows = db.execute("SELECT d.*, e.event_id, e.event_type, e.account, p.url FROM webhook_deliveries d "
                      "JOIN webhook_events e ON e.seq=d.event_seq LEFT JOIN webhook_endpoints p ON p.id=d.endpoint_id "
                      "ORDER BY d.id DESC LIMIT ?", (limit,)).fetchall()
    return [{"id": r["id"], "event_id": r["event_id"], "event_type": r["event_type"], "account": r["account"],
             "endpoint_id": r["endpoint_id"], "url": r["url"], "copy": r["copy"], "state": r["state"],
             "attempts": r["attempts"], "due": r["due"], "last_status": r["last_status"],
             "last_error": r["last_error"], "delivered_at": r["delivered_at"]} for r in rows]


# -- control API ---------------------------------------------------------------------

def add_control_routes(bp: Blueprint) -> None:
    """GET|POST webhooks (the switches), POST webhooks/flush, GET|POST webhooks/endpoints,
    DELETE webhooks/endpoints/<id>, GET webhooks/deliveries."""
    from .control import bad, body
    from .store import current

    def machinery() -> Deliveries:
        from flask import current_app

        return current_app.extensions["standins.webhooks"]

    @bp.get("/webhooks")
    def webhook_settings():
        with current().read() as db:
            return jsonify(settings(db))

    @bp.post("/webhooks")
    def set_webhook_settings():
        sent = body()
        unknown = set(sent) - set(DEFAULTS)
        if unknown:
            return bad(f"unknown switch(es): {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}")
        if "order" in sent and sent["order"] not in ORDERS:
            return bad(f"order must be one of {', '.join(ORDERS)}")
        if "paused" in sent and not isinstance(sent["paused"], bool):
            return bad("paused must be true or false")
        numbers = set(sent) - {"order", "paused"}
        if not all(isinstance(sent[k], (int, float)) and not isinstance(sent[k], bool) and sent[k] >= 0
                   for k in numbers):
            return bad(f"expected non-negative numbers for {', '.join(sorted(numbers))}")
        if sent.get("max_attempts", 1) < 1:
            return bad("max_attempts must be at least 1")
        with current().tx() as db:
            Store.put_setting(db, SETTING, {**Store.get_setting(db, SETTING, {}), **sent})
            return jsonify(settings(db))

    @bp.post("/webhooks/flush")
    def flush():
        order = body().get("order")
        if order is not None and order not in ORDERS:
            return bad(f"order must be one of {', '.join(ORDERS)}")
        results = machinery().deliver_due(current(), everything=True, order=order, limit=1000)
        return jsonify({"attempts": results})

    @bp.get("/webhooks/endpoints")
    def list_endpoints():
        with current().read() as db:
            return jsonify(endpoints(db))

    @bp.post("/webhooks/endpoints")
    def create_endpoint():
        sent = body()
        url, events = sent.get("url"), sent.get("events", ["*"])
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return bad("url must be an http(s) URL")
        if not (isinstance(events, list) and events and all(isinstance(e, str) for e in events)):
            return bad('events must be a list of event types, or ["*"]')
        secret = sent.get("secret") or f"whsec_{uuid.uuid4().hex}"
        with current().tx() as db:
            endpoint_id = add_endpoint(db, url=url, secret=secret, events=events, doc=sent.get("doc"))
            return jsonify(next(e for e in endpoints(db) if e["id"] == endpoint_id)), 201

    @bp.delete("/webhooks/endpoints/<endpoint_id>")
    def delete_endpoint(endpoint_id):
        with current().tx() as db:
            return (jsonify({"deleted": endpoint_id}) if remove_endpoint(db, endpoint_id)
                    else bad("endpoint not found", 404))

    @bp.get("/webhooks/deliveries")
    def list_deliveries():
        with current().read() as db:
            return jsonify(deliveries(db))
