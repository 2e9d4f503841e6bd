"""The hosted payment page a Checkout Session's `url` opens (checkout.stripe.com in real life):
the account's name, what is paid for, a card form; then back to the session's success_url."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, abort, redirect, render_template, request

from . import objects, payments, settings

bp = Blueprint("checkout", __name__, url_prefix="/checkout")
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "xof", "xaf", "bif", "djf", "gnf", "kmf", "mga", "pyg", "rwf", "ugx",
                "vuv", "xpf"}


def money(minor: int, currency: str) -> str:
    places = 0 if currency in ZERO_DECIMAL else 2
    return f"{Decimal(minor).scaleb(-places):,.{places}f} {currency.upper()}"


def _load(db, session_id: str):
    owner = objects.owner(db, session_id)
    session = objects.get(db, session_id, owner, "checkout.session") if owner else None
    if session is None:
        abort(404)
    account = objects.account(db, owner) if owner != objects.PLATFORM else None
    return owner, session, account


def _page(session, account, *, message=None, status=200, form=None):
    name = ((account or {}).get("business_profile") or {}).get("name") or "PlanMan (platform)"
    return render_template("stripe/checkout.html", session=session, merchant=name,
                           total=money(session["amount_total"], session["currency"]), message=message,
                           form=form or {}, cards=CARD_HINTS), status


CARD_HINTS = (("4242 4242 4242 4242", "succeeds"), ("4000 0000 0000 0002", "is declined (generic decline)"),
              ("4000 0000 0000 9995", "is declined (insufficient funds)"),
              ("4000 0025 0000 1001", "confirms later (stand-in only: stands for a bank debit)"),
              ("4000 0025 0000 1019", "fails later (stand-in only)"))


@bp.get("/pay/<session_id>")
def page(session_id):
    with settings.store().read() as db:
        _owner, session, account = _load(db, session_id)
    return _page(session, account)


@bp.post("/pay/<session_id>")
def pay(session_id):
    number = request.form.get("cardnumber", "").replace(" ", "").replace("-", "")
    expiry, cvc = request.form.get("exp", "").strip(), request.form.get("cvc", "").strip()
    email = request.form.get("email", "").strip()
    form = {"cardnumber": request.form.get("cardnumber", ""), "exp": expiry, "email": email}
    with settings.store().tx() as db:
        owner, session, account = _load(db, session_id)
        if session["status"] != "open":
            return _page(session, account, status=409)
        problem = payments.card_problem(number, expiry, cvc)
        if problem:
            return _page(session, account, message=problem, status=422, form=form)
        declined = payments.pay(db, session, owner, number, email, settings.async_seconds(db))
    if declined:
        return _page(session, account, message=declined, status=402, form=form)
    return redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id), code=303)


@bp.get("/pay/<session_id>/cancel")
def cancel(session_id):
    with settings.store().read() as db:
        _owner, session, _account = _load(db, session_id)
    if not session.get("cancel_url"):
        abort(404)
    return redirect(session["cancel_url"], code=303)
