"""Checkout Sessions and what paying one makes: PaymentIntents, charges, refunds, disputes, and their events.

Test cards (docs.stripe.com/testing): 4242 4242 4242 4242 succeeds; 4000 0000
0000 0002 is declined (card_declined, generic_decline); 4000 0000 0000 9995
insufficient_funds; 4000 0000 0000 0069 expired_card; 4000 0000 0000 0127
incorrect_cvc. Stripe's delayed methods are bank debits, not cards; the
stand-in lets two cards of its own stand for them (not Stripe's numbers):
4000 0025 0000 1001 confirms later, 4000 0025 0000 1019 fails later."""
from __future__ import annotations

import time
from datetime import date

from . import objects
from .errors import ApiError, invalid, missing
from .objects import emit, new_id, save

DECLINES = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": ("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
}
SUCCEEDS = {"4242424242424242", "4000056655665556", "5555555555554444"}
ASYNC = {"4000002500001001": "succeeded", "4000002500001019": "failed"}
ASYNC_FAILURE = "The payment could not be confirmed by the bank."  # guess: the stand-in's own words
LIVE_CARD = "Your card was declined. Your request was in test mode, but used a non test (live) card."


def public(doc: dict) -> dict:
    """What the API shows of an object (the stand-in's own bookkeeping starts with _)."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _int(value, param: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_request_error", f"Invalid integer: {value}", code="parameter_invalid_integer",
                       param=param) from None
    if number < 0:
        raise invalid(param, f"This value must be greater than or equal to 0 ({param}).")
    return number


def create_session(db, params: dict, owner: str, account_doc: dict | None, root: str) -> dict:
    """POST /v1/checkout/sessions (mode=payment with price_data line items: what PlanMan sends)."""
    if account_doc is not None and not account_doc.get("charges_enabled"):
        # guess: the wording; Stripe refuses payments on accounts that cannot take charges.
        raise ApiError(400, "invalid_request_error", "This account cannot currently make charges: it has not "
                       "finished setting up its Stripe account.", code="account_invalid")
    if not params.get("mode"):
        raise missing("mode")
    if params["mode"] != "payment":
        raise invalid("mode", "The stand-in supports mode=payment only.")  # guess: a stand-in limit
    if not params.get("success_url"):
        raise missing("success_url")
    items = params.get("line_items")
    if not isinstance(items, list) or not items:
        raise missing("line_items")
    total, currency, names = 0, None, []
    for n, item in enumerate(items):
        price = item.get("price_data") if isinstance(item, dict) else None
        if not isinstance(price, dict):
            raise missing(f"line_items[{n}][price_data]")
        if not price.get("currency"):
            raise missing(f"line_items[{n}][price_data][currency]")
        if "unit_amount" not in price:
            raise missing(f"line_items[{n}][price_data][unit_amount]")
        if currency and price["currency"].lower() != currency:
            raise invalid(f"line_items[{n}][price_data][currency]", "All line items must be in one currency.")
        currency = price["currency"].lower()
        total += _int(price["unit_amount"], f"line_items[{n}][price_data][unit_amount]") * _int(
            item.get("quantity", 1), f"line_items[{n}][quantity]")
        names.append(((price.get("product_data") or {}).get("name")) or "Item")
    if total < 50 and currency not in ("jpy", "krw"):
        # Stripe's minimum charge is about 0.50 in the currency (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
        raise invalid("line_items", "The Checkout Session's total amount due must add up to at least 0.50.")
    now = int(time.time())
    expires_at = _int(params["expires_at"], "expires_at") if params.get("expires_at") else now + 24 * 3600
    if not now + 1800 <= expires_at <= now + 24 * 3600:
        raise invalid("expires_at", "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.")
    session_id = new_id("cs")
    intent_data = params.get("payment_intent_data") or {}
    doc = {
        "id": session_id, "object": "checkout.session", "amount_subtotal": total, "amount_total": total,
        "cancel_url": params.get("cancel_url"), "client_reference_id": params.get("client_reference_id"),
        "created": now, "currency": currency, "customer": params.get("customer"),
        "customer_details": None, "customer_email": params.get("customer_email"), "expires_at": expires_at,
        "livemode": False, "metadata": params.get("metadata") or {}, "mode": "payment", "payment_intent": None,
        "payment_method_types": ["card"], "payment_status": "unpaid", "status": "open",
        "success_url": params["success_url"], "ui_mode": "hosted", "url": f"{root}/checkout/pay/{session_id}",
        "_products": names, "_intent_metadata": intent_data.get("metadata") or {},
        "_description": intent_data.get("description"),
    }
    return save(db, doc, owner)


def expire_session(db, session: dict, owner: str) -> dict:
    if session["status"] != "open":
        # guess: close to Stripe's wording for expiring a finished session
        raise ApiError(400, "invalid_request_error",
                       'Only Checkout Sessions with a status in ["open"] can be expired.')
    session.update(status="expired", url=None)
    save(db, session, owner)
    emit(db, "checkout.session.expired", public(session), _acct(owner))
    return session


def _acct(owner: str) -> str | None:
    return None if owner == objects.PLATFORM else owner


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in number][::-1]
    return sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits)) % 10 == 0


def card_problem(number: str, expiry: str, cvc: str) -> str | None:
    """What Checkout says beside the form before any charge is tried (Checkout's own checks)."""
    if not (number.isdigit() and 13 <= len(number) <= 19 and luhn_ok(number)):
        return "Your card number is invalid."
    try:
        month, year = (int(p) for p in expiry.replace(" ", "").split("/"))
        year += 2000 if year < 100 else 0
    except ValueError:
        return "Your card's expiration date is incomplete."
    today = date.today()
    if not 1 <= month <= 12 or (year, month) < (today.year, today.month):
        return "Your card's expiration year is in the past." if year < today.year else \
            "Your card's expiration date is in the past."
    if not (cvc.isdigit() and len(cvc) in (3, 4)):
        return "Your card's security code is incomplete."
    return None


def _intent(db, session: dict, owner: str) -> dict:
    if session.get("payment_intent"):
        return objects.get(db, session["payment_intent"], owner)
    intent = {"id": new_id("pi"), "object": "payment_intent", "amount": session["amount_total"],
              "amount_received": 0, "currency": session["currency"], "created": int(time.time()),
              "description": session.get("_description"), "last_payment_error": None, "latest_charge": None,
              "livemode": False, "metadata": session["_intent_metadata"], "payment_method_types": ["card"],
              "status": "requires_payment_method"}
    session["payment_intent"] = intent["id"]
    return intent


def _charge(intent: dict, number: str, *, status: str, failure: tuple | None = None) -> dict:
    charge = {"id": new_id("ch"), "object": "charge", "amount": intent["amount"],
              "amount_captured": intent["amount"] if status == "succeeded" else 0, "amount_refunded": 0,
              "currency": intent["currency"], "created": int(time.time()), "disputed": False,
              "failure_code": failure[0] if failure else None, "failure_message": failure[2] if failure else None,
              "livemode": False, "metadata": intent["metadata"], "paid": status == "succeeded",
              "payment_intent": intent["id"], "refunded": False, "status": status,
              "outcome": {"network_status": "declined_by_network" if failure else "approved_by_network",
                          "reason": failure[1] if failure else None, "type": "issuer_declined" if failure else
                          "authorized", "seller_message": "The bank did not return any further details with this "
                          "decline." if failure else "Payment complete."},
              "payment_method_details": {"type": "card", "card": {"brand": "visa" if number[0] == "4" else
                                                                  "mastercard", "last4": number[-4:]}}}
    intent["latest_charge"] = charge["id"]
    return charge


def pay(db, session: dict, owner: str, number: str, email: str, async_seconds: float | None) -> str | None:
    """One attempt at the hosted page. Answers the decline message to show, or None (paid, or confirming)."""
    intent = _intent(db, session, owner)
    account = _acct(owner)
    session["customer_details"] = {"email": email or session.get("customer_email"), "name": None}
    if number in SUCCEEDS:
        _succeed(db, session, intent, owner, number, "checkout.session.completed")
        return None
    if number in ASYNC:
        intent["status"] = "processing"
        session.update(status="complete", payment_status="unpaid", url=None, _async=ASYNC[number],
                       _card=number)
        save(db, intent, owner)
        save(db, session, owner, due=time.time() + async_seconds if async_seconds is not None else None)
        emit(db, "payment_intent.processing", public(intent), account)
        emit(db, "checkout.session.completed", public(session), account)
        return None
    failure = DECLINES.get(number) or ("card_declined", "live_mode_test_card", LIVE_CARD)
    charge = _charge(intent, number, status="failed", failure=failure)
    intent.update(status="requires_payment_method", last_payment_error={
        "type": "card_error", "code": failure[0], "decline_code": failure[1], "message": failure[2],
        "charge": charge["id"], "payment_method": {"type": "card", "card": {"last4": number[-4:]}}})
    save(db, charge, owner)
    save(db, intent, owner)
    save(db, session, owner)
    emit(db, "charge.failed", public(charge), account)
    emit(db, "payment_intent.payment_failed", public(intent), account)
    return failure[2]


def _succeed(db, session, intent, owner, number, session_event: str) -> None:
    account = _acct(owner)
    charge = _charge(intent, number, status="succeeded")
    intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
    session.update(status="complete", payment_status="paid", url=None)
    session.pop("_async", None)
    save(db, charge, owner)
    save(db, intent, owner)
    save(db, session, owner)
    emit(db, "charge.succeeded", public(charge), account)
    emit(db, "payment_intent.succeeded", public(intent), account)
    emit(db, session_event, public(session), account)


def settle(db, session: dict, owner: str, outcome: str | None = None) -> dict:
    """A payment that was confirming ends (its time came, or the control API says how)."""
    outcome = outcome or session.get("_async")
    if not session.get("_async"):
        raise ValueError("this Checkout Session has no payment waiting for confirmation")
    intent = objects.get(db, session["payment_intent"], owner)
    if outcome == "succeeded":
        _succeed(db, session, intent, owner, session.get("_card", "4000002500001001"),
                 "checkout.session.async_payment_succeeded")
    else:
        intent.update(status="requires_payment_method", last_payment_error={
            "type": "card_error", "code": "payment_failed", "message": ASYNC_FAILURE})
        session.pop("_async", None)
        save(db, intent, owner)
        save(db, session, owner)
        emit(db, "payment_intent.payment_failed", public(intent), _acct(owner))
        emit(db, "checkout.session.async_payment_failed", public(session), _acct(owner))
    return session


def settle_due(store) -> int:
    """The delivery thread's tick: settle every confirming payment whose time has come."""
    import json

    with store.read() as db:  # idle most of the time: look before taking the write lock
        if db.execute("SELECT 1 FROM objects WHERE due IS NOT NULL AND due<=? LIMIT 1",
                      (time.time(),)).fetchone() is None:
            return 0
    with store.tx() as db:
        rows = db.execute("SELECT doc, account FROM objects WHERE kind='checkout.session' AND due IS NOT NULL "
                          "AND due<=?", (time.time(),)).fetchall()
        for row in rows:
            session = json.loads(row["doc"])
            db.execute("UPDATE objects SET due=NULL WHERE id=?", (session["id"],))
            if session.get("_async"):
                settle(db, session, row["account"])
    return len(rows)


def refund(db, charge: dict, owner: str, amount: int | None = None, reason: str | None = None) -> dict:
    left = charge["amount_captured"] - charge["amount_refunded"]
    amount = left if amount is None else amount
    if charge["status"] != "succeeded" or left <= 0:
        raise ApiError(400, "invalid_request_error", f"Charge {charge['id']} has already been refunded.",
                       code="charge_already_refunded")
    if not 0 < amount <= left:
        raise ApiError(400, "invalid_request_error", f"Refund amount ({amount}) is greater than unrefunded "
                       f"amount on charge ({left})", param="amount")
    refund_doc = {"id": new_id("re"), "object": "refund", "amount": amount, "charge": charge["id"],
                  "created": int(time.time()), "currency": charge["currency"], "metadata": {},
                  "payment_intent": charge["payment_intent"], "reason": reason, "status": "succeeded"}
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
    save(db, refund_doc, owner)
    save(db, charge, owner)
    emit(db, "charge.refunded", public(charge), _acct(owner), previous=previous)
    emit(db, "refund.created", public(refund_doc), _acct(owner))
    return refund_doc


DISPUTE_REASONS = ("fraudulent", "duplicate", "product_not_received", "subscription_canceled", "unrecognized",
                   "credit_not_processed", "general")


def dispute(db, charge: dict, owner: str, reason: str = "fraudulent") -> dict:
    dispute_doc = {"id": new_id("du"), "object": "dispute", "amount": charge["amount"], "charge": charge["id"],
                   "created": int(time.time()), "currency": charge["currency"], "livemode": False,
                   "metadata": {}, "payment_intent": charge["payment_intent"], "reason": reason,
                   "status": "needs_response", "is_charge_refundable": False}
    charge["disputed"] = True
    save(db, dispute_doc, owner)
    save(db, charge, owner)
    emit(db, "charge.dispute.created", public(dispute_doc), _acct(owner))
    return dispute_doc
