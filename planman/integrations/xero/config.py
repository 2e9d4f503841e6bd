"""Xero's configuration, read from the environment.

Standard library only: the root ``config.py`` loads this file by path before
the app (or the ``planman`` package) exists. The keys are app.config keys and
the environment variables of the same names."""
from __future__ import annotations

import os


def settings(environ=os.environ) -> dict:
    env = environ.get
    return {
        "XERO_CLIENT_ID": env("XERO_CLIENT_ID") or "",
        "XERO_CLIENT_SECRET": env("XERO_CLIENT_SECRET") or "",
        "XERO_LOGIN_URL": (env("XERO_LOGIN_URL") or "https://login.xero.com").rstrip("/"),
        "XERO_IDENTITY_URL": (env("XERO_IDENTITY_URL") or "https://identity.xero.com").rstrip("/"),
        "XERO_API_URL": (env("XERO_API_URL") or "https://api.xero.com").rstrip("/"),
        # Where "View in Xero" links point (Xero's web app; the stand-in in development).
        "XERO_APP_URL": (env("XERO_APP_URL") or "https://go.xero.com").rstrip("/"),
        "XERO_SCOPES": env("XERO_SCOPES") or (
            "offline_access accounting.contacts accounting.invoices accounting.payments accounting.settings.read"),
        "XERO_HTTP_TIMEOUT": float(env("XERO_HTTP_TIMEOUT") or 20),
        # An unused refresh token dies after 60 days (REFERENCE.md section 1): the keep-alive renews it.
        "XERO_REFRESH_TOKEN_DAYS": float(env("XERO_REFRESH_TOKEN_DAYS") or 60),
        # Xero's per-organisation limits (REFERENCE.md section 6); lowered only to test the throttle.
        "XERO_MAX_IN_FLIGHT": int(env("XERO_MAX_IN_FLIGHT") or 5),
        "XERO_MAX_PER_MINUTE": int(env("XERO_MAX_PER_MINUTE") or 60),
        "XERO_MAX_PER_DAY": int(env("XERO_MAX_PER_DAY") or 5000),
        # Xero's limit per app across all organisations (REFERENCE.md section 6).
        "XERO_APP_MAX_PER_MINUTE": int(env("XERO_APP_MAX_PER_MINUTE") or 10000),
        # The webhook key of the Xero app's webhook subscription (developer.xero.com >
        # the app > Webhooks): deliveries it does not sign are refused. Empty: no webhooks,
        # the catch-up job (flask reconcile-ledgers) alone reads changes back.
        "XERO_WEBHOOK_KEY": env("XERO_WEBHOOK_KEY") or "",
    }


# What the test configuration overrides (requests are captured by `responses`).
TEST_SETTINGS = {
    "XERO_CLIENT_ID": "test-client-id",
    "XERO_CLIENT_SECRET": "test-client-secret",
    "XERO_LOGIN_URL": "https://login.xero.com",
    "XERO_IDENTITY_URL": "https://identity.xero.com",
    "XERO_API_URL": "https://api.xero.com",
    "XERO_WEBHOOK_KEY": "test-xero-webhook-key",
}
