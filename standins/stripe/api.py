"""Stripe's API v1 for what PlanMan uses: accounts, Checkout Sessions, PaymentIntents, charges,
refunds, events and webhook endpoints (REFERENCE.md sections 3-5).

Order of checks on every call: the platform's secret key (401), the
Stripe-Account named is connected to the platform (403), injected faults
(429, 5xx, latency, lost answers; core/faults.py), the Idempotency-Key (a
replay answers the first response; other parameters: 400 idempotency_error),
then the endpoint's own rules. Objects are owned by the account they were made
on: another account's id is "No such ..." (404)."""
from __future__ import annotations

import hashlib
import json
import secrets
import time

from flask import Blueprint, Response, g, jsonify, request

from ..core import faults, webhooks
from ..core.store import Store
from . import objects, payments, settings
from .errors import ApiError, missing, no_such, request_id, respond
from .forms import decode
from .payments import public

bp = Blueprint("api", __name__, url_prefix="/v1")
MAX_IDEMPOTENCY_KEY = 255


def stripe_json(doc, status: int = 200) -> Response:
    response = jsonify(doc)
    response.status_code = status
    return response


def params() -> dict:
    pairs = request.form.items(multi=True) if request.method == "POST" else request.args.items(multi=True)
    try:
        return decode(pairs)
    except ValueError as error:
        raise ApiError(400, "invalid_request_error", str(error)) from None


def api_key() -> str | None:
    auth = request.authorization
    if auth is None:
        return None
    if auth.type == "basic":
        return auth.username
    return auth.token if auth.type == "bearer" else None


def authenticate(db) -> None:
    """The platform's secret key, as Bearer (the SDK) or Basic user (curl -u)."""
    key = api_key()
    if not key:
        raise ApiError(401, "invalid_request_error",
                       "You did not provide an API key. You need to provide your API key in the Authorization "
                       "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
    if not secrets.compare_digest(key, settings.cfg("SECRET_KEY")):
        raise ApiError(401, "invalid_request_error", f"Invalid API Key provided: {key[:8]}{'*' * 12}{key[-4:]}")


def no_access(account_id: str) -> ApiError:
    key = api_key() or ""
    return ApiError(403, "invalid_request_error",
                    f"The provided key '{key[:8]}{'*' * 12}{key[-4:]}' does not have access to account "
                    f"'{account_id}' (or that account does not exist). Application access may have been revoked.",
                    code="account_invalid")


def _fingerprint() -> str:
    pairs = sorted(request.form.items(multi=True))
    return hashlib.sha256(json.dumps([request.method, request.path, g.owner, pairs]).encode()).hexdigest()


def _admit(db) -> tuple[ApiError | None, dict, object]:
    """Key, account, faults and the Idempotency-Key, in one transaction that always commits
    (a consumed fault stays consumed when it refuses the call). (refusal, fault plan, replay row)."""
    try:
        authenticate(db)
    except ApiError as error:
        return error, {}, None
    account = request.headers.get("Stripe-Account")
    if account and not objects.connected(db, account):
        Store.bump(db, "forbidden")
        return no_access(account), {}, None
    g.owner, g.account = (account, account) if account else (objects.PLATFORM, None)
    Store.bump(db, f"calls:{g.owner}")
    plan = faults.plan(db, request.method == "POST")
    if plan["rate_limit"]:
        Store.bump(db, "rate_limited")
        return ApiError(429, "invalid_request_error", "Too many requests hit the API too quickly. We recommend an "
                        "exponential backoff of your requests.", code="rate_limit",
                        headers={"Retry-After": str(plan["rate_limit"])}), plan, None
    if plan["fail_status"]:
        Store.bump(db, "injected_5xx")
        # Stripe's 500s are api_error (docs.stripe.com/error-handling); the SDK retries them.
        return ApiError(plan["fail_status"], "api_error", "An unknown error occurred.",
                        headers={"Stripe-Should-Retry": "true"}), plan, None
    key = request.headers.get("Idempotency-Key")
    if key is None or request.method != "POST":
        return None, plan, None
    if len(key) > MAX_IDEMPOTENCY_KEY:
        return ApiError(400, "invalid_request_error", "Idempotency-Key must be at most 255 characters long."), \
            plan, None  # guess: the wording
    row = db.execute("SELECT * FROM idempotency WHERE tenant_id=? AND key=?", (g.owner, key)).fetchone()
    if row and row["fingerprint"] != _fingerprint():
        # docs.stripe.com/idempotency: a key reused with other parameters is an error.
        return ApiError(400, "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different "
                        "request."), plan, None
    if row:
        Store.bump(db, "idempotent_replays")
        return None, plan, row
    g.idem = key
    return None, plan, None


@bp.before_request
def guard():
    g.drop, g.idem, g.owner, g.account = False, None, objects.PLATFORM, None
    request_id()
    with settings.store().tx() as db:
        refusal, plan, replay = _admit(db)
    if plan.get("latency_ms"):
        time.sleep(plan["latency_ms"] / 1000)
    if refusal is not None:
        return respond(refusal)
    g.drop = plan["drop"]
    if replay is not None:
        response = Response(replay["body"], status=replay["status"], mimetype="application/json")
        response.headers["Idempotent-Replayed"] = "true"
        return response
    return None


@bp.after_request
def finish(response: Response):
    response.headers.setdefault("Request-Id", request_id())
    response.headers.setdefault("Stripe-Version", settings.API_VERSION)
    if g.get("idem") and (response.status_code < 400 or response.status_code == 402):
        # Stripe keeps the first result of a request that started executing; failed validation is not kept.
        with settings.store().tx() as db:
            db.execute("INSERT OR IGNORE INTO idempotency(tenant_id, key, fingerprint, status, body) "
                       "VALUES (?, ?, ?, ?, ?)", (g.owner, g.idem, _fingerprint(), response.status_code,
                                                  response.get_data(as_text=True)))
    if g.get("drop") and response.status_code < 500:
        faults.drop_connection(settings.store())
    return response


@bp.errorhandler(ApiError)
def api_error(error: ApiError):
    return respond(error)


def _list(items: list[dict], url: str) -> Response:
    limit = int(request.args.get("limit", 10))
    return stripe_json({"object": "list", "data": [public(i) for i in items][::-1][:limit],
                        "has_more": len(items) > limit, "url": url})


# -- accounts --------------------------------------------------------------------

PLATFORM_ACCOUNT = {"id": "acct_1StandinPlatform", "object": "account", "type": "standard",
                    "business_profile": {"name": "PlanMan (Stripe stand-in platform)"}, "charges_enabled": True,
                    "country": "GB", "default_currency": "gbp", "details_submitted": True, "payouts_enabled": True}


@bp.get("/account")
def this_account():
    with settings.store().read() as db:
        return stripe_json(objects.account(db, g.account) if g.account else PLATFORM_ACCOUNT)


@bp.get("/accounts/<account_id>")
def get_account(account_id):
    with settings.store().read() as db:
        if g.account and g.account != account_id or not objects.connected(db, account_id):
            raise no_access(account_id)
        return stripe_json(objects.account(db, account_id))


# -- Checkout Sessions --------------------------------------------------------------

def _session(db, session_id: str) -> dict:
    doc = objects.get(db, session_id, g.owner, "checkout.session")
    if doc is None:
        raise no_such("checkout.session", session_id, "session")
    return doc


@bp.post("/checkout/sessions")
def create_session():
    sent = params()
    root = request.url_root.rstrip("/")
    with settings.store().tx() as db:
        account = objects.account(db, g.account) if g.account else None
        doc = payments.create_session(db, sent, g.owner, account, root)
    return stripe_json(public(doc))


@bp.get("/checkout/sessions")
def list_sessions():
    with settings.store().read() as db:
        return _list(objects.all_of(db, g.owner, "checkout.session"), "/v1/checkout/sessions")


@bp.get("/checkout/sessions/<session_id>")
def get_session(session_id):
    with settings.store().read() as db:
        return stripe_json(public(_session(db, session_id)))


@bp.post("/checkout/sessions/<session_id>/expire")
def expire_session(session_id):
    with settings.store().tx() as db:
        return stripe_json(public(payments.expire_session(db, _session(db, session_id), g.owner)))


# -- PaymentIntents, charges, refunds, events ------------------------------------------

def _owned(kind: str, object_id: str, param: str = "id") -> dict:
    with settings.store().read() as db:
        doc = objects.get(db, object_id, g.owner, kind)
    if doc is None:
        raise no_such(kind, object_id, param)
    return public(doc)


@bp.get("/payment_intents/<intent_id>")
def get_payment_intent(intent_id):
    return stripe_json(_owned("payment_intent", intent_id, "intent"))


@bp.get("/charges/<charge_id>")
def get_charge(charge_id):
    return stripe_json(_owned("charge", charge_id, "charge"))


@bp.get("/refunds/<refund_id>")
def get_refund(refund_id):
    return stripe_json(_owned("refund", refund_id, "refund"))


@bp.get("/disputes/<dispute_id>")
def get_dispute(dispute_id):
    return stripe_json(_owned("dispute", dispute_id, "dispute"))


@bp.get("/events/<event_id>")
def get_event(event_id):
    return stripe_json(_owned("event", event_id))


@bp.post("/refunds")
def create_refund():
    sent = params()
    with settings.store().tx() as db:
        charge_id = sent.get("charge")
        if not charge_id and sent.get("payment_intent"):
            intent = objects.get(db, sent["payment_intent"], g.owner, "payment_intent")
            if intent is None:
                raise no_such("payment_intent", sent["payment_intent"], "payment_intent")
            charge_id = intent.get("latest_charge")
        if not charge_id:
            raise missing("charge")
        charge = objects.get(db, charge_id, g.owner, "charge")
        if charge is None:
            raise no_such("charge", charge_id, "charge")
        amount = payments._int(sent["amount"], "amount") if sent.get("amount") else None
        return stripe_json(public(payments.refund(db, charge, g.owner, amount, sent.get("reason"))))


# -- webhook endpoints (the platform's) ----------------------------------------------------

def _endpoint_doc(endpoint: dict, *, with_secret: bool = False) -> dict:
    doc = {**endpoint["doc"], "url": endpoint["url"], "enabled_events": endpoint["events"]}
    if with_secret:
        doc["secret"] = endpoint["secret"]  # Stripe shows the secret only in the create answer
    return doc


@bp.post("/webhook_endpoints")
def create_endpoint():
    sent = params()
    if not sent.get("url"):
        raise missing("url")
    events = sent.get("enabled_events")
    if not isinstance(events, list) or not events:
        raise missing("enabled_events")
    endpoint_id = "we_" + secrets.token_hex(12)
    doc = {"id": endpoint_id, "object": "webhook_endpoint", "api_version": sent.get("api_version"),
           "application": None, "connect": str(sent.get("connect", "false")).lower() == "true",
           "created": int(time.time()), "description": sent.get("description"), "livemode": False,
           "metadata": sent.get("metadata") or {}, "status": "enabled"}
    with settings.store().tx() as db:
        webhooks.add_endpoint(db, url=sent["url"], secret="whsec_" + secrets.token_hex(16), events=events, doc=doc,
                              endpoint_id=endpoint_id)
        [endpoint] = [e for e in webhooks.endpoints(db) if e["id"] == endpoint_id]
    return stripe_json(_endpoint_doc(endpoint, with_secret=True))


@bp.get("/webhook_endpoints")
def list_endpoints():
    with settings.store().read() as db:
        docs = [_endpoint_doc(e) for e in webhooks.endpoints(db)]
    return stripe_json({"object": "list", "data": docs, "has_more": False, "url": "/v1/webhook_endpoints"})


@bp.get("/webhook_endpoints/<endpoint_id>")
def get_endpoint(endpoint_id):
    with settings.store().read() as db:
        found = [e for e in webhooks.endpoints(db) if e["id"] == endpoint_id]
    if not found:
        raise no_such("webhook_endpoint", endpoint_id)
    return stripe_json(_endpoint_doc(found[0]))


@bp.delete("/webhook_endpoints/<endpoint_id>")
def delete_endpoint(endpoint_id):
    with settings.store().tx() as db:
        if not webhooks.remove_endpoint(db, endpoint_id):
            raise no_such("webhook_endpoint", endpoint_id)
    return stripe_json({"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})
