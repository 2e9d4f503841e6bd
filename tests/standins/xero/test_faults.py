"""Injected failures: 5xx, lost responses, latency, token expiry, seeded random mode."""
import time

import pytest
import requests

from standins.xero.accounting import LostResponse
from standins.xero.demo import UK_TENANT_ID

from .conftest import API, Api, connect


def test_fail_next_with_503_then_recovers_and_applies_nothing(xero, api):
    xero.post("/_control/faults", json={"fail_next": 2, "fail_status": 503})
    assert api.put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]}).status_code == 503
    assert api.get("/Contacts").status_code == 503
    assert api.get("/Contacts").get_json()["Contacts"] == []
    assert xero.get("/_control/stats").get_json()["injected_5xx"] == 2


def test_fail_status_must_be_500_or_503(xero):
    assert xero.post("/_control/faults", json={"fail_next": 1, "fail_status": 418}).status_code == 400
    assert xero.post("/_control/faults", json={"explode": 1}).status_code == 400


def test_lost_response_over_a_real_socket(live_url):
    http = requests.Session()
    tokens = connect(_RequestsClient(http, live_url))
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": UK_TENANT_ID,
               "Idempotency-Key": "acme-1"}
    http.post(f"{live_url}/_control/faults", json={"drop_next_writes": 1})
    with pytest.raises(requests.ConnectionError):
        http.put(f"{live_url}{API}/Contacts", json={"Contacts": [{"Name": "Acme Ltd"}]}, headers=headers, timeout=10)
    # The write was applied although no answer came back...
    listed = http.get(f"{live_url}{API}/Contacts", headers=headers, timeout=10).json()["Contacts"]
    assert [c["Name"] for c in listed] == ["Acme Ltd"]
    # ...and a retry with the same key gets the answer that was lost, creating nothing new.
    retry = http.put(f"{live_url}{API}/Contacts", json={"Contacts": [{"Name": "Acme Ltd"}]}, headers=headers,
                     timeout=10)
    assert retry.status_code == 200 and retry.json()["Contacts"][0]["ContactID"] == listed[0]["ContactID"]
    assert http.get(f"{live_url}/_control/stats", timeout=10).json()["lost_responses"] == 1


def test_lost_response_in_process_raises_after_applying(xero, api):
    xero.post("/_control/faults", json={"drop_next_writes": 1})
    assert api.get("/Contacts").status_code == 200  # reads are not dropped
    with pytest.raises(LostResponse):
        api.put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]})
    assert [c["Name"] for c in api.get("/Contacts").get_json()["Contacts"]] == ["Acme Ltd"]


def test_latency(xero, api):
    xero.post("/_control/faults", json={"latency_ms": 250})
    started = time.monotonic()
    assert api.get("/Organisation").status_code == 200
    assert time.monotonic() - started >= 0.25


def test_expire_tokens_every_n_calls(xero, api):
    xero.post("/_control/faults", json={"expire_tokens_every": 2})
    assert api.get("/Organisation").status_code == 200
    assert api.get("/Organisation").status_code == 200
    r = api.get("/Organisation")
    assert r.status_code == 401 and r.get_json()["detail"].startswith("TokenExpired")


def test_faults_clear(xero, api):
    xero.post("/_control/faults", json={"fail_next": 5})
    xero.post("/_control/faults/clear")
    assert api.get("/Organisation").status_code == 200


def _random_run(xero):
    xero.post("/_control/reset")
    token = connect(xero)["access_token"]
    xero.post("/_control/faults", json={"random": {"seed": 7, "error_rate": 0.3, "rate_limit_rate": 0.2}})
    return [Api(xero, token).get("/Organisation").status_code for _ in range(30)]


def test_random_mode_is_repeatable_for_a_seed(xero):
    first = _random_run(xero)
    assert first == _random_run(xero)
    assert {200, 429} <= set(first) and set(first) & {500, 503}


class _RequestsClient:
    """Enough of Flask's test-client interface for conftest.connect, over requests."""

    def __init__(self, http, base):
        self.http, self.base = http, base

    def post(self, path, data=None, headers=None):
        r = self.http.post(self.base + path, data=data, headers=headers, allow_redirects=False, timeout=10)
        return _Response(r)


class _Response:
    def __init__(self, r):
        self.status_code, self.headers, self._r = r.status_code, r.headers, r

    def get_json(self):
        return self._r.json()

    def get_data(self, as_text=False):
        return self._r.text
