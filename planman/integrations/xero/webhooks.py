"""Xero's webhooks (REFERENCE.md section 9): verify a delivery, read its events,
and act on each by fetching the record it names.

- ``x-xero-signature`` is the base64 HMAC-SHA256 of the raw body keyed with
  the app's webhook key (``XERO_WEBHOOK_KEY``); it is checked before the body
  is parsed. A wrong or missing signature is 401, which is also what Xero's
  intent-to-receive probes expect of their wrongly signed deliveries; a
  correctly signed probe (``"events": []``) stores nothing and gets 200.
- Xero's events carry no id: an event's id here is a hash of what it says
  (tenant, category, record, type, time), so a retried delivery is stored once.
- Events say only that a record changed. The worker fetches the record and
  applies what Xero holds now (``reconcile.py``), so duplicates, any order and
  a replayed old delivery all end in Xero's current state.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

from flask import current_app
from redis.exceptions import LockError

from planman.integrations.base import WebhookEventData, WebhookVerificationFailed
from planman.integrations.errors import RemoteNotFound, TemporaryFailure
from planman.integrations.xero import reconcile

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-xero-signature"
CATEGORIES = ("INVOICE", "CONTACT")
# Only one worker at a time fetches and applies one Xero record, so the later
# fetch is always the later write. The lock outlives a call to Xero by a little
# (a worker killed mid-call holds it no longer than that); waiting for it is short,
# and then the event is retried.
LOCK_MARGIN_SECONDS = 5
LOCK_WAIT_SECONDS = 5


def signature(key: str, raw_body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), raw_body, hashlib.sha256).digest()).decode()


def verify(raw_body: bytes, headers, key: str) -> list[WebhookEventData]:
    """The delivery's events, once its signature holds; WebhookVerificationFailed otherwise."""
    if not key:
        log.warning("xero webhook refused: XERO_WEBHOOK_KEY is not set on this server")
        raise WebhookVerificationFailed("webhooks are not configured", status=401)
    sent = headers.get(SIGNATURE_HEADER, "")
    if not sent or not hmac.compare_digest(signature(key, raw_body), sent):
        raise WebhookVerificationFailed("x-xero-signature does not match", status=401)
    try:
        body = json.loads(raw_body)
        events = body["events"]
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise WebhookVerificationFailed("signed, but not a Xero webhook delivery", status=400) from None
    return [_event(e) for e in events]


def event_id(event: dict) -> str:
    """What identifies one event: Xero sends the same fields again when it retries."""
    parts = [str(event.get(k, "")) for k in ("tenantId", "eventCategory", "resourceId", "eventType", "eventDateUtc")]
    return "xero-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def _event(event: dict) -> WebhookEventData:
    kept = {k: event.get(k) for k in ("resourceId", "resourceUrl", "eventDateUtc", "eventType", "eventCategory",
                                      "tenantId", "tenantType")}
    return WebhookEventData(event_id=event_id(event), event_type=f"{event.get('eventCategory')}.{event.get('eventType')}",
                            account=str(event.get("tenantId") or ""), payload=kept)


def handle(provider, event, connection) -> None:
    """Fetch the record the event names and apply it (a worker; any order, any number of times)."""
    if connection is None:
        log.info("xero event %s names no organisation: ignored", event.event_id)
        return
    data = json.loads(event.payload)
    category, resource_id = data.get("eventCategory"), str(data.get("resourceId") or "")
    if category not in CATEGORIES or not resource_id:
        log.info("xero event %s: %s is not one PlanMan acts on", event.event_id, event.event_type)
        return
    record_type = "invoice" if category == "INVOICE" else "client"
    link = reconcile.link_for(connection, record_type, resource_id)
    if link is None:
        log.info("xero event %s: %s %s was not sent from PlanMan: ignored", event.event_id, category, resource_id)
        return
    happened = reconcile.xero_time(data.get("eventDateUtc"))
    if happened and link.remote_updated_at and happened < link.remote_updated_at:
        # What PlanMan last read of it was changed after this event (both times are Xero's
        # clock): a late, repeated or replayed event with nothing new to fetch.
        log.info("xero event %s: %s %s was read back after it already", event.event_id, category, resource_id)
        return
    lock = current_app.redis.lock(f"xero-record:{connection.tenant_id}:{resource_id}",
                                  timeout=2 * current_app.config["XERO_HTTP_TIMEOUT"] + LOCK_MARGIN_SECONDS,
                                  blocking_timeout=LOCK_WAIT_SECONDS)
    if not lock.acquire():
        raise TemporaryFailure(detail=f"another worker is applying {category} {resource_id}")
    try:
        api = provider.api_for(connection)
        if record_type == "invoice":
            try:
                doc = api.get_invoice(resource_id)
            except RemoteNotFound:
                doc = {"InvoiceID": resource_id, "Status": "DELETED", "Payments": []}
            reconcile.apply_invoice(connection, doc)
        else:
            try:
                reconcile.apply_contact(connection, api.get_contact(resource_id))
            except RemoteNotFound:
                log.info("xero event %s: contact %s is gone from Xero", event.event_id, resource_id)
    finally:
        try:
            lock.release()
        except LockError:  # it ran out: nothing left to release
            pass
