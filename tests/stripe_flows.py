"""Walking PlanMan's Stripe flows against the Stripe stand-in over HTTP, as a firm and its client
would (shared by the end-to-end tests)."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
import stripe

from planman.extensions import db
from planman.models import Connection
from tests.helpers import post_form
from tests.integration_helpers import form_fields

STRIPE_EVENTS = ["checkout.session.completed", "checkout.session.async_payment_succeeded",
                 "checkout.session.async_payment_failed", "payment_intent.payment_failed", "charge.refunded",
                 "charge.dispute.created", "account.updated", "account.application.deauthorized"]


def register_webhook(app, stripe_url: str, planman_url: str) -> str:
    """PlanMan's intake as the platform's Connect endpoint (what make run does); the web app verifies
    with its secret."""
    client = stripe.StripeClient(app.config["STRIPE_SECRET_KEY"], base_addresses={"api": stripe_url})
    endpoint = client.v1.webhook_endpoints.create({"url": f"{planman_url}/webhooks/stripe", "connect": True,
                                                   "enabled_events": STRIPE_EVENTS,
                                                   "api_version": stripe.api_version})
    app.config["STRIPE_WEBHOOK_SECRET"] = endpoint.secret
    return endpoint.secret


def connect_stripe(client, firm_id: int, account_id: str, *, timeout: float = 30) -> Connection:
    """Connect To Stripe through the stand-in's consent page, then wait for the worker to load the account."""
    start = post_form(client, "/integrations/stripe/connect", {}, form_url="/integrations/stripe")
    assert start.status_code == 302, start.get_data(as_text=True)
    consent_url = start.headers["Location"]
    consent = requests.get(consent_url, timeout=10)
    assert consent.status_code == 200 and "Connect my Stripe account" in consent.text
    fields = form_fields(consent.text)
    answer = requests.post(consent_url.split("?")[0], data={**fields, "account": account_id, "decision": "connect"},
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert client.get(f"{back.path}?{back.query}").status_code in (200, 302)
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == firm_id,
                                                                   Connection.provider == "stripe"))
        if connection is not None and (connection.settings or {}).get("stripe_account"):
            return connection
        assert time.monotonic() < deadline, "the Stripe account's details never arrived"
        time.sleep(0.1)


def open_checkout(link: str) -> tuple[requests.Session, str]:
    """The client opens the payment link (nobody logged in) and presses Pay by card: the
    browser and the stand-in's Checkout page it is sent to."""
    browser = requests.Session()
    page = browser.get(link, timeout=10)
    assert page.status_code == 200 and "Pay by card" in page.text, page.text
    fields = form_fields(page.text, "/stripe")
    action = link.rstrip("/") + "/stripe"
    started = browser.post(action, data=fields, allow_redirects=False, timeout=20)
    assert started.status_code == 303, started.text
    checkout_url = started.headers["Location"]
    checkout = browser.get(checkout_url, timeout=10)
    assert checkout.status_code == 200 and "Card number" in checkout.text
    return browser, checkout_url


def pay_on_checkout(browser: requests.Session, checkout_url: str, card: str) -> requests.Response:
    return browser.post(checkout_url, data={"cardnumber": card, "exp": "12 / 34", "cvc": "123",
                                            "email": "client@example.test"}, allow_redirects=False, timeout=20)


def pay_by_card(link: str, card: str) -> requests.Response:
    """Pay on the stand-in's Checkout page. Answers the Checkout page's answer (303 back to
    PlanMan, or the decline)."""
    return pay_on_checkout(*open_checkout(link), card)
