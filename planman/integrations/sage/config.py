"""Sage Accounting's configuration, read from the environment.

Standard library only: the root ``config.py`` loads this file by path before
the app (or the ``planman`` package) exists. The keys are app.config keys and
the environment variables of the same names (README, Configuration)."""
from __future__ import annotations

import os


def settings(environ=os.environ) -> dict:
    env = environ.get
    return {
        # One app registered in Sage's developer portal; each firm picks its business.
        "SAGE_CLIENT_ID": env("SAGE_CLIENT_ID") or "",
        "SAGE_CLIENT_SECRET": env("SAGE_CLIENT_SECRET") or "",
        # The consent page, the token and revoke endpoints, and the v3.1 API (one base URL
        # for every country: REFERENCE.md sections 1 and 3).
        "SAGE_AUTH_URL": (env("SAGE_AUTH_URL") or "https://www.sageone.com/oauth2/auth/central").rstrip("/"),
        "SAGE_TOKEN_URL": (env("SAGE_TOKEN_URL") or "https://oauth.accounting.sage.com").rstrip("/"),
        "SAGE_API_URL": (env("SAGE_API_URL") or "https://api.accounting.sage.com/v3.1").rstrip("/"),
        # "View in Sage" links: {business_id}, {kind} (contact or sales_invoice), {id}. Sage
        # documents no record URLs for its web app, so there are no links unless this is set.
        "SAGE_RECORD_URL": env("SAGE_RECORD_URL") or "",
        "SAGE_SCOPES": env("SAGE_SCOPES") or "full_access",
        "SAGE_HTTP_TIMEOUT": float(env("SAGE_HTTP_TIMEOUT") or 20),
        # v3.1's limits are unconfirmed (REFERENCE.md section 5; ~100 a minute per business is cited):
        # stay below them, one call a second in bulk.
        "SAGE_MAX_IN_FLIGHT": int(env("SAGE_MAX_IN_FLIGHT") or 2),
        "SAGE_MAX_PER_MINUTE": int(env("SAGE_MAX_PER_MINUTE") or 60),
        # How long an unused refresh token lives when Sage's answer does not say (31 days).
        "SAGE_REFRESH_TOKEN_DAYS": float(env("SAGE_REFRESH_TOKEN_DAYS") or 31),
    }


# Tests turn Sage on where they need it (its tab would otherwise appear on every record page).
TEST_SETTINGS: dict = {}
