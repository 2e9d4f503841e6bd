"""The shared throttle's budgets on a real Redis (the Lua script runs there):
the provider's app-wide limit across tenants, and the reserve bulk sends leave
for single pushes."""
from __future__ import annotations

import pytest

from planman.integrations.throttle import TenantThrottle, bulk_calls

pytestmark = pytest.mark.integration


def throttle(redis, tenant, **limits):
    options = dict(max_in_flight=100, max_per_minute=100, lease_seconds=30)
    return TenantThrottle(redis, "acme", tenant, **{**options, **limits})


def granted(budget, n) -> int:
    return sum(1 for _ in range(n) if budget.try_acquire()[0])


def test_the_app_wide_limit_counts_every_tenant_together(real_redis):
    first, second = (throttle(real_redis, t, app_max_per_minute=5) for t in ("org-1", "org-2"))
    assert granted(first, 3) == 3
    assert granted(second, 5) == 2  # 5 a minute for the app, whichever tenant asks
    token, wait = throttle(real_redis, "org-3", app_max_per_minute=5).try_acquire()
    assert token is None and 0 < wait <= 60
    assert granted(throttle(real_redis, "org-4"), 3) == 3  # where no app-wide limit is declared, none applies


def test_bulk_calls_leave_the_reserve_to_single_pushes(real_redis):
    budget = throttle(real_redis, "org-1", max_per_minute=10, interactive_reserve=0.1)
    with bulk_calls():
        assert granted(budget, 12) == 9  # 10 a minute, less one kept back
    assert granted(budget, 3) == 1  # a single push still gets the last call
    assert budget.try_acquire()[0] is None


def test_the_reserve_applies_to_calls_in_flight_too(real_redis):
    budget = throttle(real_redis, "org-1", max_in_flight=5, interactive_reserve=0.1)
    with bulk_calls():
        assert budget.limits_now() == (4, 90, 0)
    assert budget.limits_now() == (5, 100, 0)
