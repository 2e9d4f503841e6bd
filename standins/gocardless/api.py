"""GoCardless's Pro API (GoCardless-Version 2015-07-06), the parts PlanMan uses.

Every call passes the guard first: the bearer token names one organisation
(401 otherwise), then rate limits (429 with RateLimit-* headers) and injected
faults (5xx, latency, lost answers) from the core. Creates honour the
Idempotency-Key: a key used before in the organisation answers 409
invalid_state / idempotent_creation_conflict naming the resource it created
(REFERENCE.md section 5), whatever the body says this time."""
from __future__ import annotations

import json
import time
from datetime import date, timedelta

from flask import Blueprint, g, jsonify, request, url_for

from ..core import faults, oauth, ratelimit
from ..core.store import Store
from . import errors, resources, settings
from .settings import cfg

bp = Blueprint("api", __name__)
VERSION = "2015-07-06"
API_PATHS = ("/creditors", "/customers", "/billing_requests", "/billing_request_flows", "/mandates", "/payments")


def _is_api(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in API_PATHS)


@bp.before_app_request
def guard():
    if not _is_api(request.path):
        return None
    g.in_flight_id, g.drop, g.remaining = None, False, None
    with settings.store().tx() as db:
        grant, problem = oauth.bearer(db)
        if problem:
            return errors.error(401, "invalid_api_usage", "Invalid token",
                                [{"reason": "access_token_not_found" if problem != "missing"
                                  else "missing_authorization_header", "message": "Invalid token"}])
        row = db.execute("SELECT organisation_id FROM grant_organisations WHERE grant_id=?",
                         (grant["grant_id"],)).fetchone()
        if row is None:
            return errors.error(401, "invalid_api_usage", "Invalid token")
        g.organisation = row["organisation_id"]
        if request.headers.get("GoCardless-Version") != VERSION:
            # Guess at the reason's name; the API requires the header (REFERENCE.md section 3).
            return errors.error(400, "invalid_api_usage", "GoCardless-Version header missing or not supported",
                                [{"reason": "version_not_supported", "message": f"use {VERSION}"}])
        Store.bump(db, f"calls:{g.organisation}")
        plan = faults.plan(db, request.method in ("POST", "PUT", "DELETE"))
        limits = settings.limits(db)
        if plan["rate_limit"]:
            Store.bump(db, "rate_limited")
            return _too_many(plan["rate_limit"], limits)
        admitted = ratelimit.admit(db, g.organisation, limits)
        if not admitted["ok"]:
            return _too_many(admitted["retry_after"] or 1, limits)
        g.in_flight_id, g.remaining = admitted["in_flight_id"], admitted["remaining"]["minute"]
        if plan["fail_status"]:
            Store.bump(db, "injected_5xx")
    if plan["latency_ms"]:
        time.sleep(plan["latency_ms"] / 1000)
    if plan["fail_status"]:
        return errors.error(plan["fail_status"], "gocardless", "Uh-oh! Something went wrong (injected fault).",
                            [{"reason": "internal_server_error", "message": "Internal server error"}])
    g.drop = plan["drop"]
    return None


def _too_many(retry_after: int, limits: dict):
    reset = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + retry_after))
    return errors.error(429, "invalid_api_usage", "Rate limit exceeded",
                        [{"reason": "rate_limit_exceeded", "message": "Too many requests"}],
                        headers={"RateLimit-Limit": str(limits["per_minute"]), "RateLimit-Remaining": "0",
                                 "RateLimit-Reset": reset, "Retry-After": str(retry_after)})


@bp.after_app_request
def finish(response):
    if _is_api(request.path) and g.get("organisation"):
        response.headers["RateLimit-Limit"] = str(cfg("LIMIT_PER_MINUTE"))
        if g.get("remaining") is not None:
            response.headers["RateLimit-Remaining"] = str(g.remaining)
        if g.get("drop") and response.status_code < 500:
            faults.drop_connection(settings.store())
    return response


@bp.teardown_app_request
def release(_exc):
    if g.get("in_flight_id"):
        with settings.store().tx() as db:
            ratelimit.release(db, g.in_flight_id)
        g.in_flight_id = None


# -- helpers ----------------------------------------------------------------------------------

def _sent(envelope: str):
    body = request.get_json(silent=True)
    return body.get(envelope) if isinstance(body, dict) and isinstance(body.get(envelope), dict) else None


def _one(kind: str, doc: dict, status: int = 200):
    return jsonify({kind: doc}), status


def _replay(db, kind: str):
    """The 409 for a create whose Idempotency-Key was used before (in this organisation)."""
    key = request.headers.get("Idempotency-Key")
    if not key:
        return None
    row = db.execute("SELECT fingerprint FROM idempotency WHERE tenant_id=? AND key=?",
                     (g.organisation, key)).fetchone()
    if row is None:
        return None
    Store.bump(db, "idempotency_conflicts")
    return errors.invalid_state("idempotent_creation_conflict",
                                "A resource has already been created with this idempotency key",
                                {"conflicting_resource_id": row["fingerprint"]}, status=409)


def _remember(db, resource_id: str) -> None:
    key = request.headers.get("Idempotency-Key")
    if key:
        db.execute("INSERT INTO idempotency(tenant_id, key, fingerprint, status, body) VALUES (?, ?, ?, 201, '')",
                   (g.organisation, key, resource_id))


def _metadata(sent: dict):
    """Up to three keys of at most 50 characters, values of at most 500 (GoCardless's metadata rule)."""
    metadata = sent.get("metadata") or {}
    if not isinstance(metadata, dict) or len(metadata) > 3 or any(
            not isinstance(k, str) or len(k) > 50 or not isinstance(v, str) or len(v) > 500
            for k, v in metadata.items()):
        return None, errors.validation("metadata", "must be up to 3 string pairs (keys up to 50 characters, "
                                                   "values up to 500)")
    return metadata, None


# -- creditors ----------------------------------------------------------------------------------

@bp.get("/creditors")
def creditors():
    with settings.store().read() as db:
        row = db.execute("SELECT creditor FROM organisations WHERE id=?", (g.organisation,)).fetchone()
    items = [json.loads(row["creditor"])] if row else []
    return jsonify({"creditors": items, "meta": {"cursors": {"before": None, "after": None}, "limit": 50}})


@bp.get("/creditors/<creditor_id>")
def creditor(creditor_id):
    with settings.store().read() as db:
        row = db.execute("SELECT creditor FROM organisations WHERE id=?", (g.organisation,)).fetchone()
    found = json.loads(row["creditor"]) if row else None
    if not found or found["id"] != creditor_id:
        return errors.not_found("creditor")
    return _one("creditors", found)


# -- billing requests and flows -------------------------------------------------------------------

@bp.post("/billing_requests")
def create_billing_request():
    sent = _sent("billing_requests")
    if sent is None:
        return errors.validation("billing_requests", "is required")
    mandate_request = sent.get("mandate_request")
    if not isinstance(mandate_request, dict) and not isinstance(sent.get("payment_request"), dict):
        return errors.validation("mandate_request", "a mandate_request or payment_request is required")
    if mandate_request is not None and not isinstance(mandate_request.get("currency"), str):
        return errors.validation("mandate_request/currency", "is required")
    metadata, problem = _metadata(sent)
    if problem:
        return problem
    with settings.store().tx() as db:
        replay = _replay(db, "billing_requests")
        if replay:
            return replay
        customer_id = (sent.get("links") or {}).get("customer")
        if customer_id and resources.get(db, g.organisation, "customers", customer_id) is None:
            return errors.validation("links/customer", "was not found")
        doc = {"id": resources.new_id("billing_requests"), "created_at": resources.now_iso(), "status": "pending",
               "mandate_request": {"scheme": (mandate_request or {}).get("scheme") or "bacs",
                                   "currency": (mandate_request or {}).get("currency"), "links": {}}
               if mandate_request else None,
               "payment_request": sent.get("payment_request"), "metadata": metadata,
               "links": {"customer": customer_id, "creditor": _creditor_id(db)}}
        resources.put(db, g.organisation, "billing_requests", doc)
        _remember(db, doc["id"])
        events = resources.Events(db, g.organisation)
        events.add("billing_requests", "created", {"billing_request": doc["id"]}, origin="api",
                   resource_metadata=metadata)
        events.send()
    return _one("billing_requests", doc, 201)


def _creditor_id(db) -> str:
    row = db.execute("SELECT creditor FROM organisations WHERE id=?", (g.organisation,)).fetchone()
    return json.loads(row["creditor"])["id"]


@bp.get("/billing_requests/<billing_request_id>")
def billing_request(billing_request_id):
    with settings.store().read() as db:
        doc = resources.get(db, g.organisation, "billing_requests", billing_request_id)
    return _one("billing_requests", doc) if doc else errors.not_found("billing_request")


@bp.post("/billing_request_flows")
def create_flow():
    sent = _sent("billing_request_flows")
    if sent is None:
        return errors.validation("billing_request_flows", "is required")
    with settings.store().tx() as db:
        replay = _replay(db, "billing_request_flows")
        if replay:
            return replay
        request_id = (sent.get("links") or {}).get("billing_request")
        found = resources.get(db, g.organisation, "billing_requests", request_id)
        if found is None:
            return errors.validation("links/billing_request", "was not found")
        if found["status"] not in ("pending", "ready_to_fulfil"):
            return errors.invalid_state("billing_request_not_pending", "The billing request is not pending")
        flow_id = resources.new_id("billing_request_flows")
        expires = (date.today() + timedelta(days=cfg("FLOW_DAYS"))).isoformat() + "T00:00:00.000Z"
        doc = {"id": flow_id, "created_at": resources.now_iso(), "expires_at": expires,
               "authorisation_url": url_for("flow.page", flow_id=flow_id, _external=True),
               "redirect_uri": sent.get("redirect_uri"), "exit_uri": sent.get("exit_uri"),
               "prefilled_customer": sent.get("prefilled_customer") or {}, "links": {"billing_request": request_id}}
        resources.put(db, g.organisation, "billing_request_flows", doc)
        _remember(db, flow_id)
    return _one("billing_request_flows", doc, 201)


# -- customers and mandates ---------------------------------------------------------------------------

@bp.get("/customers/<customer_id>")
def customer(customer_id):
    with settings.store().read() as db:
        doc = resources.get(db, g.organisation, "customers", customer_id)
    return _one("customers", doc) if doc else errors.not_found("customer")


@bp.get("/mandates/<mandate_id>")
def mandate(mandate_id):
    with settings.store().read() as db:
        doc = resources.get(db, g.organisation, "mandates", mandate_id)
    return _one("mandates", doc) if doc else errors.not_found("mandate")


@bp.post("/mandates/<mandate_id>/actions/cancel")
def cancel_mandate(mandate_id):
    with settings.store().tx() as db:
        doc = resources.get(db, g.organisation, "mandates", mandate_id)
        if doc is None:
            return errors.not_found("mandate")
        events = resources.Events(db, g.organisation)
        if resources.move_mandate(db, g.organisation, doc, "cancelled", events):
            return errors.invalid_state("mandate_already_inactive", "The mandate is not active")
        events.send()
    return _one("mandates", doc)


# -- payments ----------------------------------------------------------------------------------------------

@bp.post("/payments")
def create_payment():
    sent = _sent("payments")
    if sent is None:
        return errors.validation("payments", "is required")
    amount = sent.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        return errors.validation("amount", "must be a positive whole number of pence/cents")
    metadata, problem = _metadata(sent)
    if problem:
        return problem
    with settings.store().tx() as db:
        replay = _replay(db, "payments")
        if replay:
            return replay
        found = resources.get(db, g.organisation, "mandates", (sent.get("links") or {}).get("mandate"))
        if found is None:
            return errors.validation("links/mandate", "was not found")
        if found["status"] not in resources.TAKES_PAYMENTS:
            return errors.invalid_state("mandate_is_inactive", "The mandate is not active, so no payment can be "
                                                               "created against it")
        currency = sent.get("currency")
        scheme_currency = {"bacs": "GBP", "sepa_core": "EUR"}.get(found["scheme"])
        if scheme_currency and currency != scheme_currency:
            return errors.validation("currency", f"must be {scheme_currency} for a {found['scheme']} mandate")
        earliest = found.get("next_possible_charge_date") or resources.next_charge_date(cfg("CHARGE_LEAD_DAYS"))
        charge_date = sent.get("charge_date") or earliest
        try:
            date.fromisoformat(charge_date)
        except (TypeError, ValueError):
            return errors.validation("charge_date", "must be a date (YYYY-MM-DD)")
        if charge_date < earliest:
            return errors.validation("charge_date", f"must be on or after the mandate's next_possible_charge_date "
                                                    f"({earliest})")
        doc = {"id": resources.new_id("payments"), "created_at": resources.now_iso(), "status": "pending_submission",
               "amount": amount, "amount_refunded": 0, "currency": currency, "charge_date": charge_date,
               "description": sent.get("description"), "reference": sent.get("reference"), "metadata": metadata,
               "retry_if_possible": bool(sent.get("retry_if_possible", True)), "app_fee": sent.get("app_fee"),
               "links": {"mandate": found["id"], "creditor": _creditor_id(db)}, "retries": 0}
        resources.put(db, g.organisation, "payments", doc)
        _remember(db, doc["id"])
        events = resources.Events(db, g.organisation)
        events.add("payments", "created", {"payment": doc["id"], "mandate": found["id"]}, origin="api",
                   cause="payment_created", description="Payment created via the API.", resource_metadata=metadata)
        events.send()
    return _one("payments", _public(doc), 201)


def _public(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "retries"}


@bp.get("/payments/<payment_id>")
def payment(payment_id):
    with settings.store().read() as db:
        doc = resources.get(db, g.organisation, "payments", payment_id)
    return _one("payments", _public(doc)) if doc else errors.not_found("payment")


@bp.post("/payments/<payment_id>/actions/retry")
def retry_payment(payment_id):
    with settings.store().tx() as db:
        doc = resources.get(db, g.organisation, "payments", payment_id)
        if doc is None:
            return errors.not_found("payment")
        if doc["status"] != "failed":
            return errors.invalid_state("retry_failed", "Only failed payments can be retried")
        if doc["retries"] >= 3:  # "Payments can be retried up to 3 times" (SDK docstring)
            return errors.invalid_state("retry_failed", "This payment has been retried too many times")
        mandate_doc = resources.get(db, g.organisation, "mandates", doc["links"]["mandate"])
        if mandate_doc is None or mandate_doc["status"] not in resources.TAKES_PAYMENTS:
            return errors.invalid_state("mandate_is_inactive", "The mandate is not active")
        sent = (request.get_json(silent=True) or {}).get("data") or {}
        doc["status"], doc["retries"] = "pending_submission", doc["retries"] + 1
        doc["charge_date"] = sent.get("charge_date") or resources.next_charge_date(cfg("CHARGE_LEAD_DAYS"))
        resources.put(db, g.organisation, "payments", doc)
        events = resources.Events(db, g.organisation)
        events.add("payments", "resubmission_requested", {"payment": doc["id"], "mandate": doc["links"]["mandate"]},
                   origin="api", cause="payment_retried", description="This payment was retried via the API.",
                   resource_metadata=doc.get("metadata"))
        events.send()
    return _one("payments", _public(doc))


@bp.post("/payments/<payment_id>/actions/cancel")
def cancel_payment(payment_id):
    with settings.store().tx() as db:
        doc = resources.get(db, g.organisation, "payments", payment_id)
        if doc is None:
            return errors.not_found("payment")
        events = resources.Events(db, g.organisation)
        if resources.move_payment(db, g.organisation, doc, "cancelled", events, cause="payment_cancelled"):
            return errors.invalid_state("cancellation_failed", "Only pending_submission payments can be cancelled")
        events.send()
    return _one("payments", _public(doc))
