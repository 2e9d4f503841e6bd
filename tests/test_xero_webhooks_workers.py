"""Xero's webhook events processed by real rq workers (real Redis), as production runs
them: a payment delivered three times to two workers is recorded once, and a worker
SIGKILLed while it fetches the invoice an event names leaves the event to another
worker, which finishes it.

Workers are separate processes, so `responses` cannot play Xero for them: a small
HTTP server here answers the one call they make (GET an invoice) and holds its
answer until the test lets it go."""
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
from planman.integrations import webhooks
from planman.integrations.tokens import store_token
from planman.models import Connection, ExternalLink, Invoice, Payment, WebhookEvent, utcnow
from tests.fixtures.services import _signal_group, wait_until
from tests.helpers import make_client, make_invoice, signup
from tests.test_stripe_workers import _running, children_of
from tests.test_xero_webhooks import INVOICE_ID, TENANT, XERO_PAYMENT, delivery, post, xero_event, xero_invoice, \
    xero_payment

pytestmark = pytest.mark.integration

LEASE = 2


class FakeXero:
    """Answers GET /api.xro/2.0/Invoices/<id> with ``self.invoices[id]``, once released."""

    def __init__(self):
        self.invoices: dict[str, dict] = {}
        self.requests: list[tuple[str, dict]] = []
        self.release = threading.Event()
        self.release.set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.requests.append((self.path, dict(self.headers)))
                fake.release.wait(60)
                found = fake.invoices.get(self.path.split("?")[0].rsplit("/", 1)[-1])
                body = json.dumps({"Invoices": [found]} if found else {}).encode()
                try:
                    self.send_response(200 if found else 404)
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
def fake_xero():
    fake = FakeXero()
    yield fake
    fake.stop()


@pytest.fixture
def config_overrides():
    return {"WEBHOOK_LEASE_SECONDS": LEASE}


@pytest.fixture
def app(integration_app, service_env, fake_xero):
    """PlanMan and its workers on real services; the workers' Xero is ``fake_xero``."""
    # A short call timeout: the killed worker's hold on the invoice (a lock that outlives
    # one call to Xero) ends soon, as a lease does.
    service_env.update({"WEBHOOK_LEASE_SECONDS": str(LEASE), "XERO_API_URL": fake_xero.url,
                        "XERO_HTTP_TIMEOUT": "2"})
    return integration_app


@pytest.fixture
def invoice(client):
    user = signup(client)
    invoice = make_invoice(user, make_client(user), lines=((1, "120.00", None),), status="sent")
    connection = Connection(firm_id=user.firm_id, provider="xero", state="connected", tenant_id=TENANT,
                            tenant_name="Demo Company (UK)", connected_at=utcnow(), settings={})
    store_token(connection, {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": 1800})
    db.session.add(connection)
    db.session.add(ExternalLink(firm_id=user.firm_id, provider="xero", tenant_id=TENANT, record_type="invoice",
                                record_id=invoice.id, external_id=INVOICE_ID, remote_status="AUTHORISED"))
    db.session.commit()
    return invoice


def final_states() -> dict:
    db.session.expire_all()
    return {row.id: row.state for row in db.session.scalars(sa.select(WebhookEvent)) if row.state != "queued"}


def payments() -> list[tuple]:
    db.session.expire_all()
    return [(p.provider_payment_id, p.state) for p in db.session.scalars(sa.select(Payment))]


def test_a_payment_delivered_three_times_to_two_workers_is_recorded_once(app, client, invoice, rq_workers,
                                                                         fake_xero):
    fake_xero.invoices[INVOICE_ID] = xero_invoice("PAID", [xero_payment()])
    rq_workers.start(2)
    body = delivery(xero_event())
    for _ in range(3):
        assert post(client, body).status_code == 200
    assert post(client, delivery(xero_event(at="2026-12-02T10:00:01.000"))).status_code == 200  # another event
    wait_until(lambda: len(final_states()) == 2 and set(final_states().values()) == {"processed"}, 30,
               "the events to be processed")
    assert payments() == [(XERO_PAYMENT, "succeeded")]
    assert db.session.get(Invoice, invoice.id).status == "paid"
    assert "status-paid" in client.get(f"/invoices/{invoice.id}").get_data(as_text=True)


_last_sweep = [0.0]


def sweep_every_second() -> bool:
    """What the cron sweep does in production, at most once a second here."""
    if time.monotonic() - _last_sweep[0] >= 1:
        _last_sweep[0] = time.monotonic()
        webhooks.requeue_stale()
    return True


def test_a_worker_killed_while_fetching_the_invoice_leaves_the_event_to_another(app, client, invoice, rq_workers,
                                                                                fake_xero):
    fake_xero.invoices[INVOICE_ID] = xero_invoice("PAID", [xero_payment()])
    fake_xero.release.clear()  # Xero "hangs" until the test lets it answer
    first = rq_workers.start(1)[0]
    post(client, delivery(xero_event()))
    wait_until(lambda: fake_xero.requests, 30, "the first worker to ask Xero for the invoice", first)
    path, headers = fake_xero.requests[0]
    assert path.startswith(f"/api.xro/2.0/Invoices/{INVOICE_ID}") and headers["xero-tenant-id"] == TENANT
    horses = children_of(first.pid)
    _signal_group(first.pid, signal.SIGKILL)
    for horse in horses:
        os.kill(horse, signal.SIGKILL)
    wait_until(lambda: not first.alive() and not any(_running(h) for h in horses), 10, "the first worker to die")
    assert final_states() == {} and payments() == []  # not lost, not half done

    fake_xero.release.set()
    second = rq_workers.start(1)[0]
    time.sleep(LEASE)  # let the dead worker's lease run out (not an assertion on time)
    # The next delivery (any event) re-queues what a dead worker left. The second
    # worker may then find the dead one's lock on the invoice and hold the event
    # for a retry, which the sweep cron runs every minute (`flask
    # requeue-webhook-events`) takes up once its time has come, as may the RQ
    # scheduler once the dead worker's scheduler lock has lapsed.
    post(client, delivery(xero_event(resource_id="99999999-9999-4999-8999-999999999999")))
    wait_until(lambda: sweep_every_second() and len(final_states()) == 2, 90, "the second worker to finish the event",
               second)
    assert set(final_states().values()) == {"processed"}
    assert payments() == [(XERO_PAYMENT, "succeeded")]
    row = db.session.scalar(sa.select(WebhookEvent).where(WebhookEvent.event_type == "INVOICE.UPDATE",
                                                          WebhookEvent.attempts >= 2))
    assert row is not None  # the killed attempt, then the one that finished (after waiting for its hold)
    # The lock the killed worker held on this invoice did not stop the second one.
    assert db.session.get(Invoice, invoice.id).status == "paid"
