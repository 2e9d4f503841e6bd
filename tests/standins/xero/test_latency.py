"""The latency model (standins/core/latency.py) as the Xero stand-in applies it:
off by default, switched on through the control API, a base time per call plus
a time per record the call carries. The delays are read from the sleeps the
stand-in asks for, never timed."""
import random

import pytest

from standins.core import latency
from standins.xero.demo import UK_TENANT_ID

from .conftest import Api, connect


@pytest.fixture
def sleeps(monkeypatch):
    asked = []
    monkeypatch.setattr(latency.time, "sleep", asked.append)
    return asked


def contacts(n):
    return {"Contacts": [{"Name": f"Client {i}"} for i in range(n)]}


def test_off_by_default_in_tests(xero, api, sleeps, monkeypatch):
    monkeypatch.delenv("STANDINS_LATENCY", raising=False)
    assert api.put("/Contacts", contacts(3)).status_code == 200
    assert sleeps == []
    assert xero.get("/_control/latency").get_json()["enabled"] is False


def test_on_through_the_control_api_a_call_takes_base_plus_per_record(xero, api, sleeps):
    answer = xero.post("/_control/latency", json={"enabled": True, "base_ms": 100, "per_record_ms": 10, "jitter": 0})
    assert answer.status_code == 200 and answer.get_json()["base_ms"] == 100

    assert api.put("/Contacts", contacts(50)).status_code == 200  # a batch of 50
    assert api.get("/Organisation").status_code == 200  # one record
    assert api.get("/Contacts?where=Name%3D%3D%22Nobody%22").status_code == 200  # found nothing
    assert sleeps == pytest.approx([0.6, 0.11, 0.1])
    assert xero.get("/_control/stats").get_json()["busy_seconds"] >= 0


def test_scale_and_the_providers_estimate(xero, api, sleeps):
    xero.post("/_control/latency", json={"enabled": True, "jitter": 0, "scale": 0.5})
    api.put("/Contacts", contacts(10))
    estimate = xero.get("/_control/latency").get_json()
    assert (estimate["base_ms"], estimate["per_record_ms"]) == (400, 30)  # Xero's estimate
    assert sleeps == pytest.approx([(400 + 30 * 10) * 0.5 / 1000])


def test_jitter_stays_within_its_share():
    model = latency.Model(enabled=True, base_ms=1000, jitter=0.25)
    rng = random.Random(7)
    delays = [model.seconds(0, rng) for _ in range(200)]
    assert all(0.75 <= d <= 1.25 for d in delays) and len(set(delays)) > 100


def test_switched_on_for_a_whole_run_by_the_environment():
    estimate = latency.Model(base_ms=400, per_record_ms=30, jitter=0.25)
    assert latency.from_environment(estimate, {}).enabled is False
    on = latency.from_environment(estimate, {"STANDINS_LATENCY": "on", "STANDINS_LATENCY_SCALE": "0.25"})
    assert (on.enabled, on.base_ms, on.scale) == (True, 400, 0.25)


def test_bad_settings_are_refused(xero):
    assert xero.post("/_control/latency", json={"base_ms": -1}).status_code == 400
    assert xero.post("/_control/latency", json={"jitter": 2}).status_code == 400
    assert xero.post("/_control/latency", json={"speed": 1}).status_code == 400
    assert xero.post("/_control/latency", json={"enabled": "yes"}).status_code == 400


def test_more_organisations_to_connect_to(xero):
    added = xero.post("/_control/organisations", json={"name": "Firm 7 Ltd"}).get_json()
    again = xero.post("/_control/organisations", json={"name": "Firm 7 Ltd"}).get_json()
    assert added == again and added["tenantId"] != UK_TENANT_ID
    api = Api(xero, connect(xero, tenants=(added["tenantId"],))["access_token"], added["tenantId"])
    assert api.get("/Organisation").get_json()["Organisations"][0]["Name"] == "Firm 7 Ltd"
    assert api.put("/Contacts", contacts(1)).status_code == 200
    assert xero.post("/_control/organisations", json={}).status_code == 400
