"""A payment provider that exists only in tests: it declares what a real one
(Stripe, GoCardless) declares, so the shared payment page and webhook intake
are tested without any real provider. Its webhooks are signed like Stripe's
(an HMAC-SHA256 of "<timestamp>.<raw body>"), and checked for real.

In-process tests register it with the ``testpay`` fixture; worker processes
load it through ``PLANMAN_EXTRA_PROVIDERS=tests.webhook_provider:TestPayProvider``."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from datetime import date
from decimal import Decimal

from flask import current_app

from planman.extensions import db
from planman.integrations.base import PaymentStart, Provider, WebhookEventData, WebhookVerificationFailed
from planman.integrations.errors import TemporaryFailure
from planman.models import Invoice

SECRET = b"whsec_test_only_secret"
SIGNATURE_HEADER = "TestPay-Signature"
TOLERANCE_SECONDS = 300
SPEC = "tests.webhook_provider:TestPayProvider"


def sign(body: bytes, *, secret: bytes = SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def delivery(*events: dict) -> bytes:
    return json.dumps({"events": list(events)}).encode()


class OfflineProvider(Provider):
    """A test-only provider's connect and push doors: never used by the tests
    that declare one (they connect it by writing a Connection row)."""

    def authorize_redirect(self, redirect_uri):
        raise AssertionError("a test-only provider is never connected through OAuth")

    def complete_authorization(self):
        raise AssertionError("a test-only provider is never connected through OAuth")

    def disconnect(self, connection):
        return []

    def load_tenant_details(self, connection):
        return None

    def export(self, connection, record_type, record, *, user_id):
        raise AssertionError("a test-only provider takes no pushes")


class TestPayProvider(OfflineProvider):
    __test__ = False  # not a pytest test class
    key = "testpay"
    label = "TestPay"
    kind = "payments"
    record_types = ()
    accepts_webhooks = True
    webhook_max_bytes = 64 * 1024
    pay_button_label = "Pay by card with TestPay"

    def verify_webhook(self, raw_body: bytes, headers) -> list[WebhookEventData]:
        header = headers.get(SIGNATURE_HEADER, "")
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
            raise WebhookVerificationFailed("missing or malformed signature header", status=400)
        expected = hmac.new(SECRET, f"{parts['t']}.".encode() + raw_body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts["v1"]):
            raise WebhookVerificationFailed("signature does not match", status=401)
        if abs(time.time() - int(parts["t"])) > TOLERANCE_SECONDS:
            raise WebhookVerificationFailed("signature timestamp outside the tolerance", status=401)
        try:
            events = json.loads(raw_body)["events"]
        except (ValueError, KeyError, TypeError):
            raise WebhookVerificationFailed("signed, but not a delivery this provider sends", status=400)
        return [WebhookEventData(event_id=e["id"], event_type=e["type"], account=e.get("account", ""),
                                 payload=e.get("data", {})) for e in events]

    def handle_webhook_event(self, event, connection) -> None:
        data = json.loads(event.payload)
        redis = current_app.redis
        redis.incr(f"testpay:starts:{event.event_id}")
        if event.event_type == "slow":
            # The worker whose work-horse runs it, and the work-horse (RQ gives it a session of its own).
            redis.set(f"testpay:horse:{event.event_id}", os.getpid())
            redis.set(f"testpay:started:{event.event_id}", os.getppid())
            deadline = time.monotonic() + 60
            while not redis.exists("testpay:release") and time.monotonic() < deadline:
                time.sleep(0.05)
        elif event.event_type == "boom":
            raise RuntimeError("the handler fell over")
        elif event.event_type == "needs-testpay" and redis.exists("testpay:down"):
            raise TemporaryFailure("TestPay could not be reached.")  # as a handler reading the resource back
        elif event.event_type in ("payment.succeeded", "payment.refunded"):
            from planman.payments.services import record_provider_payment

            invoice = db.session.get(Invoice, data["invoice_id"])
            if invoice is None or invoice.firm_id != connection.firm_id:
                return  # not this account's invoice: ignored, as a real provider's handler would
            record_provider_payment(
                invoice, provider=self.key, provider_payment_id=data["payment_id"], amount=Decimal(data["amount"]),
                method="card", state="succeeded" if event.event_type == "payment.succeeded" else "refunded",
                paid_on=date.today())
        redis.rpush("testpay:done", event.event_id)

    def start_payment(self, connection, invoice, amount, *, return_url: str, attempt: str = "",
                      shown_at=None) -> PaymentStart:
        return PaymentStart(url=f"https://pay.testpay.example/checkout?invoice={invoice.number}&amount={amount}")
