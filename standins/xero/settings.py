"""Configuration defaults, and the tunables the control API can change at run time.

Run-time changes (limits, lifetimes, faults) live in the settings table, not in
process memory, so every worker process serving the same database obeys them."""
from __future__ import annotations

import os

from flask import current_app

from ..core.control import limits_in_force
from ..core.latency import Model
from ..core.store import Store

DEFAULTS = {
    "DATABASE": "instance/standins.xero.db",
    "CLIENT_ID": None,        # None: env XERO_SANDBOX_CLIENT_ID, else "planman-dev"
    "CLIENT_SECRET": None,    # None: env XERO_SANDBOX_CLIENT_SECRET, else "planman-dev-secret"
    "REDIRECT_URIS": None,    # None: any http://127.0.0.1:<port>/... or http://localhost:<port>/...
    "PROVIDER_NAME": "PlanMan (Xero stand-in)",
    "ACCESS_TOKEN_SECONDS": 1800,
    "REFRESH_GRACE_SECONDS": 1800,
    "REFRESH_TOKEN_SECONDS": 60 * 24 * 3600,  # an unused refresh token lives 60 days
    "CODE_SECONDS": 300,
    "LIMIT_IN_FLIGHT": 5,
    "LIMIT_PER_MINUTE": 60,
    "LIMIT_PER_DAY": 5000,
    "LIMIT_APP_PER_MINUTE": 10000,
}

# How long Xero takes to answer, when the latency model is on (core/latency.py).
# Estimates: Xero publishes no response times, only that large inserts "can
# take quite a while" and batches of about 50 are practical (REFERENCE.md
# section 2, [S15]). 400 ms a call and 30 ms a record puts a batch of 50
# invoices at about 1.9 s.
LATENCY_ESTIMATE = Model(base_ms=400, per_record_ms=30, jitter=0.25)


def resolve(config: dict | None) -> dict:
    cfg = {**DEFAULTS, **(config or {})}
    cfg["CLIENT_ID"] = cfg["CLIENT_ID"] or os.environ.get("XERO_SANDBOX_CLIENT_ID") or "planman-dev"
    cfg["CLIENT_SECRET"] = (cfg["CLIENT_SECRET"] or os.environ.get("XERO_SANDBOX_CLIENT_SECRET")
                            or "planman-dev-secret")
    return cfg


def cfg(name: str):
    return current_app.config["XERO_SANDBOX"][name]


def store() -> Store:
    return current_app.extensions["standins.store"]  # core.store.current(), named for this module's readers


def limits(db) -> dict:
    return limits_in_force(db, {"in_flight": cfg("LIMIT_IN_FLIGHT"), "per_minute": cfg("LIMIT_PER_MINUTE"),
                                "per_day": cfg("LIMIT_PER_DAY"), "app_per_minute": cfg("LIMIT_APP_PER_MINUTE")})


def lifetimes(db) -> dict:
    stored = Store.get_setting(db, "lifetimes", {})
    return {
        "access_token_seconds": stored.get("access_token_seconds", cfg("ACCESS_TOKEN_SECONDS")),
        "refresh_grace_seconds": stored.get("refresh_grace_seconds", cfg("REFRESH_GRACE_SECONDS")),
    }
