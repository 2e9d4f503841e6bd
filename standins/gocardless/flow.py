"""The hosted Billing Request Flow page (what `authorisation_url` opens): the
client confirms their details and bank account and authorises the mandate.

Completing it creates the customer, their bank account and the mandate
(pending_submission, as a new Bacs mandate is), fulfils the billing request
and sends billing_requests.fulfilled with mandates.created and
customers.created in one delivery, then sends the client to redirect_uri.
A flow works once, and not after it expires; "Cancel" goes to exit_uri."""
from __future__ import annotations

import json
from datetime import date

from flask import Blueprint, redirect, render_template, request

from . import resources, settings
from .settings import cfg

bp = Blueprint("flow", __name__)
FIELDS = ("given_name", "family_name", "email", "company_name", "address_line1", "city", "postal_code")


def _load(db, flow_id):
    organisation, flow = resources.find(db, "billing_request_flows", flow_id)
    if flow is None:
        return None, None, None
    billing_request = resources.get(db, organisation, "billing_requests", flow["links"]["billing_request"])
    return organisation, flow, billing_request


@bp.get("/flow/<flow_id>")
def page(flow_id):
    with settings.store().read() as db:
        organisation, flow, billing_request = _load(db, flow_id)
        creditor = None
        if organisation:
            creditor = json.loads(db.execute("SELECT creditor FROM organisations WHERE id=?",
                                             (organisation,)).fetchone()["creditor"])
    if flow is None:
        return render_template("gocardless/error.html", message="This link does not work."), 404
    expired = flow["expires_at"][:10] < date.today().isoformat()
    return render_template("gocardless/flow.html", flow=flow, billing_request=billing_request, creditor=creditor,
                           expired=expired, fields=FIELDS, done=billing_request["status"] == "fulfilled")


@bp.post("/flow/<flow_id>")
def authorise(flow_id):
    form = {name: (request.form.get(name) or "").strip() for name in FIELDS}
    with settings.store().tx() as db:
        organisation, flow, billing_request = _load(db, flow_id)
        if flow is None:
            return render_template("gocardless/error.html", message="This link does not work."), 404
        if billing_request["status"] != "pending" or flow["expires_at"][:10] < date.today().isoformat():
            return render_template("gocardless/error.html",
                                   message="This Direct Debit set-up link has already been used or has expired."), 410
        if not (form["given_name"] and form["family_name"] and form["email"]):
            return render_template("gocardless/flow.html", flow=flow, billing_request=billing_request,
                                   creditor=None, expired=False, fields=FIELDS, done=False,
                                   problem="Your name and e-mail address are needed."), 422
        events = resources.Events(db, organisation)
        customer_id = (billing_request.get("links") or {}).get("customer")
        customer = resources.get(db, organisation, "customers", customer_id) if customer_id else None
        if customer is None:
            customer = {"id": resources.new_id("customers"), "created_at": resources.now_iso(),
                        "country_code": "GB", "metadata": {}}
            events.add("customers", "created", {"customer": customer["id"]}, origin="customer",
                       cause="customer_created", description="Customer created by the billing request flow.")
        customer.update({k: v for k, v in form.items() if v})
        resources.put(db, organisation, "customers", customer)
        account = {"id": resources.new_id("customer_bank_accounts"), "account_holder_name":
                   f"{form['given_name']} {form['family_name']}".upper(), "account_number_ending": "11",
                   "bank_name": "BARCLAYS BANK PLC", "currency": "GBP", "enabled": True,
                   "links": {"customer": customer["id"]}}
        resources.put(db, organisation, "customer_bank_accounts", account)
        mandate_request = billing_request.get("mandate_request") or {}
        mandate = {"id": resources.new_id("mandates"), "created_at": resources.now_iso(),
                   "status": "pending_submission", "scheme": mandate_request.get("scheme") or "bacs",
                   "reference": f"PLANMAN-{resources.new_id('events')[2:8]}",
                   "next_possible_charge_date": resources.next_charge_date(cfg("CHARGE_LEAD_DAYS")),
                   "metadata": {}, "links": {"customer": customer["id"], "customer_bank_account": account["id"],
                                             "creditor": billing_request["links"]["creditor"]}}
        resources.put(db, organisation, "mandates", mandate)
        billing_request["status"] = "fulfilled"
        billing_request["links"].update(customer=customer["id"], customer_bank_account=account["id"],
                                        mandate_request_mandate=mandate["id"])
        resources.put(db, organisation, "billing_requests", billing_request)
        events.add("billing_requests", "fulfilled", {"billing_request": billing_request["id"]}, origin="customer",
                   cause="billing_request_fulfilled", description="This billing request has been fulfilled.",
                   resource_metadata=billing_request.get("metadata"))
        events.add("mandates", "created", {"mandate": mandate["id"]}, origin="customer", cause="mandate_created",
                   description="Mandate created via the billing request flow.", scheme=mandate["scheme"])
        events.send()
    if flow.get("redirect_uri"):
        return redirect(flow["redirect_uri"], code=303)
    return render_template("gocardless/flow.html", flow=flow, billing_request=billing_request, creditor=None,
                           expired=False, fields=FIELDS, done=True)


@bp.get("/flow/<flow_id>/exit")
def leave(flow_id):
    with settings.store().read() as db:
        _, flow, _ = _load(db, flow_id)
    if flow is None:
        return render_template("gocardless/error.html", message="This link does not work."), 404
    if flow.get("exit_uri"):
        return redirect(flow["exit_uri"])
    return render_template("gocardless/error.html", message="You left without setting up a Direct Debit."), 200
