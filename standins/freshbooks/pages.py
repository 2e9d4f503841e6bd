"""Browser pages: each FreshBooks business with the clients and invoices that arrived."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for

from . import control, settings

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    with settings.store().read() as db:
        accounts = control.accounts(db)
    return render_template("freshbooks/index.html", accounts=accounts)


@bp.get("/accounts/<account_id>")
def account(account_id):
    with settings.store().read() as db:
        found = [a for a in control.accounts(db) if a["account_id"] == account_id]
    if not found:
        abort(404)
    business = found[0]
    clients = {c["id"]: c for c in business["clients"]}
    return render_template("freshbooks/account.html", business=business, clients=clients,
                           invoices=list(reversed(business["invoices"])))  # newest first


@bp.get("/accounts/<account_id>/<kind>/<int:record_id>")
def record(account_id, kind, record_id):
    """A link to one client or invoice (what a "View in FreshBooks" link can open here)."""
    if kind not in ("clients", "invoices"):
        abort(404)
    return redirect(url_for(".account", account_id=account_id, _anchor=f"{kind[:-1]}-{record_id}"))
