"""Per-organisation rate limits as Xero applies them, with Xero's headers."""
import threading

from standins.xero.demo import UK_TENANT_ID, US_TENANT_ID

from ..windows import within_one_minute_window
from .conftest import Api, connect


def test_every_accounting_response_carries_remaining_counts(api):
    within_one_minute_window(UK_TENANT_ID)
    r = api.get("/Organisation")
    assert r.headers["X-MinLimit-Remaining"] == "59"
    assert r.headers["X-DayLimit-Remaining"] == "4999"
    assert r.headers["X-AppMinLimit-Remaining"] == "9999"
    assert api.get("/Contacts").headers["X-MinLimit-Remaining"] == "58"


def test_minute_limit_gives_429_with_retry_after(xero, api):
    xero.post("/_control/limits", json={"per_minute": 3})
    within_one_minute_window(UK_TENANT_ID)
    remaining = [api.get("/Organisation").headers["X-MinLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    r = api.get("/Organisation")
    assert r.status_code == 429
    assert r.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert xero.get("/_control/stats").get_json()["rate_limited"] == 1


def test_day_limit(xero, api):
    xero.post("/_control/limits", json={"per_day": 1})
    assert api.get("/Organisation").status_code == 200
    r = api.get("/Organisation")
    assert r.status_code == 429 and r.headers["X-Rate-Limit-Problem"] == "day"
    assert 1 <= int(r.headers["Retry-After"]) <= 86400


def test_limits_are_per_organisation(xero):
    token = connect(xero, tenants=(UK_TENANT_ID, US_TENANT_ID))["access_token"]
    xero.post("/_control/limits", json={"per_minute": 1})
    within_one_minute_window(UK_TENANT_ID)
    assert Api(xero, token, UK_TENANT_ID).get("/Organisation").status_code == 200
    assert Api(xero, token, UK_TENANT_ID).get("/Organisation").status_code == 429
    assert Api(xero, token, US_TENANT_ID).get("/Organisation").status_code == 200


def test_concurrent_limit_counts_calls_in_flight_across_threads(stand_in, xero, api):
    xero.post("/_control/limits", json={"in_flight": 2})
    xero.post("/_control/faults", json={"latency_ms": 600})
    start, results = threading.Barrier(5), []

    def call():
        client = stand_in.test_client()
        start.wait()
        r = Api(client, api.token).get("/Organisation")
        results.append((r.status_code, r.headers.get("X-Rate-Limit-Problem"), r.headers.get("Retry-After")))

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=str) == sorted([(200, None, None)] * 2 + [(429, "concurrent", None)] * 3, key=str)
    # Finished calls leave the count: the next call is admitted.
    xero.post("/_control/faults/clear")
    assert api.get("/Organisation").status_code == 200
    assert xero.get("/_control/stats").get_json()["in_flight"] == 0


def test_injected_rate_limit(xero, api):
    xero.post("/_control/faults", json={"rate_limit_next": 1, "retry_after": 7})
    r = api.get("/Organisation")
    assert r.status_code == 429 and r.headers["Retry-After"] == "7" and r.headers["X-Rate-Limit-Problem"] == "minute"
    assert api.get("/Organisation").status_code == 200
