"""The per-call admission every provider's API runs after it knows whose call it is:
count the call, draw its injected faults (core/faults.py) and take a rate-limit slot
(core/ratelimit.py). The provider keeps its own authentication and answers; this is
only the order and the bookkeeping, which must be the same everywhere (stats read the
same counters for every provider).

Use: in before_request, inside the write transaction, `call = guard.admit(db, account,
limits, is_write)`; if `call["retry_after"]` refuse with the provider's 429; after the
transaction `guard.pause(call)` and, if `call["fail_status"]`, answer the provider's 5xx;
register `guard.finish` (after_request) and `guard.release` (teardown_request)."""
from __future__ import annotations

import time

from flask import g

from . import faults, ratelimit
from .store import Store, current


def admit(db, account: str, limits: dict, is_write: bool) -> dict:
    """{"refused": a 429, "retry_after": seconds (None for the in-flight limit), "problem": the limit hit
    ("injected", "minute", "day", "appminute", "concurrent"), "fail_status", "latency_ms", "drop",
    "remaining"}; sets g.in_flight_id and g.drop for finish/release."""
    g.in_flight_id, g.drop = None, False
    Store.bump(db, f"calls:{account}")
    plan = faults.plan(db, is_write)
    call = {**plan, "refused": False, "retry_after": None, "problem": None, "remaining": None}
    if plan["rate_limit"]:
        Store.bump(db, "rate_limited")
        Store.bump(db, "rate_limited:injected")
        return {**call, "refused": True, "retry_after": plan["rate_limit"], "problem": "injected",
                "remaining": ratelimit.remaining(db, account, limits)}
    admitted = ratelimit.admit(db, account, limits)
    call["remaining"] = admitted["remaining"]
    if not admitted["ok"]:
        return {**call, "refused": True, "retry_after": admitted["retry_after"], "problem": admitted["problem"]}
    g.in_flight_id = admitted["in_flight_id"]
    if plan["fail_status"]:
        Store.bump(db, "injected_5xx")
    g.drop = plan["drop"]
    return call


def pause(call: dict) -> None:
    """The injected latency, slept outside the write transaction."""
    if call.get("latency_ms"):
        time.sleep(call["latency_ms"] / 1000)


def finish(response):
    """after_request: a write picked for a lost answer is committed, then its answer is lost."""
    if g.get("drop") and response.status_code < 500:
        faults.drop_connection(current())
    return response


def release(_exc=None) -> None:
    """teardown_request: the call is no longer in flight."""
    if g.get("in_flight_id"):
        with current().tx() as db:
            ratelimit.release(db, g.in_flight_id)
        g.in_flight_id = None
