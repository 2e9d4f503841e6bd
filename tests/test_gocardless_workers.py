"""GoCardless's webhook events processed by real rq workers (real Redis), the
way production runs them: several events per delivery, delivered more than
once, a failed payment retried and then paid, a charge-back after payout that
re-opens the invoice, and a mandate cancelled with an invoice still due.

Workers are separate processes, so `responses` cannot play GoCardless for
them: a small HTTP server in this test answers the API calls (the resources
in ``resources``, by path), for the workers and for the test's own app."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations.gocardless.models import GoCardlessCollection
from planman.models import Invoice, Payment, WebhookEvent
from tests.fixtures.services import wait_until
from tests.gocardless_helpers import SECRET, active_mandate, connect, deliver, event, mandate, payment, sign
from tests.helpers import make_client, make_invoice, post_form, signup, tax_rate

pytestmark = pytest.mark.integration


class FakeGoCardless:
    """Answers GET <path> with ``resources[path]`` and POST <path> with ``posts[path]``."""

    def __init__(self):
        self.resources: dict[str, dict] = {}
        self.posts: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict, bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, table):
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
                found = table.get(self.path.split("?")[0])
                body = json.dumps(found or {"error": {"type": "invalid_api_usage", "code": 404,
                                                      "message": "Resource not found", "errors": []}}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._answer(fake.resources)

            def do_POST(self):
                self._answer(fake.posts)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def calls(self, method: str, path: str) -> list:
        return [r for r in self.requests if r[0] == method and r[1].split("?")[0] == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_gc():
    fake = FakeGoCardless()
    yield fake
    fake.stop()


@pytest.fixture
def app(integration_app, service_env, fake_gc):
    """PlanMan and its workers on real services; their GoCardless is ``fake_gc``."""
    service_env.update({"GOCARDLESS_API_URL": fake_gc.url, "GOCARDLESS_CLIENT_ID": "gc_test_planman",
                        "GOCARDLESS_CLIENT_SECRET": "gc_test_planman_secret", "GOCARDLESS_WEBHOOK_SECRET": SECRET})
    integration_app.config["GOCARDLESS_API_URL"] = fake_gc.url
    return integration_app


@pytest.fixture
def user(client):
    return signup(client)


@pytest.fixture
def acme(user):
    return make_client(user, name="Acme Ltd")


@pytest.fixture
def invoice(user, acme):
    return make_invoice(user, acme, lines=((1, "100.00", tax_rate(user, "VAT 20%")),), status="sent")


def states() -> dict:
    db.session.expire_all()
    return {row.event_id: row.state for row in db.session.scalars(sa.select(WebhookEvent))}


def html(client, url) -> str:
    return client.get(url).get_data(as_text=True)


def collect(client, invoice, fake_gc):
    fake_gc.posts["/payments"] = payment(invoice_id=invoice.id)
    post_form(client, f"/invoices/{invoice.id}/direct-debit", {}, form_url=f"/invoices/{invoice.id}")
    assert len(fake_gc.calls("POST", "/payments")) == 1


def test_a_failed_payment_delivered_twice_is_retried_and_paid(app, client, user, acme, invoice, fake_gc,
                                                              rq_workers):
    connect(user)
    active_mandate(user, acme)
    collect(client, invoice, fake_gc)
    rq_workers.start(2)
    fake_gc.resources["/payments/PM000A"] = payment(status="failed", invoice_id=invoice.id)
    failed = event("EV1", "payments", "failed", {"payment": "PM000A"},
                   details={"origin": "bank", "cause": "insufficient_funds", "description": "Insufficient funds."})
    for _ in range(2):
        assert deliver(client, failed, event("EV0", "payments", "submitted", {"payment": "PM000A"})).status_code == 200
    wait_until(lambda: states() == {"EV1": "processed", "EV0": "processed"}, 30, "the events to be processed")
    page = html(client, f"/invoices/{invoice.id}")
    assert "Failed: insufficient funds" in page and ">Retry collection</button>" in page

    fake_gc.posts["/payments/PM000A/actions/retry"] = payment(status="pending_submission", invoice_id=invoice.id)
    collection = db.session.scalar(sa.select(GoCardlessCollection))
    post_form(client, f"/invoices/{invoice.id}/direct-debit/{collection.id}/retry", {},
              form_url=f"/invoices/{invoice.id}")
    fake_gc.resources["/payments/PM000A"] = payment(status="confirmed", invoice_id=invoice.id)
    deliver(client, event("EV2", "payments", "confirmed", {"payment": "PM000A"}))
    wait_until(lambda: states().get("EV2") == "processed", 30, "the confirmation to be processed")
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == "paid"
    assert [(p.provider_payment_id, p.state) for p in db.session.scalars(sa.select(Payment))] == \
        [("PM000A", "succeeded")]
    assert len(fake_gc.calls("POST", "/payments")) == 1


def test_a_charge_back_after_payout_reopens_the_invoice(app, client, user, acme, invoice, fake_gc, rq_workers):
    connect(user)
    active_mandate(user, acme)
    collect(client, invoice, fake_gc)
    rq_workers.start(1)
    fake_gc.resources["/payments/PM000A"] = payment(status="paid_out", invoice_id=invoice.id)
    deliver(client, event("EV1", "payments", "confirmed", {"payment": "PM000A"}),
            event("EV2", "payments", "paid_out", {"payment": "PM000A"}))
    wait_until(lambda: states() == {"EV1": "processed", "EV2": "processed"}, 30, "the payout to be processed")
    assert db.session.get(Invoice, invoice.id).status == "paid"

    fake_gc.resources["/payments/PM000A"] = payment(status="charged_back", invoice_id=invoice.id)
    deliver(client, event("EV3", "payments", "charged_back", {"payment": "PM000A"}))
    wait_until(lambda: states().get("EV3") == "processed", 30, "the charge-back to be processed")
    db.session.expire_all()
    reopened = db.session.get(Invoice, invoice.id)
    assert reopened.status == "sent" and reopened.amount_due == 120
    assert "Charged back on" in html(client, f"/invoices/{invoice.id}")


def test_a_cancelled_mandate_with_an_invoice_due_offers_no_collection(app, client, user, acme, invoice, fake_gc,
                                                                      rq_workers):
    connect(user)
    active_mandate(user, acme)
    assert ">Collect by Direct Debit</button>" in html(client, f"/invoices/{invoice.id}")
    rq_workers.start(1)
    fake_gc.resources["/mandates/MD000A"] = mandate(status="cancelled")
    deliver(client, event("EV1", "mandates", "cancelled", {"mandate": "MD000A"},
                          details={"origin": "customer", "cause": "mandate_cancelled",
                                   "description": "The customer cancelled the mandate."}))
    deliver(client, event("EV1", "mandates", "cancelled", {"mandate": "MD000A"}))  # a repeat
    wait_until(lambda: states() == {"EV1": "processed"}, 30, "the cancellation to be processed")
    assert "Direct Debit cancelled" in html(client, f"/clients/{acme.id}")
    page = html(client, f"/invoices/{invoice.id}")
    assert ">Collect by Direct Debit</button>" not in page and "Direct Debit cancelled" in page
    assert not fake_gc.calls("POST", "/payments")


def test_a_forged_delivery_is_refused_and_nothing_reaches_the_workers(app, client, user, acme, invoice, fake_gc,
                                                                     rq_workers):
    connect(user)
    active_mandate(user, acme)
    collect(client, invoice, fake_gc)
    rq_workers.start(1)
    fake_gc.resources["/payments/PM000A"] = payment(status="confirmed", invoice_id=invoice.id)
    raw = json.dumps({"events": [event("EV1", "payments", "confirmed", {"payment": "PM000A"})]}).encode()
    forged = client.post("/webhooks/gocardless", data=raw, content_type="application/json",
                         headers={"Webhook-Signature": sign(raw, "a-guessed-secret")})
    assert forged.status_code == 498
    # A genuine delivery afterwards is processed, so the workers were there to see the forged one.
    deliver(client, event("EV2", "payments", "submitted", {"payment": "PM000A"}))
    wait_until(lambda: states() == {"EV2": "processed"}, 30, "the genuine event to be processed")
    assert not fake_gc.calls("GET", "/payments/PM000A")[1:]  # one read, for the genuine event
