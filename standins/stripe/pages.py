"""Browser pages: each account, whether it is connected, and the payments made on it."""
from __future__ import annotations

from flask import Blueprint, abort, render_template

from . import control, settings
from .checkout import money

bp = Blueprint("pages", __name__)


@bp.app_template_filter("stripe_money")
def stripe_money(minor, currency):
    return money(int(minor or 0), currency or "gbp")


@bp.get("/")
def index():
    with settings.store().read() as db:
        accounts = control.state_of(db)["accounts"]
    return render_template("stripe/index.html", accounts=accounts)


@bp.get("/accounts/<account_id>")
def account(account_id):
    with settings.store().read() as db:
        found = [a for a in control.state_of(db)["accounts"] if a["id"] == account_id]
    if not found:
        abort(404)
    return render_template("stripe/account.html", account=found[0],
                           sessions=list(reversed(found[0]["checkout_sessions"])),
                           intents={i["id"]: i for i in found[0]["payment_intents"]})
