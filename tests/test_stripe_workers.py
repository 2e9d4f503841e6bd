"""Stripe's webhook events processed by real rq workers (real Redis), the way
production runs them: a paid session pays the invoice once however often
Stripe delivers it, and a worker SIGKILLed while it asks Stripe about an
event leaves the event to another worker, which finishes it.

Workers are separate processes, so `responses` cannot play Stripe for them:
a small HTTP server in this test answers the one call the workers make
(GET a PaymentIntent), and holds its answer until the test lets it go."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Connection, Invoice, Payment, WebhookEvent, utcnow
from tests.fixtures.services import _signal_group, wait_until
from tests.helpers import make_client, make_invoice, signup, tax_rate
from tests.test_stripe import ACCOUNT, SECRET, deliver, intent, paid_session, stripe_event

pytestmark = pytest.mark.integration

LEASE = 2


class FakeStripe:
    """Answers GET /v1/payment_intents/<id> with ``self.intents[id]``, once released."""

    def __init__(self):
        self.intents: dict[str, dict] = {}
        self.requests: list[tuple[str, dict]] = []
        self.release = threading.Event()
        self.release.set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.requests.append((self.path, dict(self.headers)))
                fake.release.wait(60)
                body = json.dumps(fake.intents.get(self.path.rsplit("/", 1)[-1].split("?")[0], {})).encode()
                try:
                    self.send_response(200 if body != b"{}" else 404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the worker that asked was killed meanwhile
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_stripe():
    fake = FakeStripe()
    yield fake
    fake.stop()


@pytest.fixture
def config_overrides():
    return {"WEBHOOK_LEASE_SECONDS": LEASE}


@pytest.fixture
def app(integration_app, service_env, fake_stripe):
    """PlanMan and its workers on real services; the workers' Stripe is ``fake_stripe``."""
    service_env.update({"WEBHOOK_LEASE_SECONDS": str(LEASE), "STRIPE_API_URL": fake_stripe.url,
                        "STRIPE_SECRET_KEY": "sk_test_planman_platform", "STRIPE_CLIENT_ID": "ca_test_planman",
                        "STRIPE_WEBHOOK_SECRET": SECRET})
    return integration_app


def connect(user):
    db.session.add(Connection(firm_id=user.firm_id, provider="stripe", state="connected", tenant_id=ACCOUNT,
                              tenant_name="Reid & Co", connected_at=utcnow(), settings={}))
    db.session.commit()


def final_states() -> dict:
    db.session.expire_all()
    return {row.event_id: row.state for row in db.session.scalars(sa.select(WebhookEvent))
            if row.state != "queued"}


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().split(") ")[1].split()[1]) == pid:
                        found.append(int(entry))
            except (FileNotFoundError, IndexError, ValueError):
                continue
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def invoice(client):
    user = signup(client)
    connect(user)
    return make_invoice(user, make_client(user), lines=((1, "100.00", tax_rate(user, "VAT 20%")),), status="sent")


def test_a_paid_session_delivered_three_times_pays_the_invoice_once(app, client, invoice, rq_workers):
    rq_workers.start(2)
    event = stripe_event("evt_paid", "checkout.session.completed", paid_session(invoice))
    for _ in range(3):
        assert deliver(client, event).status_code == 200
    wait_until(lambda: final_states() == {"evt_paid": "processed"}, 30, "the event to be processed")
    html = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "status-paid" in html and "pi_1" in html
    assert [(p.provider_payment_id, p.state) for p in db.session.scalars(sa.select(Payment))] == \
        [("pi_1", "succeeded")]


def test_a_worker_killed_while_asking_stripe_leaves_the_event_to_another(app, client, invoice, rq_workers,
                                                                        fake_stripe):
    fake_stripe.intents["pi_1"] = intent(invoice)
    fake_stripe.release.clear()  # Stripe "hangs" until the test lets it answer
    first = rq_workers.start(1)[0]
    dispute = {"id": "dp_1", "object": "dispute", "payment_intent": "pi_1", "charge": "ch_1", "amount": 12000,
               "reason": "fraudulent"}
    deliver(client, stripe_event("evt_dispute", "charge.dispute.created", dispute))
    wait_until(lambda: fake_stripe.requests, 30, "the first worker to ask Stripe about the payment", first)
    path, headers = fake_stripe.requests[0]
    assert path == "/v1/payment_intents/pi_1" and headers["Stripe-Account"] == ACCOUNT
    horses = children_of(first.pid)
    _signal_group(first.pid, signal.SIGKILL)
    for horse in horses:
        os.kill(horse, signal.SIGKILL)
    wait_until(lambda: not first.alive() and not any(_running(h) for h in horses), 10, "the first worker to die")
    assert final_states() == {} and db.session.scalar(sa.select(Payment)) is None  # not lost, not half done

    fake_stripe.release.set()
    second = rq_workers.start(1)[0]
    time.sleep(LEASE)  # let the dead worker's lease run out (not an assertion on time)
    deliver(client, stripe_event("evt_next", "checkout.session.completed", paid_session(invoice, status="unpaid")))
    wait_until(lambda: final_states() == {"evt_dispute": "processed", "evt_next": "processed"}, 30,
               "the second worker to finish the event", second)
    payments = list(db.session.scalars(sa.select(Payment)))
    assert [(p.provider_payment_id, p.state) for p in payments] == [("pi_1", "disputed")]
    row = db.session.scalar(sa.select(WebhookEvent).where(WebhookEvent.event_id == "evt_dispute"))
    assert row.attempts == 2
    assert db.session.get(Invoice, invoice.id).status != "paid"
