"""Stripe's configuration, read from the environment.

Standard library only: the root ``config.py`` loads this file by path before
the app (or the ``planman`` package) exists. The keys are app.config keys and
the environment variables of the same names."""
from __future__ import annotations

import os


def settings(environ=os.environ) -> dict:
    env = environ.get
    return {
        # Stripe Connect (the platform's keys; each firm connects its own account).
        "STRIPE_CLIENT_ID": env("STRIPE_CLIENT_ID") or "",  # ca_..., Connect settings
        "STRIPE_SECRET_KEY": env("STRIPE_SECRET_KEY") or "",  # sk_test_... / sk_live_...
        "STRIPE_WEBHOOK_SECRET": env("STRIPE_WEBHOOK_SECRET") or "",  # whsec_... of the Connect endpoint
        "STRIPE_API_URL": (env("STRIPE_API_URL") or "https://api.stripe.com").rstrip("/"),
        "STRIPE_CONNECT_URL": (env("STRIPE_CONNECT_URL") or "https://connect.stripe.com").rstrip("/"),
        # Where Checkout pages live (allowed as a form redirect target by the CSP).
        "STRIPE_CHECKOUT_URL": (env("STRIPE_CHECKOUT_URL") or "https://checkout.stripe.com").rstrip("/"),
        "STRIPE_WEBHOOK_TOLERANCE": int(env("STRIPE_WEBHOOK_TOLERANCE") or 300),
        # How long a Checkout page can be paid after the payment page was shown
        # (Stripe allows 30 minutes to 24 hours; a page left open longer is a second payment waiting).
        "STRIPE_CHECKOUT_MINUTES": min(max(int(env("STRIPE_CHECKOUT_MINUTES") or 60), 31), 24 * 60),
        "STRIPE_HTTP_TIMEOUT": float(env("STRIPE_HTTP_TIMEOUT") or 20),
    }


TEST_SETTINGS = {
    "STRIPE_CLIENT_ID": "ca_test_planman",
    "STRIPE_SECRET_KEY": "sk_test_planman_platform",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_planman",
    "STRIPE_API_URL": "https://api.stripe.com",
    "STRIPE_CONNECT_URL": "https://connect.stripe.com",
    "STRIPE_CHECKOUT_URL": "https://checkout.stripe.com",
}
