"""Per-account rate limits (a Xero organisation, a FreshBooks account), counted in SQLite so all processes agree.

limits: {"in_flight", "per_minute", "per_day", "app_per_minute"} (app: all
accounts together). Minute and day limits use fixed windows; each account's
windows start at its own offset (Xero says windows reset at different times
per tenant). The
in-flight count is a row per running call, deleted when the call ends; rows
older than STALE_SECONDS are ignored so a crashed worker cannot wedge a tenant."""
from __future__ import annotations

import math
import time
import zlib

from .store import Store

STALE_SECONDS = 120
MINUTE, DAY = 60, 86400


def _window_start(scope: str, length: int, now: float) -> float:
    offset = zlib.crc32(scope.encode()) % length
    return math.floor((now - offset) / length) * length + offset


def _used(db, scope: str, kind: str, length: int, now: float) -> tuple[int, float]:
    start = _window_start(scope, length, now)
    row = db.execute("SELECT window_start, count FROM rate_windows WHERE scope=? AND kind=?",
                     (scope, kind)).fetchone()
    used = row["count"] if row and row["window_start"] == start else 0
    return used, start


def _take(db, scope, kind, start, used):
    db.execute("INSERT INTO rate_windows(scope, kind, window_start, count) VALUES (?, ?, ?, ?) "
               "ON CONFLICT(scope, kind) DO UPDATE SET window_start=excluded.window_start, count=excluded.count",
               (scope, kind, start, used + 1))


def admit(db, tenant_id: str, limits: dict) -> dict:
    """Count one call, or refuse it. Runs inside the caller's write transaction.

    Returns {"ok", "problem", "retry_after", "in_flight_id", "remaining": {"minute", "day", "app_minute"}};
    problem is "day", "minute", "appminute" or "concurrent"."""
    now = time.time()
    minute_used, minute_start = _used(db, tenant_id, "minute", MINUTE, now)
    day_used, day_start = _used(db, tenant_id, "day", DAY, now)
    app_used, app_start = _used(db, "app", "minute", MINUTE, now)
    running = db.execute("SELECT COUNT(*) FROM in_flight WHERE tenant_id=? AND started>?",
                         (tenant_id, now - STALE_SECONDS)).fetchone()[0]
    result = {"ok": False, "problem": None, "retry_after": None, "in_flight_id": None}
    if day_used >= limits["per_day"]:
        result.update(problem="day", retry_after=math.ceil(day_start + DAY - now))
    elif minute_used >= limits["per_minute"]:
        result.update(problem="minute", retry_after=math.ceil(minute_start + MINUTE - now))
    elif app_used >= limits["app_per_minute"]:
        result.update(problem="appminute", retry_after=math.ceil(app_start + MINUTE - now))
    elif running >= limits["in_flight"]:
        result.update(problem="concurrent")
    else:
        _take(db, tenant_id, "minute", minute_start, minute_used)
        _take(db, tenant_id, "day", day_start, day_used)
        _take(db, "app", "minute", app_start, app_used)
        minute_used, day_used, app_used = minute_used + 1, day_used + 1, app_used + 1
        result["ok"] = True
        result["in_flight_id"] = db.execute("INSERT INTO in_flight(tenant_id, started) VALUES (?, ?)",
                                            (tenant_id, now)).lastrowid
    if not result["ok"]:
        Store.bump(db, "rate_limited")
        Store.bump(db, f"rate_limited:{result['problem']}")
    result["remaining"] = _remaining(limits, minute_used, day_used, app_used)
    return result


def _remaining(limits: dict, minute_used: int, day_used: int, app_used: int) -> dict:
    return {"minute": max(limits["per_minute"] - minute_used, 0), "day": max(limits["per_day"] - day_used, 0),
            "app_minute": max(limits["app_per_minute"] - app_used, 0)}


def remaining(db, tenant_id: str, limits: dict) -> dict:
    """The calls left in each window without counting a call (for injected 429s)."""
    now = time.time()
    return _remaining(limits, _used(db, tenant_id, "minute", MINUTE, now)[0], _used(db, tenant_id, "day", DAY, now)[0],
                      _used(db, "app", "minute", MINUTE, now)[0])


def release(db, in_flight_id: int) -> None:
    db.execute("DELETE FROM in_flight WHERE id=?", (in_flight_id,))
