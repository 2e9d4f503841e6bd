"""Browser pages: each Sage business with the contacts and sales invoices that arrived, and the
record links PlanMan shows ("View in Sage"): /businesses/<id>/contacts/<id> and
/businesses/<id>/sales_invoices/<id> open the business's page at that record."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for

from . import control, settings

bp = Blueprint("pages", __name__)
KINDS = {"contacts": "contact", "sales_invoices": "sales_invoice"}


@bp.get("/")
def index():
    with settings.store().read() as db:
        businesses = control.businesses(db)
    return render_template("sage/index.html", businesses=businesses)


@bp.get("/businesses/<business_id>")
def business(business_id):
    with settings.store().read() as db:
        found = [b for b in control.businesses(db) if b["id"] == business_id]
    if not found:
        abort(404)
    return render_template("sage/business.html", business=found[0],
                           invoices=list(reversed(found[0]["sales_invoices"])))  # newest first


@bp.get("/businesses/<business_id>/<kind>/<record_id>")
def record(business_id, kind, record_id):
    if kind not in KINDS:
        abort(404)
    return redirect(url_for(".business", business_id=business_id, _anchor=f"{KINDS[kind]}-{record_id}"))
