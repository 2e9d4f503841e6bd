"""Browser pages: what each demo organisation holds, so a person trying PlanMan sees what arrived."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import re

from flask import Blueprint, abort, redirect, render_template, request, url_for

from . import contacts, invoices, settings
from .xdates import ms_of

bp = Blueprint("pages", __name__)


@bp.app_template_filter("when")
def when(xero_date: str) -> str:
    """/Date(ms+0000)/ as a person reads it."""
    return datetime.fromtimestamp(ms_of(xero_date) / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_filter("amount")
def amount(value) -> str:
    """2 decimal places, or up to 4 when a unit price has them (unitdp=4)."""
    exact = Decimal(str(value))
    return f"{exact:,.2f}" if exact == exact.quantize(Decimal("0.01")) else f"{exact.normalize():,}"


def organisations(db) -> list[dict]:
    """Each organisation with how many records arrived (this page, and the stand-ins' index)."""
    orgs = []
    for row in db.execute("SELECT tenant_id, short_code, doc FROM organisations ORDER BY tenant_id").fetchall():
        tid = row["tenant_id"]
        count = lambda sql: db.execute(sql, (tid,)).fetchone()[0]  # noqa: E731
        orgs.append({"tenant_id": tid, "short_code": row["short_code"], "name": json.loads(row["doc"])["Name"],
                     "contacts": count("SELECT COUNT(*) FROM contacts WHERE tenant_id=?"),
                     "invoices": count("SELECT COUNT(*) FROM invoices WHERE tenant_id=?"),
                     "connections": count("SELECT COUNT(*) FROM connections WHERE tenant_id=?")})
    return orgs


@bp.get("/")
def index():
    with settings.store().read() as db:
        orgs = organisations(db)
    return render_template("index.html", orgs=orgs)


@bp.get("/orgs/<tenant_id>")
def organisation(tenant_id):
    with settings.store().read() as db:
        row = db.execute("SELECT doc FROM organisations WHERE tenant_id=?", (tenant_id.lower(),)).fetchone()
        if row is None:
            abort(404)
        tid = tenant_id.lower()
        # Newest first: the invoice just pushed is at the top.
        invs = [invoices.render(db, tid, d, True) for d in reversed(invoices.all_invoices(db, tid))]
        people = sorted(contacts.all_contacts(db, tid), key=lambda c: c["Name"].casefold())
    return render_template("organisation.html", org=json.loads(row["doc"]), invoices=invs, contacts=people)


@bp.get("/organisationlogin/default.aspx")
def deep_link():
    """Xero's deep-link entry point (REFERENCE.md section 8): the organisation by
    ShortCode, then the record named in ``redirecturl``, here as an anchor."""
    with settings.store().read() as db:
        row = db.execute("SELECT tenant_id FROM organisations WHERE short_code=?",
                         (request.args.get("shortcode", ""),)).fetchone()
    if row is None:
        abort(404)
    target = request.args.get("redirecturl", "")
    invoice = re.search(r"InvoiceID=([0-9a-fA-F-]{36})", target)
    contact = re.search(r"/Contacts/View/([0-9a-fA-F-]{36})", target)
    anchor = f"invoice-{invoice.group(1)}" if invoice else f"contact-{contact.group(1)}" if contact else None
    return redirect(url_for(".organisation", tenant_id=row["tenant_id"], _anchor=anchor))
