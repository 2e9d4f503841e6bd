"""The GoCardless stand-in: partner OAuth, creditors, billing requests with a hosted
flow page, mandates, payments with time moved forward on request, and signed
webhook deliveries (REFERENCE.md; sources in standins/README.md, "GoCardless").

Served under /gocardless by `python -m standins` (pages, OAuth, control API) and
at the root of its own port by `python -m standins.gocardless`, because the
gocardless-pro SDK joins absolute paths onto its base URL, so its API must sit
at a host's root. `create_app(config)` builds it alone (unprefixed) for tests."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask

from ..core import webhooks
from ..core.app import provider_app
from . import api, auth, control, flow, pages, settings
from .store import Store

__all__ = ["TITLE", "create_app", "overview"]

TITLE = "GoCardless"


def sign(secret: str, body: bytes, _timestamp: int) -> dict:
    """Webhook-Signature: hex HMAC-SHA256 of the raw body with the app's webhook secret (no timestamp)."""
    return {"Webhook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "Origin": "https://api-sandbox.gocardless.com"}


def create_app(config: dict | None = None) -> Flask:
    """config keys: see settings.DEFAULTS (DATABASE, CLIENT_ID, CLIENT_SECRET, WEBHOOK_URL, WEBHOOK_SECRET, ...)."""
    cfg = settings.resolve(config)
    app = provider_app(__name__, config_key="GOCARDLESS_STANDIN", cfg=cfg, store=Store(cfg["DATABASE"]),
                       seed=lambda db: control.seed(db, cfg),
                       blueprints=(auth.bp, api.bp, flow.bp, control.bp, pages.bp),
                       webhooks=webhooks.Deliveries(sign, user_agent="gocardless-webhook-service/1.1"))
    app.secret_key = cfg.get("SECRET_KEY") or secrets.token_hex(16)  # the pages' flash messages
    return app


def overview(app: Flask) -> list[dict]:
    """Each organisation and what arrived in it, for the stand-ins' index page."""
    with app.app_context(), settings.store().read() as db:
        return [{"name": o["creditor"]["name"], "id": o["id"], "path": "/",
                 "counts": {"Mandates": len(o["mandates"]), "Payments": len(o["payments"])}}
                for o in control.state_of(db)["organisations"]]
