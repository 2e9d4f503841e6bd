"""The GoCardless stand-in's configuration defaults, and the values the control API changes at run time."""
from __future__ import annotations

from ..core.settings import Settings

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


_SETTINGS = Settings("GOCARDLESS_STANDIN", DEFAULTS,
                     from_env={"CLIENT_ID": ("GOCARDLESS_STANDIN_CLIENT_ID", "planman-dev"),
                               "CLIENT_SECRET": ("GOCARDLESS_STANDIN_CLIENT_SECRET", "planman-dev-secret"),
                               "WEBHOOK_URL": ("GOCARDLESS_STANDIN_WEBHOOK_URL", ""),
                               "WEBHOOK_SECRET": ("GOCARDLESS_STANDIN_WEBHOOK_SECRET", "planman-dev-webhook-secret")})
resolve, cfg, store, limits, lifetimes = (_SETTINGS.resolve, _SETTINGS.cfg, _SETTINGS.store, _SETTINGS.limits,
                                          _SETTINGS.lifetimes)
