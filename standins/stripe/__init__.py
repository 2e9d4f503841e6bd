"""The Stripe stand-in: Connect OAuth, accounts, Checkout Sessions with a hosted payment page,
PaymentIntents, charges, refunds, disputes and signed Connect webhooks (development and tests).

Served under /stripe by `python -m standins` (API at /stripe/v1, Connect at
/stripe/oauth, payment pages at /stripe/checkout); `create_app(config)` builds
it alone (unprefixed) for in-process tests. See standins/README.md, "Stripe"."""
from __future__ import annotations

import hashlib
import hmac

from flask import Flask, request

from ..core import webhooks
from ..core.app import provider_app
from . import api, checkout, connect, control, demo, pages, payments, settings
from .errors import ApiError, respond
from .store import Store

__all__ = ["TITLE", "create_app", "demo", "overview", "sign"]

TITLE = "Stripe"


def sign(secret: str, body: bytes, timestamp: int) -> dict:
    """Stripe-Signature: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<body>") (docs.stripe.com/webhooks#verify-manually)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={mac}"}


def create_app(config: dict | None = None) -> Flask:
    """config keys: see settings.DEFAULTS (DATABASE, SECRET_KEY, CLIENT_ID, ASYNC_SECONDS, ...)."""
    cfg = settings.resolve(config)
    deliveries = webhooks.Deliveries(sign, user_agent="Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                                     tick=payments.settle_due)
    app = provider_app(__name__, config_key="STRIPE_STANDIN", cfg=cfg, store=Store(cfg["DATABASE"]),
                       seed=demo.seed, blueprints=(api.bp, connect.bp, checkout.bp, control.bp, pages.bp),
                       webhooks=deliveries)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def unrecognized(error):
        if request.path.startswith("/v1/"):  # Stripe's answer for a path it has no route for
            return respond(ApiError(404, "invalid_request_error",
                                    f"Unrecognized request URL ({request.method}: {request.path}). Please see "
                                    "https://stripe.com/docs or we can help at https://support.stripe.com/."))
        return error

    return app


def overview(app: Flask) -> list[dict]:
    with app.app_context(), settings.store().read() as db:
        return [{"name": a["name"], "id": a["id"], "path": f"/accounts/{a['id']}",
                 "counts": {"Connected": "yes" if a["connected"] else "no",
                            "Checkout Sessions": len(a["checkout_sessions"]), "Payments": len(a["payment_intents"])}}
                for a in control.state_of(db)["accounts"]]
