"""Webhook intake, the same for every provider: ``POST /webhooks/<provider_key>``.

1. The provider verifies the delivery on the raw body (its signature scheme)
   before anything is parsed or stored; a forged or stale delivery is refused
   (400/401) and nothing is kept.
2. Each verified event is stored once (unique per provider and event id: a
   duplicate delivery is answered 200 and not stored again), and the provider
   is answered 2xx at once.
3. A worker processes each event (``planman.jobs.process_webhook_event``): it
   claims the row with a lease, finds the firm that holds the event's account
   and hands the event to the provider. Events may arrive in any order and be
   processed more than once; providers make their handling idempotent.
4. An event for an account that is not connected now (the firm disconnected,
   is choosing among several, or must reconnect) waits, "waiting", if a firm
   held it, until that firm connects it again: it may be a payment a client
   made meanwhile, and handlers need the firm's access. The firm's page of the
   provider says so. An event for an account no firm ever held is dropped.

Nothing is lost if a worker dies mid-event: the row stays "queued" with a lease
that runs out. Every claim also schedules a check for when its lease ends (the
RQ scheduler), and every delivery and every finished event re-queues events
whose lease ran out, as does ``flask requeue-webhook-events`` (for cron)."""
from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, request
from redis.exceptions import LockError

from planman import jobs
from planman.extensions import csrf, db
from planman.integrations import registry
from planman.integrations.base import WebhookEventData, WebhookVerificationFailed
from planman.integrations.errors import RateLimited, TemporaryFailure
from planman.models import Connection, WebhookEvent, utcnow

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

MAX_ATTEMPTS = 5
# The provider did not answer while the event was applied (handlers read the
# resource back), or another worker held the record: quick tries first, for a
# blip or a lock; then, for an outage, waits that add up to about a day, since
# the event may be the only word of a refund or a failed Direct Debit.
TEMPORARY_BACKOFF = (2, 4, 8, 16, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
SWEEP_LIMIT = 100


@bp.post("/webhooks/<provider_key>")
@csrf.exempt  # providers cannot hold a CSRF token; the signature proves the sender instead
def receive(provider_key: str):
    provider = registry.get_provider(provider_key)
    if provider is None or not provider.accepts_webhooks:
        abort(404)
    raw = _raw_body(provider.webhook_max_bytes)
    try:
        events = provider.verify_webhook(raw, request.headers)
    except WebhookVerificationFailed as refused:
        log.warning("%s webhook refused: %s", provider_key, refused)
        return ("", refused.status) if provider.webhook_empty_answers else ({"error": str(refused)}, refused.status)
    new_ids = store(provider_key, events)
    for event_id in new_ids:
        enqueue(event_id)
    requeue_stale(provider_key)
    if provider.webhook_empty_answers:
        return "", 200
    return {"received": len(events), "new": len(new_ids)}, 200


def _raw_body(limit: int) -> bytes:
    """The body as sent, at most ``limit`` bytes (413 beyond, whatever Content-Length claims)."""
    if request.content_length is not None and request.content_length > limit:
        abort(413)
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        abort(413)
    return raw


def store(provider_key: str, events: list[WebhookEventData]) -> list[int]:
    """Store each event not seen before; return the new rows' ids."""
    new_ids = []
    for event in events:
        row = WebhookEvent(provider=provider_key, event_id=event.event_id, event_type=event.event_type,
                           account=event.account or "", payload=json.dumps(event.payload), state="queued")
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except sa.exc.IntegrityError:
            continue  # delivered before (or by a parallel delivery): stored once
        new_ids.append(row.id)
    db.session.commit()
    return new_ids


def enqueue(row_id: int, *, delay: float = 0, why: str = "new") -> bool:
    return jobs.enqueue("process_webhook_event", row_id,
                        job_id=f"webhook-{row_id}-{why}-{uuid.uuid4().hex[:12]}", delay=delay)


def _lease() -> timedelta:
    return timedelta(seconds=current_app.config["WEBHOOK_LEASE_SECONDS"])


def _claim(row_id: int) -> bool:
    """Take the event for this worker until the lease ends (compare-and-set, so
    two workers never process it at once)."""
    now = utcnow()
    claimed = db.session.execute(
        sa.update(WebhookEvent)
        .where(WebhookEvent.id == row_id, WebhookEvent.state == "queued",
               sa.or_(WebhookEvent.lease_until.is_(None), WebhookEvent.lease_until < now))
        .values(lease_until=now + _lease(), attempts=WebhookEvent.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return bool(claimed)


def process(row_id: int) -> str:
    """The worker's side: claim, route to the firm, let the provider act, record the outcome."""
    if not _claim(row_id):
        return "not claimable (finished, or another worker holds it)"
    # If this worker dies from here on, the check finds the lease run out and re-queues.
    enqueue(row_id, delay=_lease().total_seconds() + 1, why="lease-check")
    event = db.session.get(WebhookEvent, row_id)
    provider = registry.get_provider(event.provider)
    connection = None
    try:
        if provider is None:
            return _finish(event, "dropped", f"no provider {event.provider!r} any more")
        if event.account:
            connection = db.session.scalar(sa.select(Connection).where(
                Connection.provider == event.provider, Connection.tenant_id == event.account,
                Connection.state != "disconnected"))
            if connection is None or (connection.state != "connected" and not _is_about_the_account(provider, event)):
                return _set_aside(provider, event, connection)  # none, or one that must be reconnected first
            event.firm_id = connection.firm_id
            if _about_an_earlier_connection(provider, event, connection):
                return _finish(event, "processed", "About an earlier connection to this account: nothing to do.")
            if connection.last_event_at is None or connection.last_event_at < event.received_at:
                connection.last_event_at = event.received_at  # "events last arrived" on the Setup page
                db.session.commit()
        provider.handle_webhook_event(event, connection)
    except RateLimited as limited:
        # Not the event's fault: wait as long as the provider asks, without using up an
        # attempt, so a busy month end cannot turn good events into failed ones.
        db.session.rollback()
        event = db.session.get(WebhookEvent, row_id)
        event.attempts = max(event.attempts - 1, 0)
        event.error = f"Waiting {limited.retry_after:.0f}s for {provider.label}'s rate limit."
        _hold(event, limited.retry_after + 1, why="rate-limited")
        return "rate limited, will retry"
    except Exception as error:  # noqa: BLE001  (any failure: retried, then recorded)
        db.session.rollback()
        log.exception("%s webhook event %s failed", event.provider, event.event_id)
        event = db.session.get(WebhookEvent, row_id)
        temporary = isinstance(error, TemporaryFailure)
        if event.attempts >= (len(TEMPORARY_BACKOFF) + 1 if temporary else MAX_ATTEMPTS):
            return _finish(event, "failed", f"{type(error).__name__}: {error}"[:2000])
        event.error = f"{type(error).__name__}: {error}"[:2000]
        _hold(event, TEMPORARY_BACKOFF[event.attempts - 1] if temporary else min(2 ** event.attempts, 300),
              why="retry")
        return "failed, will retry"
    result = _finish(event, "processed", "")
    requeue_stale()
    return result


def _is_about_the_account(provider, event: WebhookEvent) -> bool:
    return event.event_type.startswith(provider.account_event_types) if provider.account_event_types else False


def _about_an_earlier_connection(provider, event: WebhookEvent, connection: Connection) -> bool:
    """An event about the account itself that arrived before its connection
    was made (the firm disconnected and connected again while it queued): a
    late "PlanMan was removed" must not end the new connection, and the new
    connection loaded the account's details afresh."""
    return (_is_about_the_account(provider, event) and connection.connected_at is not None
            and event.received_at < connection.connected_at)


def _set_aside(provider, event: WebhookEvent, holder: Connection | None) -> str:
    """An event that cannot be applied now: its account is not connected (or must
    be reconnected first). It waits if a firm holds or held the account (a
    connection's settings name the account they were made for), for when that
    firm connects it again."""
    if _is_about_the_account(provider, event):
        return _finish(event, "dropped", "About an account PlanMan is not connected to: nothing to do.")
    if holder is None:  # the last firm to have held it, if several did in turn
        holder = db.session.scalar(sa.select(Connection).where(
            Connection.provider == event.provider, Connection.settings["tenant_id"].as_string() == event.account)
            .order_by(Connection.updated_at.desc(), Connection.id.desc()).limit(1))
    if holder is None:
        log.warning("%s webhook %s for account %s, which no firm holds: dropped",
                    event.provider, event.event_id, event.account)
        return _finish(event, "dropped", "No firm holds this account.")
    log.info("%s webhook %s for account %s, not connected now: waiting for firm %s to connect it again",
             event.provider, event.event_id, event.account, holder.firm_id)
    event.firm_id = holder.firm_id
    result = _finish(event, "waiting", f"Could not be applied while PlanMan was not connected to this "
                                       f"{provider.tenant_word}.")
    # A connect commits the connection before it releases what waits: looking
    # again after this commit, one of the two always sees the other.
    if db.session.scalar(sa.select(Connection.id).where(
            Connection.firm_id == holder.firm_id, Connection.provider == event.provider,
            Connection.tenant_id == event.account, Connection.state == "connected")) is not None:
        release_waiting(event.provider, event.account, holder.firm_id)
        return "queued again: the account was connected meanwhile"
    return result


def release_waiting(provider_key: str, account: str, firm_id: int) -> int:
    """The firm connected the account again: its events that waited are
    processed now. Answers how many. Commits."""
    return _start_over(sa.select(WebhookEvent.id).where(
        WebhookEvent.provider == provider_key, WebhookEvent.account == account, WebhookEvent.firm_id == firm_id,
        WebhookEvent.state == "waiting"), state="waiting", why="reconnected")


def forget_waiting(firm_id: int, provider_key: str, account: str, user_name: str) -> int:
    """An admin's "Forget them": the firm will not connect that account again, so
    its waiting events are dropped (kept, with who dropped them). Answers how
    many. Commits."""
    count = db.session.execute(
        sa.update(WebhookEvent).where(WebhookEvent.firm_id == firm_id, WebhookEvent.provider == provider_key,
                                      WebhookEvent.account == account, WebhookEvent.state == "waiting")
        .values(state="dropped", error=f"Forgotten by {user_name} while the account was not connected.",
                processed_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return count


def waiting_accounts(firm_id: int, provider_key: str) -> list[tuple[str, str, int]]:
    """The accounts with events waiting for the firm to connect them again: each
    one's id, its name if known (the firm's connection was made for it), and
    how many events wait for it."""
    connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == firm_id,
                                                               Connection.provider == provider_key))
    settings = (connection.settings or {}) if connection is not None else {}
    known = {settings.get("tenant_id"): connection.tenant_name or settings.get("tenant_name", "")} if settings else {}
    return [(account, known.get(account, ""), count) for account, count in db.session.execute(
        sa.select(WebhookEvent.account, sa.func.count(WebhookEvent.id))
        .where(WebhookEvent.firm_id == firm_id, WebhookEvent.provider == provider_key,
               WebhookEvent.state == "waiting")
        .group_by(WebhookEvent.account).order_by(WebhookEvent.account))]


def _hold(event: WebhookEvent, delay: float, *, why: str) -> None:
    """Take the event up again in ``delay`` seconds, not before: its lease runs
    till then, so neither the lease check nor the sweep takes it earlier, and
    the sweep takes it once the time has come should the queued job be lost."""
    event.lease_until = utcnow() + timedelta(seconds=delay)
    db.session.commit()
    enqueue(event.id, delay=delay, why=why)


def failed_count(firm_id: int, provider_key: str) -> int:
    """The firm's events from the provider that were given up on (its page says so)."""
    return db.session.scalar(sa.select(sa.func.count(WebhookEvent.id)).where(
        WebhookEvent.firm_id == firm_id, WebhookEvent.provider == provider_key, WebhookEvent.state == "failed"))


def retry_failed(firm_id: int, provider_key: str) -> int:
    """An admin's "Process them again": the firm's failed events from the
    provider start over (handlers read the resource back, so an old event
    applies what is true now). Answers how many. Commits."""
    return _start_over(sa.select(WebhookEvent.id).where(
        WebhookEvent.firm_id == firm_id, WebhookEvent.provider == provider_key, WebhookEvent.state == "failed"),
        state="failed", why="retry-failed")


def _start_over(select_ids, *, state: str, why: str) -> int:
    """Queue the selected events (in ``state``) as if just received. Commits."""
    ids = list(db.session.scalars(select_ids))
    if not ids:
        return 0
    db.session.execute(sa.update(WebhookEvent).where(WebhookEvent.id.in_(ids), WebhookEvent.state == state)
                       .values(state="queued", attempts=0, error="", lease_until=None, processed_at=None)
                       .execution_options(synchronize_session=False))
    db.session.commit()
    for row_id in ids:
        enqueue(row_id, why=why)  # a lost one is swept up after a lease (requeue_stale)
    return len(ids)


def _finish(event: WebhookEvent, state: str, error: str) -> str:
    event.state, event.error, event.lease_until, event.processed_at = state, error, None, utcnow()
    db.session.commit()
    return state


def requeue_stale(provider_key: str | None = None) -> int:
    """Queue again every event still "queued" whose lease ran out (its worker
    died), or that nobody claimed for a whole lease (its job was lost)."""
    now = utcnow()
    stmt = sa.select(WebhookEvent.id).where(
        WebhookEvent.state == "queued",
        sa.or_(WebhookEvent.lease_until < now,
               sa.and_(WebhookEvent.lease_until.is_(None), WebhookEvent.received_at < now - _lease())))
    if provider_key:
        stmt = stmt.where(WebhookEvent.provider == provider_key)
    ids = list(db.session.scalars(stmt.order_by(WebhookEvent.id).limit(SWEEP_LIMIT)))
    for row_id in ids:
        enqueue(row_id, why="requeue")
    return len(ids)


def register_cli(app) -> None:
    import click

    @app.cli.command("requeue-webhook-events")
    def requeue_command():
        """Queue again webhook events whose worker died (run it from cron, e.g. every minute)."""
        click.echo(f"{requeue_stale()} webhook event(s) queued again.")

    @app.cli.command("reconcile-ledgers")
    def reconcile_command():
        """Queue a catch-up with every connected provider that offers one, for changes
        no webhook told us about (run it from cron, e.g. every 15 minutes)."""
        click.echo(f"{catch_up_all()} catch-up job(s) queued.")


def catch_up_all() -> int:
    """Queue one catch-up job per usable connection whose provider catches up."""
    keys = [provider.key for provider in registry.all_providers() if provider.catches_up]
    if not keys:
        return 0
    ids = list(db.session.scalars(sa.select(Connection.id).where(Connection.provider.in_(keys),
                                                                 Connection.is_usable).order_by(Connection.id)))
    # Nobody waits on a catch-up: it takes its turn with bulk work, not before a click.
    return sum(jobs.enqueue("catch_up_connection", connection_id, bulk=True,
                            job_id=f"catch-up-{connection_id}-{uuid.uuid4().hex[:12]}") for connection_id in ids)


def catch_up(connection_id: int) -> str:
    """The job: one connection's catch-up, never two at once for one connection."""
    connection = db.session.get(Connection, connection_id)
    provider = registry.get_provider(connection.provider) if connection else None
    if connection is None or provider is None or not provider.catches_up or not connection.is_usable:
        return "not connected"
    lock = current_app.redis.lock(f"catch-up:{connection_id}", timeout=jobs.JOB_TIMEOUT, blocking=False)
    if not lock.acquire():
        return "already catching up"
    try:
        return provider.catch_up(connection)
    finally:
        try:
            lock.release()
        except LockError:  # it ran out during a long run: nothing left to release
            pass
