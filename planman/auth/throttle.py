"""Login throttling: after too many failures for one email or from one address,
refuse further attempts for a while without checking the password.

Counters live in Redis so every web process shares them and they expire by themselves."""
from __future__ import annotations

from flask import current_app


def _keys(email: str, ip: str) -> list[str]:
    return [f"planman:login-failures:email:{email.lower()}", f"planman:login-failures:ip:{ip}"]


def is_locked(email: str, ip: str) -> bool:
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    counts = current_app.redis.mget(_keys(email, ip))
    return any(count is not None and int(count) >= limit for count in counts)


def record_failure(email: str, ip: str) -> None:
    window = current_app.config["LOGIN_LOCKOUT_SECONDS"]
    pipe = current_app.redis.pipeline()
    for key in _keys(email, ip):
        pipe.incr(key)
        # The window starts at the first failure (nx) and is not extended by later ones.
        pipe.expire(key, window, nx=True)
    pipe.execute()


def clear_email(email: str) -> None:
    # A successful login forgives that account's failures; the address's count
    # stays, so one valid account cannot be used to keep guessing others.
    current_app.redis.delete(_keys(email, "")[0])
