"""The Stripe stand-in's configuration defaults (the platform PlanMan is)."""
from __future__ import annotations

from ..core.settings import Settings
from ..core.store import Store

API_VERSION = "2026-10-28.endive"  # what stripe 16.1.0 pins (REFERENCE.md section 4)

DEFAULTS = {
    "DATABASE": "instance/standins.stripe.db",
    # The platform's keys and Connect client id; env STRIPE_STANDIN_* or these.
    "SECRET_KEY": None,        # "sk_test_standin_platform"
    "PUBLISHABLE_KEY": "pk_test_standin_platform",
    "CLIENT_ID": None,         # "ca_standin_planman"
    "REDIRECT_URIS": None,     # None: any http://127.0.0.1:<port>/... or http://localhost:<port>/...
    "CODE_SECONDS": 300,       # guess: Stripe does not state an authorization code's lifetime
    # A bank-style payment that confirms later settles this many seconds after it
    # was made (delivery thread), or only through the control API when None.
    "ASYNC_SECONDS": 5,
    "DELIVER_WEBHOOKS": None,  # None: a delivery thread unless TESTING
    "TESTING": False,
}


_SETTINGS = Settings("STRIPE_STANDIN", DEFAULTS,
                     from_env={"SECRET_KEY": ("STRIPE_STANDIN_SECRET_KEY", "sk_test_standin_platform"),
                               "CLIENT_ID": ("STRIPE_STANDIN_CLIENT_ID", "ca_standin_planman")})
cfg, store = _SETTINGS.cfg, _SETTINGS.store


def resolve(config: dict | None) -> dict:
    resolved = _SETTINGS.resolve(config)
    if resolved["TESTING"] and "ASYNC_SECONDS" not in (config or {}):
        resolved["ASYNC_SECONDS"] = None  # tests settle async payments through the control API
    return resolved


def async_seconds(db):
    """How long a confirming payment takes: the control API's choice, else config ASYNC_SECONDS."""
    stored = Store.get_setting(db, "async", None)
    return stored["seconds"] if stored is not None else cfg("ASYNC_SECONDS")
