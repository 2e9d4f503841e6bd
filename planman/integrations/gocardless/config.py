"""GoCardless's configuration, read from the environment.

Standard library only: the root ``config.py`` loads this file by path before
the app (or the ``planman`` package) exists. The keys are app.config keys and
the environment variables of the same names."""
from __future__ import annotations

import os


def settings(environ=os.environ) -> dict:
    env = environ.get
    live = (env("GOCARDLESS_ENVIRONMENT") or "sandbox") == "live"
    return {
        # PlanMan's partner app; each firm connects its own GoCardless account by OAuth.
        "GOCARDLESS_CLIENT_ID": env("GOCARDLESS_CLIENT_ID") or "",
        "GOCARDLESS_CLIENT_SECRET": env("GOCARDLESS_CLIENT_SECRET") or "",
        "GOCARDLESS_WEBHOOK_SECRET": env("GOCARDLESS_WEBHOOK_SECRET") or "",  # the app's webhook secret
        # "sandbox" or "live": picks the default hosts below.
        "GOCARDLESS_ENVIRONMENT": "live" if live else "sandbox",
        "GOCARDLESS_API_URL": (env("GOCARDLESS_API_URL") or (
            "https://api.gocardless.com" if live else "https://api-sandbox.gocardless.com")).rstrip("/"),
        "GOCARDLESS_CONNECT_URL": (env("GOCARDLESS_CONNECT_URL") or (
            "https://connect.gocardless.com" if live else "https://connect-sandbox.gocardless.com")).rstrip("/"),
        # Where the hosted Billing Request Flow pages live (the CSP lets the pay button redirect there).
        "GOCARDLESS_PAY_URL": (env("GOCARDLESS_PAY_URL") or (
            "https://pay.gocardless.com" if live else "https://pay-sandbox.gocardless.com")).rstrip("/"),
        "GOCARDLESS_HTTP_TIMEOUT": float(env("GOCARDLESS_HTTP_TIMEOUT") or 20),
    }


TEST_SETTINGS = {
    "GOCARDLESS_CLIENT_ID": "gc_test_planman",
    "GOCARDLESS_CLIENT_SECRET": "gc_test_planman_secret",
    "GOCARDLESS_WEBHOOK_SECRET": "gc_webhook_secret_test",
    "GOCARDLESS_ENVIRONMENT": "sandbox",
    "GOCARDLESS_API_URL": "https://api-sandbox.gocardless.com",
    "GOCARDLESS_CONNECT_URL": "https://connect-sandbox.gocardless.com",
    "GOCARDLESS_PAY_URL": "https://pay-sandbox.gocardless.com",
}
