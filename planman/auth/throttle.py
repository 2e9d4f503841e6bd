"""Log-in throttling, shared by every web process through Redis.

Policy (README, Security):
- An address may fail LOGIN_MAX_FAILURES times per window (LOGIN_LOCKOUT_SECONDS,
  from its first failure); after that it may not try any account.
- An account that has failed LOGIN_MAX_FAILURES times is closed only to the
  addresses that failed for it: a correct password from an address that has
  not failed for that account still logs in, so nobody can lock the owner out
  by guessing wrong on purpose.
- Every attempt is reserved (counted as a failure) in one Lua script *before*
  the password is checked, and handed back when it succeeds. However many
  guesses arrive at once, no more than the limit are ever tested.

Counters expire by themselves, so a refusal ends when the window does."""
from __future__ import annotations

from flask import current_app

# KEYS: the address's counter, then for log-in the account's and the
# (address, account) pair's. ARGV: the limit, the window in seconds. Returns 1
# when the attempt may go ahead (and has been counted), 0 when it is refused.
_RESERVE = """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local function count(key) return tonumber(redis.call('GET', key) or '0') end
if count(KEYS[1]) >= limit then return 0 end
if #KEYS == 3 and count(KEYS[2]) >= limit and count(KEYS[3]) > 0 then return 0 end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, window) end
end
return 1
"""

_PREFIX = "planman:login-failures"


def _keys(email: str, ip: str) -> list[str]:
    email = email.lower()
    return [f"{_PREFIX}:ip:{ip}", f"{_PREFIX}:email:{email}", f"{_PREFIX}:pair:{ip}:{email}"]


def _reserve(keys: list[str]) -> bool:
    config = current_app.config
    script = current_app.redis.register_script(_RESERVE)
    return bool(script(keys=keys, args=[config["LOGIN_MAX_FAILURES"], config["LOGIN_LOCKOUT_SECONDS"]]))


def reserve_login(email: str, ip: str) -> bool:
    """Count a log-in attempt as a failure now; False (nothing counted) when it is refused."""
    return _reserve(_keys(email, ip))


def login_succeeded(email: str, ip: str) -> None:
    """The password was right: hand the address's reservation back and forgive
    the account's failures. The address keeps its other failures, so one valid
    account cannot be used to keep guessing others."""
    ip_key, email_key, pair_key = _keys(email, ip)
    pipe = current_app.redis.pipeline()
    pipe.decr(ip_key)
    pipe.delete(email_key, pair_key)
    pipe.execute()


def _signup_key(ip: str) -> str:
    return f"{_PREFIX}:signup-ip:{ip}"


def reserve_signup(ip: str) -> bool:
    """Sign-up answers "an account with this email already exists", so each
    such answer counts like a failed log-in for the address."""
    return _reserve([_signup_key(ip)])


def signup_succeeded(ip: str) -> None:
    current_app.redis.decr(_signup_key(ip))
