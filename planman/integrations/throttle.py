"""A per-tenant call budget shared by every worker process, kept in Redis.

Each provider declares its limits (``Provider.rate_limits``: calls in flight
and per minute, per tenant, and per minute for the whole app across tenants).
``acquire`` either grants a slot at once or says how long to wait, so a job
can reschedule itself instead of sleeping in a worker. In-flight slots are
leases that expire on their own, so a killed worker cannot leak them; the
minute budgets are sliding logs, so no 60-second window on the provider's
clock can ever see more than the limit from us.

Calls made for a bulk send (inside ``bulk_calls()``) stop short of each limit
by a reserve (``THROTTLE_INTERACTIVE_RESERVE``, a share of it), which only
single pushes, status checks and connect-time loading may use: a bookkeeper's
Send is never throttled behind a bulk send of the same firm."""
from __future__ import annotations

import math
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Optional

from redis import Redis

# KEYS: inflight zset, calls zset, blocked-until key, app-wide calls zset
# ARGV: now, lease_seconds, max_in_flight, max_per_minute, token, app_max_per_minute (0: none)
_ACQUIRE = """
local now = tonumber(ARGV[1])
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
if blocked > now then return tostring(blocked - now) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return tostring(math.max(0.05, tonumber(oldest[2]) + 60 - now))
end
local app_max = tonumber(ARGV[6])
if app_max > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 60)
  if redis.call('ZCARD', KEYS[4]) >= app_max then
    local oldest = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    return tostring(math.max(0.05, tonumber(oldest[2]) + 60 - now))
  end
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local soonest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(math.max(0.05, math.min(1, tonumber(soonest[2]) - now)))
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('EXPIRE', KEYS[1], 120)
redis.call('EXPIRE', KEYS[2], 120)
if app_max > 0 then
  redis.call('ZADD', KEYS[4], now, ARGV[5])
  redis.call('EXPIRE', KEYS[4], 120)
end
return 'ok'
"""

@dataclass
class Throttled(Exception):
    """No call may be made now; ``wait`` seconds is the earliest sensible retry."""

    wait: float

    def __str__(self) -> str:
        return f"throttled for {self.wait:.1f}s"


class TenantThrottle:
    # Waiting this long for an in-flight slot is cheaper than a reschedule
    # round trip through the RQ scheduler; anything longer is rescheduled.
    MAX_INLINE_WAIT = 1.0

    def __init__(self, redis: Redis, provider: str, tenant_id: str, *, max_in_flight: int, max_per_minute: int,
                 lease_seconds: float, app_max_per_minute: Optional[int] = None, interactive_reserve: float = 0.0):
        prefix = f"throttle:{provider}:{tenant_id}"
        self.redis = redis
        # The app-wide log is one per provider, shared by all its tenants.
        self.keys = [f"{prefix}:inflight", f"{prefix}:calls", f"{prefix}:blocked_until", f"throttle:{provider}:app:calls"]
        self.max_in_flight = max_in_flight
        self.max_per_minute = max_per_minute
        self.app_max_per_minute = app_max_per_minute or 0
        self.interactive_reserve = interactive_reserve
        self.lease_seconds = lease_seconds
        self._acquire = redis.register_script(_ACQUIRE)

    def limits_now(self) -> tuple[int, int, int]:
        """(in flight, per minute, app per minute) this call may use: less the reserve for bulk calls."""
        limits = (self.max_in_flight, self.max_per_minute, self.app_max_per_minute)
        if not _bulk.get() or self.interactive_reserve <= 0:
            return limits
        # At least one of each left to single pushes, and at least one for the bulk send itself.
        return tuple(limit and max(1, limit - max(1, math.ceil(limit * self.interactive_reserve)))
                     for limit in limits)

    def try_acquire(self) -> tuple[str | None, float]:
        token = uuid.uuid4().hex
        in_flight, per_minute, app_per_minute = self.limits_now()
        result = self._acquire(
            keys=self.keys,
            args=[time.time(), self.lease_seconds, in_flight, per_minute, token, app_per_minute],
        )
        result = result.decode() if isinstance(result, bytes) else str(result)
        if result == "ok":
            return token, 0.0
        return None, float(result)

    @contextmanager
    def slot(self):
        """Hold one call slot for the duration of a request, or raise ``Throttled``."""
        deadline = time.monotonic() + self.MAX_INLINE_WAIT
        while True:
            token, wait = self.try_acquire()
            if token:
                break
            if wait > self.MAX_INLINE_WAIT or time.monotonic() + wait > deadline:
                raise Throttled(wait)
            time.sleep(wait)
        try:
            yield
        finally:
            self.redis.zrem(self.keys[0], token)

    def block_for(self, seconds: float) -> None:
        """Stop every worker calling this tenant for ``seconds`` (after a 429)."""
        until = time.time() + seconds
        current = float(self.redis.get(self.keys[2]) or 0)
        if until > current:
            self.redis.set(self.keys[2], until, ex=int(seconds) + 5)

    def blocked_for(self) -> float:
        return max(0.0, float(self.redis.get(self.keys[2]) or 0) - time.time())


_bulk: ContextVar[bool] = ContextVar("planman_bulk_calls", default=False)


@contextmanager
def bulk_calls():
    """Calls made inside are a bulk send's: they leave the interactive reserve alone."""
    token = _bulk.set(True)
    try:
        yield
    finally:
        _bulk.reset(token)


def for_connection(provider, connection) -> TenantThrottle:
    """The call budget of ``connection``'s tenant, from the limits ``provider`` declares."""
    from flask import current_app

    limits = provider.rate_limits(current_app.config)
    return TenantThrottle(current_app.redis, provider.key, connection.tenant_id, max_in_flight=limits.in_flight,
                          max_per_minute=limits.per_minute, lease_seconds=limits.lease_seconds,
                          app_max_per_minute=limits.app_per_minute,
                          interactive_reserve=current_app.config.get("THROTTLE_INTERACTIVE_RESERVE", 0.0))
