"""The FreshBooks stand-in's configuration defaults, and the values the control API changes at run time."""
from __future__ import annotations

from ..core.settings import Settings

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


_SETTINGS = Settings("FRESHBOOKS_STANDIN", DEFAULTS,
                     from_env={"CLIENT_ID": ("FRESHBOOKS_STANDIN_CLIENT_ID", "planman-dev"),
                               "CLIENT_SECRET": ("FRESHBOOKS_STANDIN_CLIENT_SECRET", "planman-dev-secret")},
                     lifetime_keys=("access_token_seconds", "refresh_grace_seconds"))
resolve, cfg, store, limits, lifetimes = (_SETTINGS.resolve, _SETTINGS.cfg, _SETTINGS.store, _SETTINGS.limits,
                                          _SETTINGS.lifetimes)
