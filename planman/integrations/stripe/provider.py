"""Stripe as a provider: Connect OAuth for Standard accounts, Checkout
Sessions on the firm's account, and the Connect webhook's events."""
from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
import uuid
from decimal import Decimal
from typing import Optional

import requests
import sqlalchemy as sa
import stripe
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from flask import current_app, redirect, request, session

from planman.extensions import db
from planman.integrations import connections
from planman.integrations.base import PaymentStart, Provider, Tenant, WebhookEventData, WebhookVerificationFailed
from planman.integrations.errors import IntegrationError, TemporaryFailure
from planman.integrations.stripe import client, mapping
from planman.models import Firm, Invoice, Payment
from planman.payments import services

log = logging.getLogger(__name__)

STATE_KEY = "stripe_oauth_state"
SIGNATURE_HEADER = "Stripe-Signature"


class StripeProvider(Provider):
    key = "stripe"
    label = "Stripe"
    summary = "Let your clients pay your invoices by credit and debit card, with your own Stripe account."
    kind = "payments"
    record_types = ()
    connect_label = "Connect To Stripe"
    reconnect_label = "Reconnect To Stripe"
    tenant_word, tenant_words = "account", "accounts"
    details_noun = "account details"
    accepts_webhooks = True
    webhook_max_bytes = 512 * 1024
    account_event_types = ("account.",)  # account.updated, account.application.deauthorized
    pay_button_label = "Pay by card"
    settings_template = "integrations/stripe/_settings.html"

    # -- set-up ------------------------------------------------------------------
    def init_app(self, app) -> None:
        origins = app.config.setdefault("CSP_FORM_ACTION_ORIGINS", set())
        # The connect button's POST redirects to Stripe's consent page, the pay
        # button's to Checkout: both are form redirects the CSP must allow.
        origins.update({app.config["STRIPE_CONNECT_URL"], app.config["STRIPE_CHECKOUT_URL"]})

    def is_configured(self, app) -> bool:
        return bool(app.config["STRIPE_CLIENT_ID"] and app.config["STRIPE_SECRET_KEY"])

    # -- connect flow ---------------------------------------------------------------
    def authorize_redirect(self, redirect_uri: str):
        state = secrets.token_urlsafe(32)
        session[STATE_KEY] = state
        return redirect(client.authorize_url(redirect_uri, state))

    def complete_authorization(self) -> tuple[dict, list[Tenant]]:
        expected = session.pop(STATE_KEY, None)
        if not expected or not hmac.compare_digest(expected, request.args.get("state", "")):
            raise MismatchingStateError()
        if request.args.get("error"):
            raise OAuthError(error=request.args["error"], description=request.args.get("error_description"))
        try:
            token = client.exchange_code(request.args.get("code", ""))
        except stripe.oauth_error.OAuthError as error:
            raise OAuthError(error=error.code or "invalid_request", description=error.user_message) from None
        except stripe.APIConnectionError as error:
            raise requests.ConnectionError(str(error)) from None
        except stripe.StripeError as error:
            raise IntegrationError("Stripe did not finish connecting.", detail=str(error)) from None
        account = token.get("stripe_user_id") or ""
        if not account:
            return token, []
        # PlanMan calls Stripe with the platform key and Stripe-Account, so the
        # account's own access token is not kept (REFERENCE.md section 8).
        kept = {"access_token": "", "expires_at": 4102444800, "scope": token.get("scope", ""),
                "livemode": bool(token.get("livemode"))}
        return kept, [Tenant(tenant_id=account, name=account, kind="account")]

    def disconnect(self, connection) -> list[str]:
        try:
            client.deauthorize(connection.tenant_id)
        except stripe.oauth_error.OAuthError as error:
            log.info("stripe deauthorize: %s", error.code)  # already disconnected on Stripe's side
        except stripe.StripeError as error:
            log.info("stripe deauthorize failed: %s", type(error).__name__)
            return ["Stripe could not be reached to disconnect PlanMan; remove PlanMan under Settings > "
                    "Connected accounts in your Stripe dashboard to be sure."]
        return []

    def load_tenant_details(self, connection) -> None:
        try:
            account = client.retrieve_account(connection.tenant_id)
        except stripe.StripeError as error:
            raise IntegrationError("Stripe did not answer with this account's details. Try Refresh in a moment.",
                                   detail=str(error)) from None
        _remember_account(connection, account)

    def export(self, connection, record_type, record, *, user_id):
        raise IntegrationError("Stripe takes payments; it does not take clients or invoices.")

    # -- the client payment page -------------------------------------------------------
    def start_payment(self, connection, invoice, amount: Decimal, *, return_url: str, attempt: str = "",
                      shown_at: Optional[int] = None) -> PaymentStart:
        firm = db.session.get(Firm, invoice.firm_id)
        # A Checkout page left open is a second payment waiting: it expires an hour
        # (STRIPE_CHECKOUT_MINUTES) after the payment page was shown.
        expires_at = mapping.checkout_expiry(shown_at, int(time.time()), current_app.config["STRIPE_CHECKOUT_MINUTES"])
        params = mapping.checkout_session_params(
            invoice_id=invoice.id, invoice_number=invoice.number, firm_name=firm.name, amount=amount,
            currency=invoice.currency, success_url=f"{return_url}?returned={self.key}", cancel_url=return_url,
            expires_at=expires_at)
        # One key per attempt (the page's form), amount and expiry: a resubmitted form or
        # the SDK's own retries get the same session, a new visit a new one. (Stripe
        # refuses a key sent again with other parameters: the expiry is part of it.)
        minor = mapping.to_minor_units(amount, invoice.currency)
        key = f"planman-invoice-{invoice.id}-{minor}-{attempt or uuid.uuid4().hex}-{expires_at}"
        try:
            checkout = client.create_checkout_session(connection.tenant_id, params, key)
        except stripe.StripeError as error:
            log.warning("stripe checkout session for invoice %s failed: %s %s", invoice.id,
                        type(error).__name__, getattr(error, "code", ""))
            raise TemporaryFailure("Card payment is not available right now. Please try again in a few minutes.",
                                   detail=str(error)) from None
        return PaymentStart(url=checkout["url"], page_reference=checkout["id"], page_amount=amount,
                            page_expires_at=int(checkout.get("expires_at") or expires_at))

    def close_payment_page(self, connection, page_reference: str, tenant_id: str) -> None:
        def not_reached(error) -> TemporaryFailure:
            return TemporaryFailure("Stripe could not be reached to close the card payment page.",
                                    detail=f"{type(error).__name__}: {error}")

        try:
            client.expire_checkout_session(tenant_id, page_reference)
            return
        except stripe.InvalidRequestError as error:
            refusal = error  # Stripe expires only an open session: see whether it still is
        except stripe.StripeError as error:
            raise not_reached(error) from None
        try:
            status = client.retrieve_checkout_session(tenant_id, page_reference).get("status")
        except stripe.InvalidRequestError as error:  # not (or no longer) on this account: nothing to close
            raise IntegrationError("Stripe does not know the card payment page.",
                                   detail=f"{refusal}; {error}") from None
        except stripe.StripeError as error:
            raise not_reached(error) from None
        if status == "open":
            raise TemporaryFailure("Stripe did not close the card payment page.", detail=str(refusal))

    # -- webhooks ----------------------------------------------------------------------------
    def verify_webhook(self, raw_body: bytes, headers) -> list[WebhookEventData]:
        secret = current_app.config["STRIPE_WEBHOOK_SECRET"]
        if not secret:  # an empty HMAC key is one anybody can sign with
            raise WebhookVerificationFailed("Stripe webhooks are not set up on this server.", status=404)
        header = headers.get(SIGNATURE_HEADER)
        if not header:
            raise WebhookVerificationFailed("No Stripe-Signature header.", status=400)
        try:
            payload = raw_body.decode("utf-8")
            stripe.WebhookSignature.verify_header(payload, header, secret,
                                                  current_app.config["STRIPE_WEBHOOK_TOLERANCE"])
        except UnicodeDecodeError:
            raise WebhookVerificationFailed("The body is not UTF-8.", status=400) from None
        except stripe.SignatureVerificationError as error:
            raise WebhookVerificationFailed(f"Signature refused: {error.user_message}", status=401) from None
        try:
            event = json.loads(payload)
            data = WebhookEventData(event_id=str(event["id"]), event_type=str(event["type"]),
                                    account=str(event.get("account") or ""), payload=event)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise WebhookVerificationFailed("Signed, but not a Stripe event.", status=400) from None
        # A Connect endpoint gets live and test events alike: a test payment
        # must never pay an invoice on a live platform (or the reverse).
        live = current_app.config["STRIPE_SECRET_KEY"].startswith(("sk_live_", "rk_live_"))
        if bool(event.get("livemode")) != live:
            log.info("stripe event %s is %s mode, this platform %s: ignored", data.event_id,
                     "live" if event.get("livemode") else "test", "live" if live else "test")
            return []
        return [data]

    def handle_webhook_event(self, event, connection) -> None:
        if connection is None:
            log.info("stripe event %s (%s) names no connected account: ignored", event.event_id, event.event_type)
            return
        payload = json.loads(event.payload)
        obj = (payload.get("data") or {}).get("object") or {}
        handler = _HANDLERS.get(event.event_type)
        if handler is None:
            log.info("stripe event %s: %s is not one PlanMan acts on", event.event_id, event.event_type)
            return
        handler(self, connection, obj)

    def can_collect(self, invoice, amount) -> bool:
        return mapping.can_charge(amount, invoice.currency)

    def takes_payments(self, connection) -> bool:
        # Stripe refuses card payments until the account's charges are enabled (known once loaded).
        account = (connection.settings or {}).get("stripe_account")
        return bool(account and account.get("charges_enabled"))

    # -- presentation ---------------------------------------------------------------------
    def settings_problems(self, connection) -> list[str]:
        account = (connection.settings or {}).get("stripe_account")
        if account and not account.get("charges_enabled"):
            return ["Stripe cannot take card payments on this account yet: finish setting up your account "
                    "in the Stripe dashboard."]
        return []


def _remember_account(connection, account: dict) -> None:
    settings = dict(connection.settings or {})
    settings["stripe_account"] = mapping.account_summary(account)
    connection.settings = settings
    connection.tenant_name = mapping.account_name(account) or connection.tenant_name
    db.session.commit()


# -- events ------------------------------------------------------------------------------------

def _invoice(connection, obj: dict):
    """The firm's invoice the object is for; None for any other firm's (or none)."""
    invoice_id = mapping.invoice_id_of(obj)
    if invoice_id is None:
        return None
    return db.session.scalar(sa.select(Invoice).where(Invoice.id == invoice_id,
                                                      Invoice.firm_id == connection.firm_id))


def _existing(payment_intent_id: str):
    return db.session.scalar(sa.select(Payment).where(Payment.provider == "stripe",
                                                      Payment.provider_payment_id == payment_intent_id))


def _record(provider, connection, payment_intent: dict, state: str, *, note: str = "") -> None:
    """Record the PaymentIntent's payment in ``state``, unless it is already in a later state."""
    payment_intent_id = payment_intent["id"]
    payment = _existing(payment_intent_id)
    if payment is not None and not mapping.moves_forward(payment.state, state):
        if note and payment.state == state == "failed":
            payment.note = note
            db.session.commit()
        log.info("stripe: payment %s is %s already; %s ignored", payment_intent_id, payment.state, state)
        return
    if payment is not None:
        if note:
            payment.note = note
        services.set_payment_state(payment, state)
        return
    invoice = _invoice(connection, payment_intent)
    if invoice is None:
        log.warning("stripe: payment %s on account %s names no invoice of firm %s: ignored",
                    payment_intent_id, connection.tenant_id, connection.firm_id)
        return
    currency = (payment_intent.get("currency") or invoice.currency).upper()
    amount = mapping.from_minor_units(payment_intent.get("amount_received") or payment_intent.get("amount") or 0,
                                      currency)
    payment = services.record_provider_payment(
        invoice, provider=provider.key, provider_payment_id=payment_intent_id, amount=amount, method="card",
        state="pending", reference=payment_intent_id)
    if note:
        payment.note = note
    services.set_payment_state(payment, state)


def _intent_of(connection, obj: dict, *, key: str = "payment_intent") -> dict:
    """The PaymentIntent an event's object belongs to, fetched from Stripe (its
    current truth: amount, metadata), because events come in any order."""
    intent_id = obj.get(key) if key else obj.get("id")
    if isinstance(intent_id, dict):
        intent_id = intent_id.get("id")
    if not intent_id:
        return {}
    try:
        return client.retrieve_payment_intent(connection.tenant_id, intent_id)
    except stripe.StripeError as error:  # raised: the intake retries the event later
        raise TemporaryFailure("Stripe did not answer.", detail=f"{type(error).__name__}: {error}") from None


def _session_paid(provider, connection, session_obj: dict) -> None:
    if session_obj.get("payment_status") != "paid":
        return  # an async method is still confirming; its own event follows
    # A paid session carries all the payment needs: its PaymentIntent, amount and our metadata.
    intent_id = session_obj.get("payment_intent")
    if isinstance(intent_id, dict):
        intent_id = intent_id.get("id")
    if not intent_id:
        log.warning("stripe: paid session %s has no PaymentIntent: ignored", session_obj.get("id"))
        return
    _record(provider, connection, {"id": intent_id, "amount": session_obj.get("amount_total"),
                                   "currency": session_obj.get("currency"), "metadata": session_obj.get("metadata"),
                                   "client_reference_id": session_obj.get("client_reference_id")}, "succeeded")


def _session_failed(provider, connection, session_obj: dict) -> None:
    intent = _intent_of(connection, session_obj)
    if intent:
        _record(provider, connection, intent, "failed", note=mapping.failure_reason(intent))


def _intent_failed(provider, connection, intent: dict) -> None:
    _record(provider, connection, intent, "failed", note=mapping.failure_reason(intent))


def _charge_refunded(provider, connection, charge: dict) -> None:
    if not charge.get("refunded"):
        log.info("stripe: charge %s partly refunded (%s of %s): not recorded", charge.get("id"),
                 charge.get("amount_refunded"), charge.get("amount"))
        return
    intent = _intent_of(connection, charge)
    if intent:
        _record(provider, connection, intent, "refunded", note="Refunded in Stripe.")


def _dispute_created(provider, connection, dispute: dict) -> None:
    intent = _intent_of(connection, dispute)
    if not intent:
        return
    reason = (dispute.get("reason") or "").replace("_", " ")
    if (dispute.get("status") or "").startswith("warning_"):
        # An inquiry: the card holder's bank asks about the payment before any dispute,
        # and no money is withdrawn (docs.stripe.com/disputes/how-disputes-work, "Before
        # the dispute"). Taking it off the invoice would ask the client to pay again.
        payment = _existing(intent["id"])
        if payment is not None:
            payment.note = (f"The card holder's bank asked about this payment{f' ({reason})' if reason else ''}: "
                            "respond in Stripe. No money was taken back.")
            db.session.commit()
        return
    _record(provider, connection, intent, "disputed",
            note=f"Disputed by the card holder{f' ({reason})' if reason else ''}: respond in Stripe.")


def _account_updated(provider, connection, account: dict) -> None:
    if account.get("id") == connection.tenant_id:
        _remember_account(connection, account)


def _deauthorized(provider, connection, application: dict) -> None:
    """The firm removed PlanMan in its Stripe dashboard: nothing left to tell Stripe."""
    connection.token_ciphertext = None
    connections.disconnect(provider, connection, reason="Disconnected from Stripe's side (in the Stripe dashboard).")


_HANDLERS = {
    "checkout.session.completed": _session_paid,
    "checkout.session.async_payment_succeeded": _session_paid,
    "checkout.session.async_payment_failed": _session_failed,
    "payment_intent.payment_failed": _intent_failed,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
    "account.updated": _account_updated,
    "account.application.deauthorized": _deauthorized,
}
