"""PlanMan's Stripe client: the official SDK, set up from configuration.

The SDK does the form encoding, API version, retries (on 409, 5xx and when
Stripe says ``Stripe-Should-Retry``; the same Idempotency-Key on each retry)
and webhook signatures. Every call is made with the platform's secret key;
calls about a firm's account name it (``Stripe-Account``)."""
from __future__ import annotations

import stripe
from flask import current_app


def platform_client() -> stripe.StripeClient:
    cfg = current_app.config
    return stripe.StripeClient(
        cfg["STRIPE_SECRET_KEY"],
        client_id=cfg["STRIPE_CLIENT_ID"],
        base_addresses={"api": cfg["STRIPE_API_URL"], "connect": cfg["STRIPE_CONNECT_URL"]},
        http_client=stripe.RequestsClient(timeout=cfg["STRIPE_HTTP_TIMEOUT"]),
    )


def authorize_url(redirect_uri: str, state: str) -> str:
    return platform_client().oauth.authorize_url(
        {"response_type": "code", "scope": "read_write", "redirect_uri": redirect_uri, "state": state})


def exchange_code(code: str) -> dict:
    """The OAuth token call (platform key as bearer); its ``stripe_user_id`` is the firm's account."""
    return platform_client().oauth.token({"grant_type": "authorization_code", "code": code}).to_dict()


def deauthorize(account_id: str) -> None:
    platform_client().oauth.deauthorize({"stripe_user_id": account_id})


def retrieve_account(account_id: str) -> dict:
    return platform_client().v1.accounts.retrieve(account_id).to_dict()


def create_checkout_session(account_id: str, params: dict, idempotency_key: str) -> dict:
    return platform_client().v1.checkout.sessions.create(
        params, {"stripe_account": account_id, "idempotency_key": idempotency_key}).to_dict()


def retrieve_payment_intent(account_id: str, payment_intent_id: str) -> dict:
    return platform_client().v1.payment_intents.retrieve(
        payment_intent_id, options={"stripe_account": account_id}).to_dict()


def expire_checkout_session(account_id: str, session_id: str) -> dict:
    return platform_client().v1.checkout.sessions.expire(session_id, options={"stripe_account": account_id}).to_dict()


def retrieve_checkout_session(account_id: str, session_id: str) -> dict:
    return platform_client().v1.checkout.sessions.retrieve(session_id, options={"stripe_account": account_id}).to_dict()
