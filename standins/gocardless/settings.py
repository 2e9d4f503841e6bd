"""The GoCardless stand-in's configuration defaults, and the values the control API changes at run time."""
from __future__ import annotations

import os

from flask import current_app

from ..core.control import limits_in_force
from ..core.store import Store

DEFAULTS = {
    "DATABASE": "instance/standins.gocardless.db",
    "CLIENT_ID": None,        # None: env GOCARDLESS_STANDIN_CLIENT_ID, else "planman-dev"
    "CLIENT_SECRET": None,    # None: env GOCARDLESS_STANDIN_CLIENT_SECRET, else "planman-dev-secret"
    "REDIRECT_URIS": None,    # None: any http://127.0.0.1:<port>/... or http://localhost:<port>/...
    "WEBHOOK_URL": None,      # None: env GOCARDLESS_STANDIN_WEBHOOK_URL; the partner app's one webhook URL
    "WEBHOOK_SECRET": None,   # None: env GOCARDLESS_STANDIN_WEBHOOK_SECRET, else "planman-dev-webhook-secret"
    "CODE_SECONDS": 600,      # guess: GoCardless does not say how long a code lives
    # "1,000 requests a minute" is the commonly quoted figure (REFERENCE.md section 5, unconfirmed).
    "LIMIT_IN_FLIGHT": 50,
    "LIMIT_PER_MINUTE": 1000,
    "LIMIT_PER_DAY": 10_000_000,
    "LIMIT_APP_PER_MINUTE": 100_000,
    # Bacs: a mandate's first charge date is a few working days out (guess: 3 calendar days).
    "CHARGE_LEAD_DAYS": 3,
    "FLOW_DAYS": 7,           # guess: how long a billing request flow's link works
}


def resolve(config: dict | None) -> dict:
    cfg = {**DEFAULTS, **(config or {})}
    cfg["CLIENT_ID"] = cfg["CLIENT_ID"] or os.environ.get("GOCARDLESS_STANDIN_CLIENT_ID") or "planman-dev"
    cfg["CLIENT_SECRET"] = (cfg["CLIENT_SECRET"] or os.environ.get("GOCARDLESS_STANDIN_CLIENT_SECRET")
                            or "planman-dev-secret")
    cfg["WEBHOOK_URL"] = cfg["WEBHOOK_URL"] or os.environ.get("GOCARDLESS_STANDIN_WEBHOOK_URL") or ""
    cfg["WEBHOOK_SECRET"] = (cfg["WEBHOOK_SECRET"] or os.environ.get("GOCARDLESS_STANDIN_WEBHOOK_SECRET")
                             or "planman-dev-webhook-secret")
    return cfg


def cfg(name: str):
    return current_app.config["GOCARDLESS_STANDIN"][name]


def store() -> Store:
    return current_app.extensions["standins.store"]


def limits(db) -> dict:
    return limits_in_force(db, {"in_flight": cfg("LIMIT_IN_FLIGHT"), "per_minute": cfg("LIMIT_PER_MINUTE"),
                                "per_day": cfg("LIMIT_PER_DAY"), "app_per_minute": cfg("LIMIT_APP_PER_MINUTE")})


def lifetimes(db) -> dict:
    return {}
