"""The Sage stand-in: Sage Business Cloud Accounting's OAuth server and Accounting API v3.1
(REFERENCE.md section 3), for GB and IE businesses.

Served under /sage by `python -m standins`; `create_app(config)` builds it alone
(unprefixed) for in-process tests. See standins/README.md, "Sage"."""
from __future__ import annotations

from flask import Flask

from ..core.app import provider_app
from . import api, auth, contacts, control, demo, invoices, pages, settings  # noqa: F401 (contacts, invoices: routes)
from .store import Store

__all__ = ["TITLE", "create_app", "demo", "overview"]

TITLE = "Sage"


def create_app(config: dict | None = None) -> Flask:
    """config keys: see settings.DEFAULTS (DATABASE, CLIENT_ID, ACCESS_TOKEN_SECONDS, LIMIT_*, ...)."""
    cfg = settings.resolve(config)
    return provider_app(__name__, config_key="SAGE_STANDIN", cfg=cfg, store=Store(cfg["DATABASE"]),
                        seed=demo.seed, blueprints=(auth.bp, api.bp, control.bp, pages.bp))


def overview(app: Flask) -> list[dict]:
    """The businesses and what arrived in each, for the stand-ins' index page."""
    with app.app_context(), settings.store().read() as db:
        return [{"name": b["name"], "id": b["id"], "path": f"/businesses/{b['id']}",
                 "counts": {"Contacts": len(b["contacts"]), "Sales invoices": len(b["sales_invoices"])}}
                for b in control.businesses(db)]
