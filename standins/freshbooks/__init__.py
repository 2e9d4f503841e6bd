"""The FreshBooks stand-in: FreshBooks' OAuth server, identity and accounting APIs (REFERENCE.md section 3).

Served under /freshbooks by `python -m standins`; `create_app(config)` builds it
alone (unprefixed) for in-process tests. See standins/README.md, "FreshBooks"."""
from __future__ import annotations

from flask import Flask

from ..core.app import provider_app
from . import accounting, auth, control, demo, pages, settings
from .store import Store

__all__ = ["TITLE", "create_app", "demo", "overview"]

TITLE = "FreshBooks"


def create_app(config: dict | None = None) -> Flask:
    """config keys: see settings.DEFAULTS (DATABASE, CLIENT_ID, ACCESS_TOKEN_SECONDS, LIMIT_*, ...)."""
    cfg = settings.resolve(config)
    return provider_app(__name__, config_key="FRESHBOOKS_STANDIN", cfg=cfg, store=Store(cfg["DATABASE"]),
                        seed=demo.seed, blueprints=(auth.bp, accounting.bp, control.bp, pages.bp))


def overview(app: Flask) -> list[dict]:
    """The businesses and what arrived in each, for the stand-ins' index page."""
    with app.app_context(), settings.store().read() as db:
        return [{"name": a["name"], "id": a["account_id"], "path": f"/accounts/{a['account_id']}",
                 "counts": {"Clients": len(a["clients"]), "Invoices": len(a["invoices"])}}
                for a in control.accounts(db)]
