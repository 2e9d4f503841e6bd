"""OAuth token sets of connections: encrypted at rest, refreshed safely.

Refresh tokens rotate on every use and a used one dies after a grace period,
so two workers refreshing at once would burn each other's tokens (the usual
cause of ``invalid_grant``). All refreshes of one connection therefore happen
under one Redis lock shared by every process, re-read the stored token inside
the lock, and save the rotated token before the new access token is used."""
from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from flask import current_app

from planman.extensions import db
from planman.integrations.crypto import TokenDecryptError, decrypt_json, encrypt_json
from planman.integrations.errors import IntegrationError, NeedsReconnect, TemporaryFailure
from planman.models import Connection

log = logging.getLogger(__name__)

# Refresh this long before expiry so a token never expires mid-request.
REFRESH_MARGIN_SECONDS = 120


class RefreshRejected(Exception):
    """The provider refused the refresh token (``invalid_grant`` and friends)."""


def store_token(connection: Connection, token: dict) -> None:
    """Encrypt and attach a token response to the connection (caller commits)."""
    now = time.time()
    expires_at = token.get("expires_at") or now + float(token.get("expires_in") or 1800)
    stored = {
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token"),
        "expires_at": float(expires_at),
        "scope": token.get("scope", ""),
        # When this refresh token was issued, and when it dies unused if the provider
        # says (the keep-alive job renews it before then: keepalive.py).
        "issued_at": float(token.get("issued_at") or now),
    }
    if token.get("refresh_expires_at") or token.get("refresh_token_expires_in"):
        stored["refresh_expires_at"] = float(token.get("refresh_expires_at")
                                             or now + float(token["refresh_token_expires_in"]))
    connection.token_ciphertext = encrypt_json(stored)


def load_token(connection: Connection) -> dict | None:
    if not connection.token_ciphertext:
        return None
    return decrypt_json(connection.token_ciphertext)


def mark_needs_reconnect(connection: Connection, reason: str) -> None:
    connection.state = "needs_reconnect"
    connection.state_reason = reason
    db.session.commit()
    log.warning("connection %s (%s) needs reconnecting: %s", connection.id, connection.provider, reason)


# What a token endpoint answers when the refresh token itself is no good.
REJECTED_REFRESH_ERRORS = ("invalid_grant", "invalid_client", "unauthorized_client")


def refresh_or_explain(request_refresh: Callable[[], dict], provider_label: str) -> dict:
    """Run one refresh request (an OAuth2Session.refresh_token call); a refused
    refresh token is RefreshRejected (the connection needs reconnecting), anything
    else a TemporaryFailure worth retrying."""
    from authlib.integrations.base_client import OAuthError

    try:
        return dict(request_refresh())
    except OAuthError as error:
        if error.error in REJECTED_REFRESH_ERRORS:
            raise RefreshRejected(error.error) from error
        raise TemporaryFailure(f"{provider_label} could not renew access.", detail=f"token refresh: {error.error}",
                               provider=provider_label) from error
    except Exception as error:  # timeouts, dropped connections, non-JSON pages
        raise TemporaryFailure(f"{provider_label} could not be reached to renew access.",
                               detail=f"token refresh: {type(error).__name__}", provider=provider_label) from error


def revoke_or_explain(request_revocation: Callable[[], object], provider_label: str, where: str) -> list[str]:
    """Run one revocation request (an OAuth2Session.revoke_token call); returns
    what to tell the admin if it did not happen. Authlib returns the answer
    without raising, and RFC 7009 answers 200 even for a token already dead, so
    any other status means the provider still honours the token."""
    advice = f"remove PlanMan under {where} to be sure."
    try:
        answer = request_revocation()
    except Exception as error:  # network trouble must not keep the tokens alive here
        log.info("%s disconnect: revocation failed: %s", provider_label, type(error).__name__)
        return [f"{provider_label} could not be reached to revoke access; {advice}"]
    status = getattr(answer, "status_code", 200)
    if not 200 <= status < 300:
        log.info("%s disconnect: revocation answered %s", provider_label, status)
        return [f"{provider_label} did not confirm that PlanMan's access was revoked (it answered {status}); "
                f"{advice}"]
    return []


def reconnect_when_forbidden(connection: Connection, provider) -> Callable[[str], None]:
    """The callback an API client calls on a 403 for the tenant: the connection
    needs reconnecting, unless its tokens were replaced while the call was under
    way (an admin reconnected), which says nothing about the new ones."""
    def forbidden(reason: str) -> None:
        used = connection.token_ciphertext
        db.session.refresh(connection)
        if connection.token_ciphertext != used or connection.state != "connected":
            return
        mark_needs_reconnect(connection, f"{provider.label} no longer gives PlanMan access to "
                                         f"{connection.tenant_name or 'the ' + provider.tenant_word} ({reason}).")
    return forbidden


class TokenManager:
    """Hands out a valid access token for one connection."""

    LOCK_TIMEOUT = 60  # longer than one token request with its timeout

    def __init__(self, connection: Connection, refresh: Callable[[str], dict]):
        self.connection = connection
        self._refresh = refresh  # refresh_token -> new token response; raises RefreshRejected

    def access_token(self) -> str:
        token = self._current()
        if token["expires_at"] - time.time() > REFRESH_MARGIN_SECONDS:
            return token["access_token"]
        return self._refresh_under_lock(stale_access_token=token["access_token"])

    def renew(self, *, refused_reason: Optional[Callable[[], str]] = None) -> None:
        """Rotate the pair now, whatever the access token's expiry (the keep-alive job:
        a refresh token that dies unused is renewed by using it). ``refused_reason``
        may say better why the provider refused (the token's lifetime ran out): it
        is the connection's reason when it returns one, written with the state."""
        self._refresh_under_lock(stale_access_token=self._current()["access_token"], force=True,
                                 refused_reason=refused_reason)

    def refresh_after_401(self, rejected_access_token: str) -> str:
        """The provider said the token is invalid: refresh unless someone already did."""
        return self._refresh_under_lock(stale_access_token=rejected_access_token, force=True)

    def _current(self) -> dict:
        try:
            token = load_token(self.connection)
        except TokenDecryptError:
            mark_needs_reconnect(self.connection, f"The stored {self._label()} tokens could not be decrypted with the "
                                                  "current key.")
            raise NeedsReconnect(provider=self._label())
        if not token or self.connection.state != "connected":
            raise NeedsReconnect(provider=self._label())
        return token

    def _label(self) -> str:
        """The provider's name, for messages (the registry imports this module, hence the late import)."""
        from planman.integrations.registry import get_provider

        provider = get_provider(self.connection.provider)
        return provider.label if provider else self.connection.provider

    def _reload(self) -> None:
        # Another process may have rotated the token since we loaded this row.
        db.session.refresh(self.connection)

    def _refresh_under_lock(self, stale_access_token: str, force: bool = False,
                            refused_reason: Optional[Callable[[], str]] = None) -> str:
        lock = current_app.redis.lock(
            f"lock:token-refresh:{self.connection.id}", timeout=self.LOCK_TIMEOUT, blocking_timeout=self.LOCK_TIMEOUT
        )
        if not lock.acquire():
            raise TemporaryFailure(f"Timed out waiting for another process to refresh the {self._label()} token.",
                                   provider=self._label())
        try:
            self._reload()
            token = self._current()
            if token["access_token"] != stale_access_token:
                return token["access_token"]  # another process refreshed while we waited
            if not force and token["expires_at"] - time.time() > REFRESH_MARGIN_SECONDS:
                return token["access_token"]
            try:
                new_token = self._refresh(token["refresh_token"])
            except RefreshRejected as exc:
                mark_needs_reconnect(self.connection, (refused_reason and refused_reason())
                                     or f"{self._label()} refused to renew access ({exc}). Please reconnect.")
                raise NeedsReconnect(provider=self._label()) from exc
            if not new_token.get("refresh_token"):  # not rotated: the old one ages on
                new_token["refresh_token"] = token["refresh_token"]
                for key in ("issued_at", "refresh_expires_at"):
                    if token.get(key):
                        new_token.setdefault(key, token[key])
            store_token(self.connection, new_token)
            # Commit before the new access token is used: if this process dies
            # now, the rotated refresh token is already safe in the database.
            db.session.commit()
            log.info("refreshed %s token for connection %s", self.connection.provider, self.connection.id)
            return new_token["access_token"]
        finally:
            try:
                lock.release()
            except Exception:  # lock expired: nothing to release
                pass


class FixedToken:
    """A token just received in a connect callback: nothing to refresh yet, so a
    401 means the provider refused the token it has just issued."""

    def __init__(self, access_token: str, provider_label: str):
        self._access_token = access_token
        self._provider_label = provider_label

    def access_token(self) -> str:
        return self._access_token

    def refresh_after_401(self, rejected: str) -> str:
        raise IntegrationError(f"{self._provider_label} did not accept the new access token. "
                               "Please try connecting again.", provider=self._provider_label)
