"""The FreshBooks stand-in's configuration defaults, and the values the control API changes at run time."""
from __future__ import annotations

import os

from flask import current_app

from ..core.control import limits_in_force
from ..core.store import Store

DEFAULTS = {
    "DATABASE": "instance/standins.freshbooks.db",
    "CLIENT_ID": None,        # None: env FRESHBOOKS_STANDIN_CLIENT_ID, else "planman-dev"
    "CLIENT_SECRET": None,    # None: env FRESHBOOKS_STANDIN_CLIENT_SECRET, else "planman-dev-secret"
    "REDIRECT_URIS": None,    # None: any http://127.0.0.1:<port>/... or http://localhost:<port>/...
    "ACCESS_TOKEN_SECONDS": 12 * 3600,  # REFERENCE.md section 1: access tokens live 12 hours
    "REFRESH_GRACE_SECONDS": None,      # None: single-use refresh tokens, no grace (REFERENCE.md section 1)
    "REFRESH_TOKEN_SECONDS": 10 * 365 * 24 * 3600,  # "never expires"; ten years stands for never
    "CODE_SECONDS": 300,                # "about 5 minutes" (REFERENCE.md section 1)
    # FreshBooks publishes no rate limits (REFERENCE.md section 5): these are guesses, all configurable.
    "LIMIT_IN_FLIGHT": 10,
    "LIMIT_PER_MINUTE": 120,
    "LIMIT_PER_DAY": 100000,
    "LIMIT_APP_PER_MINUTE": 10000,
    "PER_PAGE_DEFAULT": 15,  # guess: what FreshBooks' list pages default to is not stated in REFERENCE.md
    "PER_PAGE_MAX": 100,     # REFERENCE.md section 4 ("max 100 — unconfirmed for the new API")
}


def resolve(config: dict | None) -> dict:
    cfg = {**DEFAULTS, **(config or {})}
    cfg["CLIENT_ID"] = cfg["CLIENT_ID"] or os.environ.get("FRESHBOOKS_STANDIN_CLIENT_ID") or "planman-dev"
    cfg["CLIENT_SECRET"] = (cfg["CLIENT_SECRET"] or os.environ.get("FRESHBOOKS_STANDIN_CLIENT_SECRET")
                            or "planman-dev-secret")
    return cfg


def cfg(name: str):
    return current_app.config["FRESHBOOKS_STANDIN"][name]


def store() -> Store:
    return current_app.extensions["standins.store"]


def limits(db) -> dict:
    return limits_in_force(db, {"in_flight": cfg("LIMIT_IN_FLIGHT"), "per_minute": cfg("LIMIT_PER_MINUTE"),
                                "per_day": cfg("LIMIT_PER_DAY"), "app_per_minute": cfg("LIMIT_APP_PER_MINUTE")})


def lifetimes(db) -> dict:
    stored = Store.get_setting(db, "lifetimes", {})
    return {"access_token_seconds": stored.get("access_token_seconds", cfg("ACCESS_TOKEN_SECONDS")),
            "refresh_grace_seconds": stored.get("refresh_grace_seconds", cfg("REFRESH_GRACE_SECONDS"))}
