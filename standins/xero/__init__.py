"""The Xero stand-in: Xero's identity and accounting APIs (development and tests).

Served under /xero by `python -m standins`; `create_app(config)` builds it alone
(unprefixed) for in-process tests. See standins/README.md, "Xero"."""
from __future__ import annotations

from flask import Flask

from ..core.app import provider_app
from . import accounting, control, demo, identity, pages, settings, specval, webhooks
from .store import Store

__all__ = ["TITLE", "create_app", "demo", "overview"]

TITLE = "Xero"


def create_app(config: dict | None = None) -> Flask:
    """Build the stand-in. config keys: see settings.DEFAULTS (DATABASE, CLIENT_ID, ...)."""
    specval.api()  # load the specs now, not inside the first client's request
    specval.api("xero-identity.yaml")
    cfg = settings.resolve(config)
    # Webhooks go out from a thread unless TESTING (tests flush: POST /_control/webhooks/flush).
    return provider_app(__name__, config_key="XERO_SANDBOX", cfg=cfg, store=Store(cfg["DATABASE"]), seed=demo.seed,
                        blueprints=(identity.bp, accounting.bp, control.bp, pages.bp), webhooks=webhooks.deliveries())


def overview(app: Flask) -> list[dict]:
    """The organisations and what arrived in each, for the stand-ins' index page."""
    with app.app_context(), settings.store().read() as db:
        return [{"name": o["name"], "id": o["tenant_id"], "path": f"/orgs/{o['tenant_id']}",
                 "counts": {"Contacts": o["contacts"], "Invoices": o["invoices"], "Connections": o["connections"]}}
                for o in pages.organisations(db)]
