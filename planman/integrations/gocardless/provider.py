"""GoCardless as a provider: partner OAuth ("Connect with GoCardless"), the
mandate and collection sections of client and invoice pages, "Set up Direct
Debit and pay" on the client payment page, and GoCardless's webhooks."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from decimal import Decimal

import gocardless_pro
import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from flask import current_app, redirect, request, session

from planman.extensions import db
from planman.integrations.base import PaymentStart, Provider, Tenant, WebhookEventData, WebhookVerificationFailed
from planman.integrations.errors import IntegrationError, TemporaryFailure
from planman.integrations.gocardless import client, mapping, services
from planman.integrations.tokens import load_token

log = logging.getLogger(__name__)

STATE_KEY = "gocardless_oauth_state"
SIGNATURE_HEADER = "Webhook-Signature"
# GoCardless's own answer for a delivery whose signature does not match.
INVALID_SIGNATURE = 498
NEVER_EXPIRES = 4102444800  # the token has no expiry (REFERENCE.md section 1)


class GoCardlessProvider(Provider):
    key = "gocardless"
    label = "GoCardless"
    summary = ("Collect invoice payments automatically from your clients by Direct Debit, "
               "with your own GoCardless account.")
    kind = "payments"
    record_types = ()
    accepts_webhooks = True
    webhook_max_bytes = 1024 * 1024  # several events per delivery
    account_event_types = ("creditors.", "organisations.")  # its details; "disconnected" (REFERENCE.md)
    pay_button_label = "Set up Direct Debit and pay"
    connect_label = "Connect with GoCardless"
    settings_template = "integrations/gocardless/_settings.html"

    # -- set-up ---------------------------------------------------------------------------
    def init_app(self, app) -> None:
        from planman.integrations.gocardless import jobs, views

        origins = app.config.setdefault("CSP_FORM_ACTION_ORIGINS", set())
        # The connect button redirects to GoCardless's consent page, the pay button to its hosted flow.
        origins.update({app.config["GOCARDLESS_CONNECT_URL"], app.config["GOCARDLESS_PAY_URL"]})
        if "gocardless" not in app.blueprints:
            app.register_blueprint(views.bp)
        jobs.register_cli(app)

    def is_configured(self, app) -> bool:
        return bool(app.config["GOCARDLESS_CLIENT_ID"] and app.config["GOCARDLESS_CLIENT_SECRET"])

    # -- connect flow -----------------------------------------------------------------------
    def authorize_redirect(self, redirect_uri: str):
        from flask_login import current_user

        state = secrets.token_urlsafe(32)
        session[STATE_KEY] = state
        session[STATE_KEY + "_redirect"] = redirect_uri
        return redirect(client.authorize_url(redirect_uri, state, email=current_user.email,
                                             organisation_name=current_user.firm.name))

    def complete_authorization(self) -> tuple[dict, list[Tenant]]:
        expected = session.pop(STATE_KEY, None)
        redirect_uri = session.pop(STATE_KEY + "_redirect", "")
        if not expected or not hmac.compare_digest(expected, request.args.get("state", "")):
            raise MismatchingStateError()
        if request.args.get("error"):
            raise OAuthError(error=request.args["error"], description=request.args.get("error_description"))
        try:
            token = client.exchange_code(request.args.get("code", ""), redirect_uri)
        except client.OAuthRefused as refused:
            raise OAuthError(error=refused.error, description=refused.description) from None
        organisation = str(token.get("organisation_id") or "")
        if not organisation or not token.get("access_token"):
            return {}, []
        kept = {"access_token": token["access_token"], "expires_at": NEVER_EXPIRES, "scope": token.get("scope", "")}
        return kept, [Tenant(tenant_id=organisation, name=token.get("email") or organisation, kind="organisation")]

    def disconnect(self, connection) -> list[str]:
        token = load_token(connection) or {}
        try:
            client.revoke(token.get("access_token") or "")
        except client.OAuthRefused as refused:
            log.info("gocardless revoke: %s", refused.error)  # revoked already, from the dashboard
        except requests.RequestException as error:
            log.info("gocardless revoke failed: %s", type(error).__name__)
            return ["GoCardless could not be reached to disconnect PlanMan; remove PlanMan from the connected "
                    "apps in your GoCardless dashboard to be sure."]
        return []

    def load_tenant_details(self, connection) -> None:
        try:
            creditors = client.api(connection).creditors.list().records
        except services.TRANSIENT as error:
            raise TemporaryFailure("GoCardless did not answer. Try Refresh in a moment.", detail=repr(error)) from None
        except gocardless_pro.errors.ApiError as error:
            raise IntegrationError("GoCardless did not answer with this account's details. Try Refresh in a moment.",
                                   detail=str(error)) from None
        _remember_creditor(connection, creditors[0].attributes if creditors else {})

    def export(self, connection, record_type, record, *, user_id, intent):
        raise IntegrationError("GoCardless collects payments; it does not take clients or invoices.")

    # -- pages ------------------------------------------------------------------------------
    def record_section(self, connection, record_type: str, record):
        from planman.integrations.gocardless import views

        return views.record_section(self, connection, record_type, record)

    # -- the client payment page --------------------------------------------------------------
    def collections_under_way(self, invoice) -> list[tuple[str, Decimal]]:
        return [(c.payment_id or "", c.amount) for c in services.collections_for(invoice)
                if c.status in mapping.COLLECTING]

    def can_collect(self, invoice, amount) -> bool:
        # A Direct Debit scheme takes the currency, and one collection at a time (it collects all that is due).
        return invoice.currency.upper() in mapping.SCHEMES and services.open_collection(invoice) is None

    def start_payment(self, connection, invoice, amount: Decimal, *, return_url: str, attempt: str = "",
                      shown_at=None) -> PaymentStart:
        # GoCardless's pages set up a mandate and hold no amount: PlanMan collects what is left itself.
        mandate = services.mandate_for(invoice.client)
        try:
            if mandate is not None and mandate.mandate_id and mandate.status in mapping.MANDATE_TAKES_PAYMENTS:
                # Set up already: collect against it and say it is on its way.
                services.collect(connection, invoice, amount=amount)
                return PaymentStart(url=f"{return_url}?returned={self.key}")
            return PaymentStart(url=services.ask_for_mandate(connection, invoice.client, invoice=invoice,
                                                             redirect_uri=f"{return_url}?returned={self.key}",
                                                             exit_uri=return_url))
        except IntegrationError as error:
            log.warning("gocardless pay for invoice %s: %s", invoice.id, error.detail or error.user_message)
            raise TemporaryFailure("Direct Debit is not available right now. Please try again in a few minutes.",
                                   detail=error.detail) from None

    # -- webhooks -------------------------------------------------------------------------------
    def verify_webhook(self, raw_body: bytes, headers) -> list[WebhookEventData]:
        secret = current_app.config["GOCARDLESS_WEBHOOK_SECRET"]
        if not secret:  # an empty HMAC key is one anybody can sign with
            raise WebhookVerificationFailed("GoCardless webhooks are not set up on this server.", status=404)
        signature = headers.get(SIGNATURE_HEADER) or ""
        if not signature:
            raise WebhookVerificationFailed("No Webhook-Signature header.", status=400)
        expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.strip().lower()):
            raise WebhookVerificationFailed("Signature does not match.", status=INVALID_SIGNATURE)
        try:
            events = json.loads(raw_body.decode("utf-8"))["events"]
            return [WebhookEventData(event_id=str(event["id"]),
                                     event_type=f"{event['resource_type']}.{event['action']}",
                                     account=str((event.get("links") or {}).get("organisation") or ""),
                                     payload=event) for event in events]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise WebhookVerificationFailed("Signed, but not GoCardless events.", status=400) from None

    def handle_webhook_event(self, event, connection) -> None:
        if connection is None:
            log.info("gocardless event %s (%s) names no organisation: ignored", event.event_id, event.event_type)
            return
        from planman.integrations.gocardless import events

        events.handle(self, connection, json.loads(event.payload))

    # -- presentation -------------------------------------------------------------------------
    def settings_problems(self, connection) -> list[str]:
        creditor = (connection.settings or {}).get("gocardless_creditor")
        if creditor and creditor.get("verification_status") != "successful":
            return [mapping.verification_words(creditor.get("verification_status") or "")]
        return []


def _remember_creditor(connection, creditor: dict) -> None:
    settings = dict(connection.settings or {})
    settings["gocardless_creditor"] = mapping.creditor_summary(creditor)
    settings["details_state"] = "loaded"
    connection.settings = settings
    connection.tenant_name = creditor.get("name") or connection.tenant_name
    db.session.commit()
