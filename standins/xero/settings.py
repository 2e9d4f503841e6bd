"""The Xero stand-in's configuration defaults, and the values the control API
changes at run time (limits, lifetimes; core/settings.py keeps them)."""
from __future__ import annotations

from ..core.latency import Model
from ..core.settings import Settings

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


_SETTINGS = Settings("XERO_SANDBOX", DEFAULTS,
                     from_env={"CLIENT_ID": ("XERO_SANDBOX_CLIENT_ID", "planman-dev"),
                               "CLIENT_SECRET": ("XERO_SANDBOX_CLIENT_SECRET", "planman-dev-secret")},
                     lifetime_keys=("access_token_seconds", "refresh_grace_seconds"))
resolve, cfg, store, limits, lifetimes = (_SETTINGS.resolve, _SETTINGS.cfg, _SETTINGS.store, _SETTINGS.limits,
                                          _SETTINGS.lifetimes)
