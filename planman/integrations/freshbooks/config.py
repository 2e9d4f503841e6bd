"""FreshBooks' configuration, read from the environment.

Standard library only: the root ``config.py`` loads this file by path before
the app (or the ``planman`` package) exists. The keys are app.config keys and
the environment variables of the same names (README, Configuration)."""
from __future__ import annotations

import os


def settings(environ=os.environ) -> dict:
    env = environ.get
    return {
        # One app registered in FreshBooks' developer portal; each firm picks its business.
        "FRESHBOOKS_CLIENT_ID": env("FRESHBOOKS_CLIENT_ID") or "",
        "FRESHBOOKS_CLIENT_SECRET": env("FRESHBOOKS_CLIENT_SECRET") or "",
        "FRESHBOOKS_AUTH_URL": (env("FRESHBOOKS_AUTH_URL") or "https://auth.freshbooks.com").rstrip("/"),
        "FRESHBOOKS_API_URL": (env("FRESHBOOKS_API_URL") or "https://api.freshbooks.com").rstrip("/"),
        "FRESHBOOKS_APP_URL": (env("FRESHBOOKS_APP_URL") or "https://my.freshbooks.com").rstrip("/"),
        # "View in FreshBooks" links: {account_id}, {kind} (client or invoice), {id}. FreshBooks
        # documents no record URLs, so there are no links unless this is set.
        "FRESHBOOKS_RECORD_URL": env("FRESHBOOKS_RECORD_URL") or "",
        "FRESHBOOKS_SCOPES": env("FRESHBOOKS_SCOPES") or (
            "user:profile:read user:clients:read user:clients:write user:invoices:read user:invoices:write "
            "user:taxes:read"),
        "FRESHBOOKS_HTTP_TIMEOUT": float(env("FRESHBOOKS_HTTP_TIMEOUT") or 20),
        # FreshBooks publishes no rate limits (REFERENCE.md section 5): stay well below anything plausible.
        "FRESHBOOKS_MAX_IN_FLIGHT": int(env("FRESHBOOKS_MAX_IN_FLIGHT") or 3),
        "FRESHBOOKS_MAX_PER_MINUTE": int(env("FRESHBOOKS_MAX_PER_MINUTE") or 40),
    }


# Tests turn FreshBooks on where they need it (its tab would otherwise appear on every record page).
TEST_SETTINGS: dict = {}
