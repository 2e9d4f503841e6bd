"""Tests that count calls within one of the stand-ins' fixed minute windows
must not straddle two: the second window starts from zero."""
from __future__ import annotations

import time

from standins.core.ratelimit import MINUTE, _window_start


def within_one_minute_window(scope: str, seconds_needed: float = 10) -> None:
    """Return once ``scope``'s current minute window has ``seconds_needed`` left
    (waiting for the next one if not), so the calls that follow all count in it."""
    now = time.time()
    left = _window_start(scope, MINUTE, now) + MINUTE - now
    if left < seconds_needed:
        time.sleep(left + 0.05)
