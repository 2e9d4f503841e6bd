"""The core's signed webhook delivery, on a minimal provider built the way every stand-in is:
deliveries reach a real HTTP receiver, signed by the provider's signer, retried with backoff,
duplicated, reordered, paused and flushed through the control API."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from flask import Blueprint, jsonify, request

from standins.core import webhooks
from standins.core.app import provider_app
from standins.core.store import SCHEMA, Store, current
from tests.standins.receiver import Receiver


def sign(secret: str, body: bytes, timestamp: int) -> dict:
    return {"X-Test-Signature": f"{timestamp}:" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


class HookStore(Store):
    SCHEMA = SCHEMA + webhooks.SCHEMA


api = Blueprint("api", __name__)
control = Blueprint("control", __name__, url_prefix="/_control")
webhooks.add_control_routes(control)


@api.post("/events")
def make_event():
    sent = request.get_json()
    with current().tx() as db:
        n = webhooks.emit(db, event_id=sent["id"], event_type=sent["type"], body=json.dumps(sent))
    return jsonify({"queued": n})


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def client(tmp_path, receiver):
    app = provider_app(__name__, config_key="TEST_STANDIN", cfg={"TESTING": True}, store=HookStore(tmp_path / "t.db"),
                       seed=lambda db: None, blueprints=(api, control), webhooks=webhooks.Deliveries(sign))
    c = app.test_client()
    assert c.post("/_control/webhooks/endpoints", json={"url": receiver.url, "secret": "s3cret",
                                                         "events": ["thing.made"]}).status_code == 201
    return c


def event(client, n: int, kind: str = "thing.made"):
    return client.post("/events", json={"id": f"evt_{n}", "type": kind}).get_json()["queued"]


def ids(receiver):
    return [json.loads(r["body"])["id"] for r in receiver.received]


def test_a_delivery_is_signed_by_the_providers_signer_over_the_exact_body(client, receiver):
    assert event(client, 1) == 1
    assert event(client, 2, "other.kind") == 0  # the endpoint did not ask for it
    [attempt] = client.post("/_control/webhooks/flush").get_json()["attempts"]
    assert attempt["delivered"] and attempt["status"] == 200
    [got] = receiver.received
    stamp, mac = got["headers"]["X-Test-Signature"].split(":")
    assert mac == hmac.new(b"s3cret", got["body"], hashlib.sha256).hexdigest()
    assert json.loads(got["body"]) == {"id": "evt_1", "type": "thing.made"}
    assert client.get("/_control/webhooks/deliveries").get_json()[0]["state"] == "delivered"


def test_a_refused_delivery_is_retried_with_backoff_then_given_up(client, receiver):
    client.post("/_control/webhooks", json={"retry_base_seconds": 3600, "max_attempts": 2})
    receiver.answers = [500, 503]
    event(client, 1)
    [first] = client.post("/_control/webhooks/flush").get_json()["attempts"]
    assert (first["status"], first["delivered"]) == (500, False)
    [queued] = client.get("/_control/webhooks/deliveries").get_json()
    assert queued["state"] == "pending" and queued["attempts"] == 1
    assert queued["due"] > time.time() + 3000  # backed off: not due for an hour
    app = client.application
    assert app.extensions["standins.webhooks"].deliver_due(app.extensions["standins.store"]) == []
    [second] = client.post("/_control/webhooks/flush").get_json()["attempts"]  # a flush does not wait
    assert second["attempt"] == 2 and second["status"] == 503
    assert client.get("/_control/webhooks/deliveries").get_json()[0]["state"] == "failed"
    assert client.post("/_control/webhooks/flush").get_json()["attempts"] == []  # given up
    assert len(receiver.received) == 2


def test_an_unreachable_receiver_counts_as_a_failed_attempt(client, receiver):
    receiver.close()
    event(client, 1)
    [attempt] = client.post("/_control/webhooks/flush").get_json()["attempts"]
    assert attempt["status"] is None and "ConnectionError" in attempt["error"]


def test_pause_holds_deliveries_and_reverse_order_sends_them_newest_first(client, receiver):
    client.post("/_control/webhooks", json={"paused": True})
    for n in (1, 2, 3):
        event(client, n)
    store, machinery = client.application.extensions["standins.store"], client.application.extensions["standins.webhooks"]
    assert machinery.deliver_due(store) == []  # paused: the background loop sends nothing
    client.post("/_control/webhooks/flush", json={"order": "reverse"})
    assert ids(receiver) == ["evt_3", "evt_2", "evt_1"]


def test_duplicate_next_delivers_each_of_the_next_events_twice(client, receiver):
    assert client.post("/_control/webhooks", json={"duplicate_next": 1}).get_json()["duplicate_next"] == 1
    event(client, 1)
    event(client, 2)
    client.post("/_control/webhooks/flush")
    assert ids(receiver) == ["evt_1", "evt_1", "evt_2"]
    assert client.get("/_control/webhooks").get_json()["duplicate_next"] == 0


def test_bad_switches_are_refused_with_a_message(client):
    assert "unknown" in client.post("/_control/webhooks", json={"bogus": 1}).get_json()["error"]
    assert client.post("/_control/webhooks", json={"order": "sideways"}).status_code == 400
    assert client.post("/_control/webhooks", json={"paused": "yes"}).status_code == 400
    assert client.post("/_control/webhooks/endpoints", json={"url": "ftp://x"}).status_code == 400


def test_the_background_thread_delivers_without_a_flush(tmp_path, receiver):
    app = provider_app(__name__ + ".bg", config_key="TEST_STANDIN", cfg={"TESTING": True, "DELIVER_WEBHOOKS": True},
                       store=HookStore(tmp_path / "bg.db"), seed=lambda db: None, blueprints=(api, control),
                       webhooks=webhooks.Deliveries(sign, poll_seconds=0.05))
    try:
        c = app.test_client()
        c.post("/_control/webhooks/endpoints", json={"url": receiver.url, "secret": "s", "events": ["*"]})
        event(c, 7)
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ids(receiver) == ["evt_7"]
    finally:
        app.extensions["standins.webhooks"].stop()
