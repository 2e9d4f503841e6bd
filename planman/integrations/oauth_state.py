"""Where Authlib keeps a pending authorisation (state, PKCE verifier if any,
redirect URI) for every provider's connect flow.

Server-side and deleted on first use, so a verifier never sits in the session
cookie and a replayed old cookie cannot reuse a state."""
from __future__ import annotations

from flask import current_app, session


class RedisStateCache:
    prefix = "oauth-state:"

    def get(self, key):
        value = current_app.redis.get(self.prefix + key)
        return value.decode() if isinstance(value, bytes) else value

    def set(self, key, value, expires=None):
        current_app.redis.set(self.prefix + key, value, ex=int(expires or 3600))

    def delete(self, key):
        # Authlib clears a presented state whoever presents it; only the browser
        # that started the flow (its session holds the key) may end it, so a
        # leaked callback URL cannot cancel someone else's sign-in.
        if key in session:
            current_app.redis.delete(self.prefix + key)
