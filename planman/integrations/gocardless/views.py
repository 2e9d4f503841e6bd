"""The firm's GoCardless actions (ask for a Direct Debit, collect, retry, the
automatic-collection setting) and the page sections that offer them. Thin:
each turns a POST into one service call and a message."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from planman.extensions import db
from planman.integrations.errors import IntegrationError
from planman.integrations.gocardless import jobs, mapping, services
from planman.integrations.gocardless.models import GoCardlessCollection
from planman.integrations.links import connection_for
from planman.models import Client, Invoice
from planman.security import public_url
from planman.tenancy import get_for_firm_or_404

bp = Blueprint("gocardless", __name__)
KEY = "gocardless"


def _connection_or_redirect(back):
    connection = connection_for(current_user.firm_id, KEY)
    if connection is None or not connection.is_usable:
        flash("Connect with GoCardless first (Setup > Integrations > GoCardless).", "error")
        return None, redirect(back)
    return connection, None


# -- what client and invoice pages show ---------------------------------------------------

def record_section(provider, connection, record_type: str, record):
    if record_type == "client":
        mandate = services.mandate_for(record)
        return "integrations/gocardless/_client.html", {
            "gc_mandate": mandate, "gc_state": mapping.mandate_state(mandate.status if mandate else None),
            "gc_words": mapping.mandate_words(mandate.status if mandate else None)}
    if record_type == "invoice":
        mandate = services.mandate_for(record.client)
        collections = services.collections_for(record)
        latest = collections[-1] if collections else None
        return "integrations/gocardless/_invoice.html", {
            "gc_mandate": mandate, "gc_latest": latest,
            "gc_words": mapping.collection_words(latest) if latest else "",
            "gc_can_collect": services.can_collect(record, mandate),
            "gc_can_retry": bool(latest and latest.status == "failed" and mandate is not None
                                 and mandate.status in mapping.MANDATE_TAKES_PAYMENTS and record.amount_due > 0),
            "gc_charge_date": _earliest(mandate),
            "gc_mandate_words": mapping.mandate_words(mandate.status if mandate else None),
            "gc_auto": bool((connection.settings or {}).get("auto_collect")),
            "gc_short_date": mapping.short_date}
    return None


def _earliest(mandate):
    if mandate is None or mandate.next_possible_charge_date is None:
        return None
    return max(mandate.next_possible_charge_date, date.today())


# -- actions ------------------------------------------------------------------------------

@bp.post("/clients/<int:client_id>/direct-debit")
@login_required
def ask(client_id: int):
    client_row = get_for_firm_or_404(Client, client_id)
    back = url_for("clients.view", client_id=client_row.id, _anchor="direct-debit")
    connection, response = _connection_or_redirect(back)
    if response:
        return response
    done = public_url("gocardless.set_up_done")
    try:
        services.ask_for_mandate(connection, client_row, redirect_uri=done, exit_uri=f"{done}?left=1")
    except IntegrationError as error:
        flash(error.user_message, "error")
    else:
        flash(f"Direct Debit link ready: send it to {client_row.name}. An earlier link keeps working until "
              f"it expires.", "success")
    return redirect(back)


@bp.post("/invoices/<int:invoice_id>/direct-debit")
@login_required
def collect(invoice_id: int):
    invoice = get_for_firm_or_404(Invoice, invoice_id)
    back = url_for("invoices.view", invoice_id=invoice.id, _anchor="direct-debit")
    connection, response = _connection_or_redirect(back)
    if response:
        return response
    try:
        collection = services.collect(connection, invoice, user_id=current_user.id)
    except IntegrationError as error:
        flash(error.user_message, "error")
    else:
        flash(mapping.collection_words(collection) + ".", "success")
    return redirect(back)


@bp.post("/invoices/<int:invoice_id>/direct-debit/<int:collection_id>/retry")
@login_required
def retry(invoice_id: int, collection_id: int):
    invoice = get_for_firm_or_404(Invoice, invoice_id)
    collection = get_for_firm_or_404(GoCardlessCollection, collection_id)
    if collection.invoice_id != invoice.id:
        abort(404)
    back = url_for("invoices.view", invoice_id=invoice.id, _anchor="direct-debit")
    connection, response = _connection_or_redirect(back)
    if response:
        return response
    try:
        collection = services.retry(connection, collection, invoice, user_id=current_user.id)
    except IntegrationError as error:
        flash(error.user_message, "error")
    else:
        flash(mapping.collection_words(collection) + ".", "success")
    return redirect(back)


@bp.post("/integrations/gocardless/automatic-collection")
@login_required
def automatic():
    if not current_user.is_admin:
        abort(404)
    back = url_for("integrations.provider", provider_key=KEY)
    connection, response = _connection_or_redirect(back)
    if response:
        return response
    settings = dict(connection.settings or {})
    settings["auto_collect"] = request.form.get("auto_collect") == "on"
    connection.settings = settings
    db.session.commit()
    if settings["auto_collect"]:
        jobs.schedule_sweep()
        flash("Invoices of clients with an active Direct Debit will be collected on their due date.", "success")
    else:
        flash("Automatic collection is off: collect invoices by hand from their page.", "success")
    return redirect(back)


@bp.get("/direct-debit/set-up")
def set_up_done():
    """Where GoCardless's hosted flow sends the client back (no log-in, names nobody)."""
    return render_template("integrations/gocardless/set_up_done.html", left=bool(request.args.get("left")))
