"""Keeping connections alive whose refresh tokens die unused.

Some providers end a refresh token that nobody uses for a while (the
provider's ``refresh_token_lifetime``, or the lifetime its token answer
states). A firm that sends nothing for that long would find itself
disconnected, so ``flask keep-connections-alive`` (cron, e.g. hourly; ``make
run`` runs it on a schedule) queues a renewal for every connection past half
of its refresh token's life, and the job rotates the pair under the shared
token lock. When it is too late, the connection reads "needs reconnecting"
with the reason, everywhere."""
from __future__ import annotations

import logging
import math
import time
import uuid
from typing import Optional

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import LockError

from planman import jobs
from planman.extensions import db
from planman.integrations import registry
from planman.integrations.crypto import TokenDecryptError
from planman.integrations.errors import IntegrationError, NeedsReconnect
from planman.integrations.tokens import load_token
from planman.models import Connection

log = logging.getLogger(__name__)


def refresh_window(provider, token: dict, config) -> Optional[tuple[float, float]]:
    """``(renew_from, dies_at)`` of the stored refresh token, or None when it does not die unused."""
    issued = float(token.get("issued_at") or 0)
    dies = token.get("refresh_expires_at")
    if dies is None:
        lifetime = provider.refresh_token_lifetime(config)
        if lifetime is None:
            return None
        if not issued:  # stored before PlanMan kept the issue time: its age is unknown, so renew it now
            return 0.0, math.inf
        dies = issued + lifetime
    dies = float(dies)
    return (issued + (dies - issued) / 2 if issued else dies - 1), dies


def _token(connection) -> Optional[dict]:
    try:
        return load_token(connection)
    except TokenDecryptError:
        return None


def due_connections(now: Optional[float] = None) -> list[int]:
    """Usable connections whose refresh token is past half its life."""
    now = time.time() if now is None else now
    keys = [p.key for p in registry.all_providers() if p.refresh_token_lifetime(current_app.config) is not None]
    if not keys:
        return []
    due = []
    for connection in db.session.scalars(sa.select(Connection).where(Connection.provider.in_(keys),
                                                                     Connection.is_usable).order_by(Connection.id)):
        token = _token(connection)
        window = refresh_window(registry.get_provider(connection.provider), token, current_app.config) \
            if token else None
        if window is not None and now >= window[0]:
            due.append(connection.id)
    return due


def keep_all_alive() -> int:
    """Queue one renewal per connection that is due; the number queued."""
    return sum(jobs.enqueue("keep_connection_alive", connection_id,
                            job_id=f"keep-alive-{connection_id}-{uuid.uuid4().hex[:12]}")
               for connection_id in due_connections())


def lapsed_reason(provider, dies_at: float, issued_at: float) -> str:
    days = max(1, round((dies_at - issued_at) / 86400)) if issued_at else None
    unused = f"{days} day{'s' if days != 1 else ''}" if days and dies_at - issued_at >= 86400 else "too long"
    return (f"{provider.label} ended PlanMan's access because it went unused for {unused}, before PlanMan "
            f"could renew it. An admin must reconnect under Setup > Integrations > {provider.label}.")


def keep_alive(connection_id: int) -> str:
    """The job: renew one connection's tokens if they are still due (another
    job or a push may have renewed them since it was queued)."""
    connection = db.session.get(Connection, connection_id)
    provider = registry.get_provider(connection.provider) if connection else None
    if connection is None or provider is None or not connection.is_usable:
        return "not connected"
    token = _token(connection)
    window = refresh_window(provider, token, current_app.config) if token else None
    if window is None:
        return "nothing to renew"
    if time.time() < window[0]:
        return "not due"
    lock = current_app.redis.lock(f"keep-alive:{connection_id}", timeout=jobs.JOB_TIMEOUT, blocking=False)
    if not lock.acquire():
        return "already renewing"
    def past_its_lifetime() -> str:
        """Why, when the refusal is the refresh token's lifetime running out."""
        if time.time() < window[1]:
            return ""
        return lapsed_reason(provider, window[1], float(token.get("issued_at") or 0))

    try:
        provider.renew_tokens(connection, refused_reason=past_its_lifetime)
    except NeedsReconnect:
        return "needs reconnecting"
    except IntegrationError as error:  # a temporary problem: the next run tries again, well before the end
        log.warning("keep-alive of connection %s failed: %s", connection_id, error.detail or error.user_message)
        return "failed, will try again"
    finally:
        try:
            lock.release()
        except LockError:
            pass
    return "renewed"


def register_cli(app) -> None:
    import click

    @app.cli.command("keep-connections-alive")
    def keep_alive_command():
        """Queue a token renewal for every connection whose refresh token would
        otherwise die unused (run it from cron, e.g. every hour)."""
        click.echo(f"{keep_all_alive()} connection(s) queued for renewal.")
