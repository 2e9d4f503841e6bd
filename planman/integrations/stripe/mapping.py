"""Pure translations between PlanMan and Stripe's objects (no I/O).

Money is ``Decimal`` everywhere in PlanMan; Stripe counts integer minor units.
The conversion happens here and only here."""
from __future__ import annotations

from decimal import Decimal
from typing import Optional

# Currencies Stripe counts in whole units (docs.stripe.com/currencies#zero-decimal).
ZERO_DECIMAL = {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
                "XAF", "XOF", "XPF"}
# Counted in thousandths, the last digit 0 (docs.stripe.com/currencies, "three-decimal currencies"):
# PlanMan's amounts have two places, so they always are.
THREE_DECIMAL = {"BHD", "JOD", "KWD", "OMR", "TND"}
# Two-decimal in the API, but only whole units can be charged (docs.stripe.com/currencies, special cases).
WHOLE_UNITS_ONLY = {"ISK"}

INVOICE_KEY = "planman_invoice_id"


def _exponent(currency: str) -> int:
    code = currency.upper()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def can_charge(amount: Decimal, currency: str) -> bool:
    """Whether Stripe can charge exactly ``amount``: no finer fraction than the currency has."""
    whole = currency.upper() in ZERO_DECIMAL | WHOLE_UNITS_ONLY
    return amount > 0 and (amount == amount.to_integral_value() if whole else amount == round(amount, 2))


def to_minor_units(amount: Decimal, currency: str) -> int:
    """12.30 GBP -> 1230; refuses amounts with finer fractions than the currency has."""
    scaled = amount.scaleb(_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more decimal places than the currency")
    return int(scaled)


def from_minor_units(minor: int, currency: str) -> Decimal:
    return Decimal(int(minor)).scaleb(-_exponent(currency)).quantize(Decimal("0.01"))


def checkout_expiry(shown_at: Optional[int], now: int, minutes: int) -> int:
    """When a Checkout Session expires (a Unix time): ``minutes`` after the payment
    page was shown, so every resubmission of that page's form asks for the same
    session. A page shown so long ago that Stripe would refuse that (it wants 30
    minutes to 24 hours ahead), or not at all, counts from now, to the minute."""
    if shown_at is not None and shown_at <= now and shown_at + minutes * 60 >= now + 31 * 60:
        return shown_at + minutes * 60
    return now // 60 * 60 + minutes * 60


def checkout_session_params(*, invoice_id: int, invoice_number: str, firm_name: str, amount: Decimal,
                            currency: str, success_url: str, cancel_url: str, expires_at: int) -> dict:
    """The Checkout Session for paying ``amount`` of one invoice (REFERENCE.md section 3)."""
    metadata = {INVOICE_KEY: str(invoice_id)}
    return {
        "mode": "payment",
        "line_items": [{
            "quantity": 1,
            "price_data": {
                "currency": currency.lower(),
                "unit_amount": to_minor_units(amount, currency),
                "product_data": {"name": f"Invoice {invoice_number} from {firm_name}"[:250]},
            },
        }],
        "client_reference_id": str(invoice_id),
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": success_url,
        "expires_at": expires_at,
        "cancel_url": cancel_url,
    }


def invoice_id_of(obj: dict) -> Optional[int]:
    """The PlanMan invoice a session or PaymentIntent is for (our metadata, or the reference)."""
    value = (obj.get("metadata") or {}).get(INVOICE_KEY) or obj.get("client_reference_id")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def account_summary(account: dict) -> dict:
    """What the Stripe page shows about a connected account: can it take
    payments, and what Stripe still needs before it can."""
    requirements = account.get("requirements") or {}
    due = list(dict.fromkeys((requirements.get("past_due") or []) + (requirements.get("currently_due") or [])))
    return {
        "charges_enabled": bool(account.get("charges_enabled")),
        "details_submitted": bool(account.get("details_submitted")),
        "payouts_enabled": bool(account.get("payouts_enabled")),
        "disabled_reason": requirements.get("disabled_reason") or "",
        "requirements_due": due,
    }


def account_name(account: dict) -> str:
    profile = account.get("business_profile") or {}
    dashboard = (account.get("settings") or {}).get("dashboard") or {}
    return profile.get("name") or dashboard.get("display_name") or account.get("email") or account.get("id") or ""


def requirement_label(requirement: str) -> str:
    """``individual.verification.document`` -> "individual verification document"."""
    return requirement.replace(".", " ").replace("_", " ")


def failure_reason(payment_intent: dict) -> str:
    """Why a card payment failed, in the words Stripe gives the payer."""
    error = payment_intent.get("last_payment_error") or {}
    reason = error.get("message") or error.get("decline_code") or error.get("code") or ""
    return reason or "The payment did not go through."


# Later states win: a late "failed" never undoes a success, and a refund or
# dispute (also when it arrives before the success) is never undone by it.
STATE_RANK = {"pending": 0, "failed": 1, "succeeded": 2, "refunded": 3, "disputed": 3}


def moves_forward(current: Optional[str], new: str) -> bool:
    if current is None:
        return True
    return STATE_RANK.get(new, 0) > STATE_RANK.get(current, 0)
