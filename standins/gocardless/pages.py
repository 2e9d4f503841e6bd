"""Browser pages: each organisation with its creditor's verification, mandates and
payments, and buttons that move time forward (the control API's advance)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from . import control, settings

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    with settings.store().read() as db:
        state = control.state_of(db)
    return render_template("gocardless/index.html", organisations=state["organisations"])


@bp.post("/organisations/<kind>/<resource_id>/advance")
def advance(kind, resource_id):
    if kind not in ("payments", "mandates"):
        return redirect(url_for(".index"))
    with settings.store().tx() as db:
        _, problem = control.advance(db, kind, resource_id, request.form.get("to") or None)
    if problem:
        flash(problem[0])
    return redirect(url_for(".index", _anchor=resource_id))


@bp.post("/organisations/creditors/<creditor_id>/verify")
def verify(creditor_id):
    with settings.store().tx() as db:
        control._set_verification(db, creditor_id, "successful")
    return redirect(url_for(".index"))
