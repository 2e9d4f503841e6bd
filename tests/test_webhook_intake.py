"""The provider-neutral webhook intake, through HTTP, with a test-only provider
(tests/webhook_provider.py) whose signature check is a real HMAC.

Intake: refused before anything is stored unless the signature holds; stored
once per event id; answered at once. Processing: real Redis and real rq
workers, in any order and any number of times; an event for an account no
firm holds is dropped; a worker SIGKILLed mid-event leaves the event to
another worker, which finishes it."""
from __future__ import annotations

import json
import os
import signal
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from planman import jobs
from planman.extensions import db
from planman.integrations import registry, webhooks
from planman.models import Connection, Payment, WebhookEvent, utcnow
from tests.fixtures.services import _signal_group, wait_until
from tests.helpers import make_client, make_invoice, new_client, post_form, signup, tax_rate  # noqa: F401
from tests.webhook_provider import SIGNATURE_HEADER, SPEC, OfflineProvider, TestPayProvider, delivery, sign


@pytest.fixture(autouse=True)
def testpay(monkeypatch):
    provider = TestPayProvider()
    monkeypatch.setitem(registry.PROVIDERS, provider.key, provider)
    return provider


def post(client, body: bytes, signature: str | None = "sign", **headers):
    if signature == "sign":
        signature = sign(body)
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return client.post("/webhooks/testpay", data=body, headers=headers, content_type="application/json")


def event(event_id: str, event_type: str = "ping", account: str = "acct_1", **data) -> dict:
    return {"id": event_id, "type": event_type, "account": account, "data": data}


def stored() -> list[tuple[str, str, str]]:
    db.session.expire_all()
    return [(row.event_id, row.event_type, row.state)
            for row in db.session.scalars(sa.select(WebhookEvent).order_by(WebhookEvent.id))]


class TestIntake:
    """In-process (fake Redis): what the provider sees, and what is kept."""

    def test_a_signed_delivery_is_stored_once_per_event_and_queued(self, app, client):
        body = delivery(event("evt_1"), event("evt_2", "payment.succeeded"))
        response = post(client, body)  # no CSRF token, no log-in: providers have neither
        assert response.status_code == 200 and response.get_json() == {"received": 2, "new": 2}
        assert stored() == [("evt_1", "ping", "queued"), ("evt_2", "payment.succeeded", "queued")]
        row = db.session.scalar(sa.select(WebhookEvent).where(WebhookEvent.event_id == "evt_1"))
        assert row.account == "acct_1" and json.loads(row.payload) == {} and row.attempts == 0
        queued = [job.func_name for job in app.push_queue.get_jobs()]
        assert queued == ["planman.jobs.process_webhook_event"] * 2

        again = post(client, delivery(event("evt_2", "payment.succeeded"), event("evt_3")))
        assert again.status_code == 200 and again.get_json() == {"received": 2, "new": 1}
        assert [e for e, _, _ in stored()] == ["evt_1", "evt_2", "evt_3"]
        assert len(app.push_queue.get_jobs()) == 3

    @pytest.mark.parametrize("signature, status", [
        (None, 400),                                           # no signature header
        ("t=abc,v1=00", 400),                                  # malformed
        (sign(b"another body"), 401),                          # signed, but not this body
        (sign(delivery(event("evt_1")), secret=b"guess"), 401),  # another secret
        (sign(delivery(event("evt_1")), timestamp=int(time.time()) - 3600), 401),  # replayed an hour later
    ], ids=["unsigned", "malformed", "another body", "another secret", "replayed"])  # stable ids: xdist workers must agree
    def test_an_unsigned_or_forged_delivery_is_refused_and_nothing_kept(self, app, client, signature, status):
        response = post(client, delivery(event("evt_1")), signature=signature)
        assert response.status_code == status
        assert stored() == [] and app.push_queue.get_jobs() == []

    def test_the_signature_is_checked_before_the_body_is_read(self, client):
        # A forged body that is not even JSON is refused for its signature, not its syntax.
        assert post(client, b"{not json", signature=sign(b"other")).status_code == 401
        assert post(client, b"{not json").status_code == 400  # signed: then it is read, and refused
        assert stored() == []

    def test_a_body_over_the_limit_is_refused(self, client, testpay):
        body = delivery(event("evt_big", padding="x" * testpay.webhook_max_bytes))
        assert post(client, body).status_code == 413
        assert stored() == []

    def test_a_provider_without_webhooks_or_an_unknown_one_is_404(self, client, monkeypatch):
        class Quiet(OfflineProvider):
            key, label = "quiet", "Quiet"  # accepts_webhooks stays False

        monkeypatch.setitem(registry.PROVIDERS, "quiet", Quiet())
        for key in ("quiet", "nobody"):
            assert client.post(f"/webhooks/{key}", data=b"{}").status_code == 404

    def test_a_failing_event_is_kept_and_retried_then_marked_failed(self, app, client):
        post(client, delivery(event("evt_boom", "boom", account="")))
        row_id = db.session.scalar(sa.select(WebhookEvent.id))
        assert jobs.process_webhook_event(row_id) == "failed, will retry"
        row = db.session.get(WebhookEvent, row_id)
        assert (row.state, row.attempts) == ("queued", 1) and row.lease_until > utcnow()  # held till its retry
        assert "the handler fell over" in row.error
        row.attempts, row.lease_until = webhooks.MAX_ATTEMPTS - 1, utcnow() - timedelta(seconds=1)  # its time came
        db.session.commit()
        assert jobs.process_webhook_event(row_id) == "failed"
        assert stored() == [("evt_boom", "boom", "failed")]

    def test_a_provider_outage_is_waited_out_then_shown_to_the_firm_with_process_again(self, app, client):
        """A handler that cannot reach the provider tries again within seconds, then waits hours
        (held till then, so no lease check takes it early); given up on, the
        event is on the firm's page of that provider, and an admin can send it
        through again."""
        user = signup(client)
        connect(user)
        app.redis.set("testpay:down", 1)
        post(client, delivery(event("evt_refund", "needs-testpay")))
        row_id = db.session.scalar(sa.select(WebhookEvent.id))
        waits = []
        for _ in webhooks.TEMPORARY_BACKOFF:
            assert jobs.process_webhook_event(row_id) == "failed, will retry"
            row = db.session.get(WebhookEvent, row_id)
            waits.append(round((row.lease_until - utcnow()).total_seconds()))
            assert jobs.process_webhook_event(row_id).startswith("not claimable")  # not before its time
            row.lease_until = utcnow() - timedelta(seconds=1)  # the time has come
            db.session.commit()
        assert waits == [2, 4, 8, 16, 60, 300, 900, 3600, 10800, 21600, 43200]  # seconds: about a day in all
        assert jobs.process_webhook_event(row_id) == "failed"
        html = client.get("/integrations/testpay").get_data(as_text=True)
        assert 'id="failed-events"' in html and "1 event from TestPay could not be processed" in html

        stranger = new_client(app)
        signup(stranger)
        assert 'id="failed-events"' not in stranger.get("/integrations/testpay").get_data(as_text=True)
        post_form(stranger, "/integrations/testpay/events/retry", {}, form_url="/integrations/")
        assert stored() == [("evt_refund", "needs-testpay", "failed")]  # another firm's retry touches nothing

        app.redis.delete("testpay:down")
        answer = post_form(client, "/integrations/testpay/events/retry", {}, form_url="/integrations/testpay")
        assert answer.status_code == 302
        assert "Processing 1 event from TestPay again." in client.get("/integrations/testpay").get_data(as_text=True)
        assert jobs.process_webhook_event(row_id) == "processed"
        assert stored() == [("evt_refund", "needs-testpay", "processed")]
        assert 'id="failed-events"' not in client.get("/integrations/testpay").get_data(as_text=True)

    def test_an_event_being_processed_is_not_taken_by_a_second_job(self, app, client):
        post(client, delivery(event("evt_1")))
        row = db.session.scalar(sa.select(WebhookEvent))
        row.lease_until = utcnow().replace(year=2100)  # another worker holds it
        db.session.commit()
        assert jobs.process_webhook_event(row.id).startswith("not claimable")
        assert stored() == [("evt_1", "ping", "queued")] and app.redis.lrange("testpay:done", 0, -1) == []


# -- Real Redis and real workers ------------------------------------------------

LEASE = 2


@pytest.fixture
def config_overrides():
    return {"WEBHOOK_LEASE_SECONDS": LEASE}


@pytest.fixture
def live(request, integration_app, service_env):
    """Workers that know the test provider, with a short lease."""
    service_env["PLANMAN_EXTRA_PROVIDERS"] = SPEC
    service_env["WEBHOOK_LEASE_SECONDS"] = str(LEASE)
    return integration_app


@pytest.fixture
def app(request, _schema, database_url, config_overrides):
    """Worker tests (marked integration) run on real services; intake tests on the fast fake Redis."""
    if request.node.get_closest_marker("integration"):
        yield request.getfixturevalue("live")
        return
    import fakeredis
    from rq import Queue

    from planman import create_app
    from tests.conftest import _config, _wipe_all_rows

    app = create_app(_config(database_url, **config_overrides))
    app.redis = fakeredis.FakeRedis()
    app.push_queue = Queue(app.config["RQ_QUEUE"], connection=app.redis)
    with app.app_context():
        yield app
        db.session.remove()
        _wipe_all_rows()
        db.engine.dispose()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:  # a zombie has died
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def connect(user, account="acct_1"):
    db.session.add(Connection(firm_id=user.firm_id, provider="testpay", state="connected", tenant_id=account,
                              tenant_name="TestPay account", connected_at=utcnow()))
    db.session.commit()


def done(real_redis) -> list[str]:
    return [value.decode() for value in real_redis.lrange("testpay:done", 0, -1)]


def final_states() -> dict:
    db.session.expire_all()
    return {row.event_id: row.state for row in db.session.scalars(sa.select(WebhookEvent))
            if row.state != "queued"}


@pytest.mark.integration
class TestProcessing:
    def test_a_payment_reported_by_webhook_pays_the_invoice_once(self, live, client, real_redis, rq_workers):
        user = signup(client)
        connect(user)
        invoice = make_invoice(user, make_client(user), lines=((1, "100.00", tax_rate(user, "VAT 20%")),),
                               status="sent")
        rq_workers.start(1)
        paid = event("evt_pay", "payment.succeeded", invoice_id=invoice.id, payment_id="pay_1", amount="120.00")
        for _ in range(3):  # the provider delivers it three times
            assert post(client, delivery(paid)).status_code == 200
        wait_until(lambda: final_states() == {"evt_pay": "processed"}, 30, "the event to be processed")
        html = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
        assert "status-paid" in html and "TestPay (pay_1)" in html
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1
        assert done(real_redis) == ["evt_pay"]

    def test_events_in_any_order_are_all_processed_once(self, live, client, real_redis, rq_workers):
        connect(signup(client))
        rq_workers.start(2)
        ids = [f"evt_{n}" for n in (5, 2, 4, 1, 3)]
        for event_id in ids:
            post(client, delivery(event(event_id)))
        post(client, delivery(*[event(event_id) for event_id in reversed(ids)]))  # all again, reversed
        wait_until(lambda: len(final_states()) == 5, 30, "every event to be processed")
        assert set(final_states().values()) == {"processed"}
        assert sorted(done(real_redis)) == sorted(ids)

    def test_an_event_for_an_account_no_firm_holds_is_dropped(self, live, client, real_redis, rq_workers):
        connect(signup(client))
        rq_workers.start(1)
        post(client, delivery(event("evt_stranger", account="acct_nobody"), event("evt_mine")))
        wait_until(lambda: len(final_states()) == 2, 30, "both events to be handled")
        assert final_states() == {"evt_stranger": "dropped", "evt_mine": "processed"}
        assert done(real_redis) == ["evt_mine"]
        row = db.session.scalar(sa.select(WebhookEvent).where(WebhookEvent.event_id == "evt_stranger"))
        assert row.error == "No firm holds this account." and row.firm_id is None
        assert "which no firm holds: dropped" in rq_workers.logs()

    def test_a_worker_killed_mid_event_leaves_it_to_another(self, live, client, real_redis, rq_workers):
        connect(signup(client))
        first = rq_workers.start(1)[0]
        post(client, delivery(event("evt_slow", "slow")))
        wait_until(lambda: real_redis.get("testpay:started:evt_slow"), 30, "the first worker to start the event")
        assert int(real_redis.get("testpay:started:evt_slow")) == first.pid
        horse = int(real_redis.get("testpay:horse:evt_slow"))
        _signal_group(first.pid, signal.SIGKILL)  # the worker and its scheduler
        os.kill(horse, signal.SIGKILL)  # and the work-horse, in a session of its own
        wait_until(lambda: not first.alive() and not _running(horse), 10, "the first worker to die")
        assert stored() == [("evt_slow", "slow", "queued")]  # not lost, not finished

        second = rq_workers.start(1)[0]
        real_redis.set("testpay:release", 1)  # from now on the handler finishes
        # The provider's next delivery (here: another event) finds the event whose
        # lease ran out and queues it again; the second worker finishes both.
        time.sleep(LEASE)  # let the dead worker's lease run out (not an assertion on time)
        post(client, delivery(event("evt_next")))
        wait_until(lambda: final_states() == {"evt_slow": "processed", "evt_next": "processed"}, 30,
                   "the second worker to finish the event", second)
        assert int(real_redis.get("testpay:started:evt_slow")) == second.pid
        assert sorted(done(real_redis)) == ["evt_next", "evt_slow"]
        row = db.session.scalar(sa.select(WebhookEvent).where(WebhookEvent.event_id == "evt_slow"))
        assert row.attempts == 2 and row.processed_at is not None

    def test_the_cli_queues_again_what_a_dead_worker_left(self, live, client, real_redis, rq_workers):
        connect(signup(client))
        post(client, delivery(event("evt_orphan")))
        # Its job is lost (Redis flushed, as if it had failed over) while the row waits.
        real_redis.flushdb()
        row = db.session.scalar(sa.select(WebhookEvent))
        row.received_at = utcnow().replace(year=2020)
        db.session.commit()
        rq_workers.start(1)
        result = live.test_cli_runner().invoke(args=["requeue-webhook-events"])
        assert "1 webhook event(s) queued again." in result.output
        wait_until(lambda: final_states() == {"evt_orphan": "processed"}, 30, "the event to be processed")
