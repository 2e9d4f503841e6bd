"""Browser pages: what each demo organisation holds, so a person trying PlanMan sees what arrived."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import re

from flask import Blueprint, abort, redirect, render_template, request, url_for

from . import bookkeeper, contacts, invoices, settings, webhooks
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
    with settings.store().tx() as db:
        hooks = webhooks.overview(db)
    return render_template("organisation.html", org=json.loads(row["doc"]), invoices=invs, contacts=people,
                           tenant_id=tid, webhooks=hooks, message=request.args.get("message", ""),
                           error=request.args.get("error", ""))


def _back(tenant_id: str, error: str = "", message: str = ""):
    return redirect(url_for(".organisation", tenant_id=tenant_id, error=error or None, message=message or None))


# A bookkeeper's actions, as in Xero's own screens (the same as the control API's; no log-in: a dev tool).

@bp.post("/orgs/<tenant_id>/invoices/<invoice_id>/status")
def invoice_status(tenant_id, invoice_id):
    status = request.form.get("status", "")
    if status not in ("AUTHORISED", "VOIDED", "DELETED"):
        return _back(tenant_id, error="Choose approve, void or delete.")
    with settings.store().tx() as db:
        doc = bookkeeper.set_status(db, invoice_id, status)
    return _back(tenant_id, message=f"Invoice {doc.get('InvoiceNumber', '')} is now {status}." if doc else "",
                 error="" if doc else bookkeeper.NO_INVOICE)


@bp.post("/orgs/<tenant_id>/invoices/<invoice_id>/pay")
def pay_invoice(tenant_id, invoice_id):
    with settings.store().tx() as db:
        doc, errors = bookkeeper.pay(db, invoice_id, {"amount": request.form.get("amount", "").strip(),
                                                      "reference": request.form.get("reference", "").strip()})
    return _back(tenant_id, error="; ".join(errors), message=f"Payment of {doc['Amount']:.2f} recorded." if doc else "")


@bp.post("/orgs/<tenant_id>/payments/<payment_id>/delete")
def remove_payment(tenant_id, payment_id):
    with settings.store().tx() as db:
        doc, errors = bookkeeper.remove_payment(db, payment_id)
    return _back(tenant_id, error="; ".join(errors), message="Payment removed." if doc else "")


@bp.post("/orgs/<tenant_id>/contacts/<contact_id>/archive")
def archive_contact(tenant_id, contact_id):
    with settings.store().tx() as db:
        doc = bookkeeper.archive_contact(db, contact_id)
    return _back(tenant_id, error="" if doc else bookkeeper.NO_CONTACT, message=f"{doc['Name']} archived." if doc else "")


@bp.post("/orgs/<tenant_id>/contacts/<contact_id>/rename")
def rename_contact(tenant_id, contact_id):
    name = request.form.get("name", "").strip()
    if not name or len(name) > 255:
        return _back(tenant_id, error="A contact's name is 1 to 255 characters.")
    with settings.store().tx() as db:
        doc, error = bookkeeper.rename_contact(db, contact_id, name)
    return _back(tenant_id, error=error, message="" if error else f"Renamed to {name}.")


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
