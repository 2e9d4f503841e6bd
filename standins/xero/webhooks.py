"""Xero's webhooks, as the stand-in delivers them (REFERENCE.md section 9), on the
core's signed delivery (core/webhooks.py: queue, lease, retries, switches).

- A subscription is one core endpoint: a URL and the app's webhook key
  (``POST /_control/webhooks/subscription {"url", "key"}``). Setting it runs
  the intent-to-receive sequence: empty deliveries, some signed with the key
  and some not; the endpoint must answer 200 to the first kind and 401 to the
  second, or the subscription stays off ("intent_failed").
- Once it is on, every change to an invoice or contact (through the API, or a
  bookkeeper's action: approve, pay, remove a payment, void, archive, rename)
  is an event, ``CREATE`` or ``UPDATE`` (a payment is an ``UPDATE`` of its
  invoice), delivered signed: ``x-xero-signature`` = base64(HMAC-SHA256(key,
  raw body)). The record itself is not in the event.
- Deliveries not answered 2xx are retried, less and less often (Xero: for up
  to 24 hours); once one is given up, the subscription is disabled, and
  ``POST /_control/webhooks/intent`` turns it on again (Xero: re-enabling
  runs intent to receive).
- The core's switches hold deliveries back (``paused``), send them twice
  (``duplicate_next``) or newest first (``order``: ``reverse``);
  ``POST /_control/webhooks/drop`` loses what is queued (Xero giving up)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from datetime import datetime, timezone

import requests

from ..core import webhooks as core
from ..core.store import Store

SCHEMA = core.SCHEMA
ENDPOINT_ID = "xero-webhook-subscription"
INTENT_TIMEOUT_SECONDS = 5  # Xero: "respond within 5 seconds"
# The intent-to-receive probes, in the order sent: signed with the key or not.
INTENT_PROBES = (True, False, True, False)
# Xero retries "less and less often for up to 24 hours": doubling from a minute, 11 attempts span a day and more.
XERO_RETRIES = {"retry_base_seconds": 60, "max_attempts": 11, "timeout_seconds": 5}


def signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def deliveries() -> core.Deliveries:
    """One app's delivery machinery: Xero signs the body alone (no timestamp)."""
    return core.Deliveries(lambda secret, body, _timestamp: {"x-xero-signature": signature(secret, body)},
                           content_type="application/json", user_agent="Xero-Webhooks (stand-in)")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


# -- the subscription --------------------------------------------------------------------

def subscription(db) -> dict | None:
    """The endpoint with its state ("unverified", "intent_failed", "active", "disabled")."""
    found = next((e for e in core.endpoints(db) if e["id"] == ENDPOINT_ID), None)
    if found is None:
        return None
    doc = found["doc"]
    if doc.get("status") == "active" and _gave_up_since(db, doc.get("enabled_at", 0)):
        doc.update(status="disabled", reason="Deliveries failed for too long, so Xero turned the webhook off.")
        core.update_endpoint(db, ENDPOINT_ID, doc=doc)
    return found


def _gave_up_since(db, enabled_at: float) -> bool:
    return db.execute("SELECT 1 FROM webhook_deliveries d JOIN webhook_events e ON e.seq=d.event_seq "
                      "WHERE d.endpoint_id=? AND d.state='failed' AND e.created>=? LIMIT 1",
                      (ENDPOINT_ID, enabled_at)).fetchone() is not None


def subscribe(store: Store, url: str, key: str) -> dict:
    """Set the URL and key, then run intent to receive."""
    with store.tx() as db:
        doc = {"status": "unverified", "reason": ""}
        if subscription(db) is None:
            core.add_endpoint(db, url=url, secret=key, events=["*"], doc=doc, endpoint_id=ENDPOINT_ID)
            stored = Store.get_setting(db, core.SETTING, {})
            Store.put_setting(db, core.SETTING, {**XERO_RETRIES, **stored})
        else:
            core.update_endpoint(db, ENDPOINT_ID, url=url, secret=key, doc=doc)
    return intent_to_receive(store)


def intent_to_receive(store: Store) -> dict:
    """Send the probes; the subscription turns on only if each was answered as Xero expects."""
    with store.tx() as db:
        endpoint = subscription(db)
    if endpoint is None:
        return {}
    body = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                       "entropy": secrets.token_urlsafe(15)}).encode()
    results = []
    for signed in INTENT_PROBES:
        sent = signature(endpoint["secret"] if signed else secrets.token_hex(16), body)
        try:
            answer = requests.post(endpoint["url"], data=body, timeout=INTENT_TIMEOUT_SECONDS, allow_redirects=False,
                                   headers={"Content-Type": "application/json", "x-xero-signature": sent})
            answered = answer.status_code
        except requests.RequestException as error:
            answered = type(error).__name__
        results.append({"signed": signed, "expected": 200 if signed else 401, "answered": answered})
    wrong = next((r for r in results if r["answered"] != r["expected"]), None)
    with store.tx() as db:
        doc = {"intent": results}
        if wrong:
            kind = "correctly" if wrong["signed"] else "incorrectly"
            doc.update(status="intent_failed",
                       reason=f"A {kind} signed probe was answered {wrong['answered']}, not {wrong['expected']}.")
        else:
            doc.update(status="active", reason="", enabled_at=time.time())
        core.update_endpoint(db, ENDPOINT_ID, doc=doc)
    return doc


def drop_queued(db) -> int:
    """Lose every delivery not yet made (Xero gave up on them)."""
    return db.execute("UPDATE webhook_deliveries SET state='dropped' WHERE state='pending' AND endpoint_id=?",
                      (ENDPOINT_ID,)).rowcount


def overview(db) -> dict:
    endpoint = subscription(db)
    if endpoint is None:
        return {"url": "", "status": "off", "reason": "", "deliveries": [], **core.settings(db)}
    recent = []
    for delivery in core.deliveries(db, limit=50):
        row = db.execute("SELECT e.body FROM webhook_deliveries d JOIN webhook_events e ON e.seq=d.event_seq "
                         "WHERE d.id=?", (delivery["id"],)).fetchone()
        recent.append({**delivery, "events": json.loads(row["body"])["events"] if row else []})
    return {"url": endpoint["url"], "key_set": bool(endpoint["secret"]), "status": endpoint["doc"].get("status"),
            "reason": endpoint["doc"].get("reason", ""), "intent": endpoint["doc"].get("intent", []),
            "deliveries": recent, **core.settings(db)}


# -- events ------------------------------------------------------------------------------

def record(db, tenant_id: str, category: str, resource_id: str, event_type: str) -> None:
    """A change to one record: an event when the subscription is on (inside the change's transaction)."""
    endpoint = subscription(db)
    if endpoint is None or endpoint["doc"].get("status") != "active":
        return
    sequence = Store.bump(db, "xero_webhook_sequence")
    event = {"resourceUrl": f"https://api.xero.com/api.xro/2.0/{category.title()}s/{resource_id}",
             "resourceId": resource_id, "eventDateUtc": _iso(time.time()), "eventType": event_type,
             "eventCategory": category, "tenantId": tenant_id, "tenantType": "ORGANISATION"}
    body = json.dumps({"events": [event], "firstEventSequence": sequence, "lastEventSequence": sequence,
                       "entropy": secrets.token_urlsafe(15)})
    core.emit(db, event_id=str(uuid.uuid4()), event_type=f"{category}.{event_type}", body=body, account=tenant_id)
