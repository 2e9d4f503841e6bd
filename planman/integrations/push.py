"""The push lifecycle shared by every provider: start (or join) a push, run it
in a worker, and always leave it in a final or retrying state.

Which outcome follows which error lives here, in one place:
- refused data            -> failed, with the provider's own words per field
- locked remote record    -> failed, explained, nothing to retry
- rate limited / throttled -> rescheduled after the wait, never slept through
- temporary trouble       -> retried with backoff, 3 attempts in all, then failed
- connection broken       -> failed with "needs reconnecting"
"""
from __future__ import annotations

import hashlib
import logging
import time
import uuid
from datetime import datetime, timedelta, timezone
from contextlib import contextmanager
from functools import cache
from typing import Optional

import sqlalchemy as sa
from flask import current_app
from rq import get_current_job
from rq.job import Job, JobStatus
from sqlalchemy.exc import IntegrityError

from planman import jobs
from planman.jobs import HEARTBEAT_SECONDS
from planman.extensions import db
from planman.integrations import links, registry
from planman.integrations.base import push_intent
from planman.integrations.errors import (
    BlockedByDependency,
    IntegrationError,
    RateLimited,
    RecordLocked,
    TemporaryFailure,
    ValidationFailed,
)
from planman.integrations.throttle import Throttled
from planman.models import ACTIVE_PUSH_STATES, Client, Connection, ExternalLink, Invoice, PushJob, User, utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
BACKOFF_SECONDS = (2, 10)  # before the 2nd and 3rd attempts
RECORD_MODELS = {"client": Client, "invoice": Invoice}
# The record another one needs at the provider first: (its type, the attribute holding its id).
DEPENDENCIES = {"invoice": ("client", "client_id")}
# A queued push whose RQ job cannot be found this long after it was last
# touched was lost (Redis flushed, worker killed): say so instead of spinning.
LOST_AFTER = timedelta(seconds=30)
# A started job whose worker has not sent a heartbeat for this long is dead
# (the whole worker was killed): RQ itself notices only at its clean-up, about
# ten minutes later. Three heartbeats of PlanMan's worker (worker.py).
HEARTBEAT_LOST_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)


def active_push(connection: Connection, record_type: str, record_id: int) -> Optional[PushJob]:
    return db.session.scalar(
        sa.select(PushJob).where(
            PushJob.provider == connection.provider,
            PushJob.tenant_id == connection.tenant_id,
            PushJob.record_type == record_type,
            PushJob.record_id == record_id,
            PushJob.state.in_(ACTIVE_PUSH_STATES),
        )
    )


def latest_push(connection: Connection, record_type: str, record_id: int) -> Optional[PushJob]:
    return db.session.scalar(
        sa.select(PushJob)
        .where(
            PushJob.firm_id == connection.firm_id,
            PushJob.provider == connection.provider,
            PushJob.tenant_id == connection.tenant_id,
            PushJob.record_type == record_type,
            PushJob.record_id == record_id,
        )
        .order_by(PushJob.id.desc())
        .limit(1)
    )


def start_push(connection: Connection, record_type: str, record_id: int, *, user_id: Optional[int],
               bulk_push_id: Optional[int] = None, enqueue: bool = True) -> tuple[PushJob, bool]:
    """Record a push and queue it, or join the one already under way.

    Returns ``(push, joined)``. The database's one-active-push-per-record index
    settles races between two clicks."""
    existing = active_push(connection, record_type, record_id)
    if existing is not None:
        return existing, True
    push = PushJob(
        firm_id=connection.firm_id, provider=connection.provider, tenant_id=connection.tenant_id,
        record_type=record_type, record_id=record_id, state="queued", requested_by_id=user_id,
        bulk_push_id=bulk_push_id,
    )
    db.session.add(push)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = active_push(connection, record_type, record_id)
        if existing is None:
            raise
        return existing, True
    if enqueue:
        enqueue_push(push)
    return push, False


def enqueue_push(push: PushJob, delay: float = 0) -> None:
    """Hand the push to RQ (now, or after ``delay`` seconds via the scheduler)."""
    rq_job_id = f"push-{push.id}-{uuid.uuid4().hex[:8]}"
    if not jobs.enqueue("run_push", push.id, job_id=rq_job_id, delay=delay):
        _finish(push, "failed", error=jobs.QUEUE_UNAVAILABLE)
        return
    push.rq_job_id = rq_job_id
    db.session.commit()


def retry_push(push: PushJob, user_id: Optional[int]) -> tuple[PushJob, bool]:
    connection = links.connection_for(push.firm_id, push.provider)
    return start_push(connection, push.record_type, push.record_id, user_id=user_id)


def load_record(firm_id: int, record_type: str, record_id: int):
    model = RECORD_MODELS[record_type]
    return db.session.scalar(sa.select(model).where(model.firm_id == firm_id, model.id == record_id))


def run_push(push_id: int) -> str:
    """Run one push to its end (called by the RQ job). Returns the final state."""
    push = db.session.get(PushJob, push_id)
    if push is None or push.state not in ("queued", "retrying"):
        return push.state if push else "missing"  # a duplicate delivery: the first one owns it

    connection = links.connection_for(push.firm_id, push.provider)
    provider = registry.get_provider(push.provider)
    problem = connection_problem(provider, connection, push.tenant_id)
    if problem:
        return _finish(push, "failed", error=problem)
    record = load_record(push.firm_id, push.record_type, push.record_id)
    if record is None:
        return _finish(push, "failed", error="The record was deleted in PlanMan before it could be sent.")

    closing = is_void(push.record_type, record)
    link = links.find_link(connection, push.record_type, record.id) if closing else None
    if closing and (link is None or provider.is_closed(push.record_type, link.remote_status)):
        # Void in PlanMan and nothing live at the provider: never sent as a new record.
        return _finish(push, "failed", error=void_not_sent_message(provider), outcome="closed")

    revision = record.revision  # unless the provider says which revision it sent (records.py)
    push.state = "running"
    push.attempts += 1
    push.started_at = utcnow()
    push.next_attempt_at = None
    db.session.commit()

    try:
        if closing:  # void in PlanMan, still live at the provider: void it there too
            result = provider.void(connection, push.record_type, link, intent=push_intent(push))
            result.record_revision = revision
        else:
            with _creating_dependency(provider, connection, push.record_type, record):
                result = provider.export(connection, push.record_type, record, user_id=push.requested_by_id,
                                         intent=push_intent(push))
        if result.record_revision is None:
            result.record_revision = revision
    except Throttled as wait:
        return _reschedule(push, wait.wait, counts_as_attempt=False, note=throttled_note(provider))
    except RateLimited as error:
        return _reschedule(push, error.retry_after, counts_as_attempt=False, note=rate_limited_note(provider))
    except TemporaryFailure as error:
        log.warning("push %s: temporary failure: %s", push_id, error.detail or error.user_message)
        if push.attempts < MAX_ATTEMPTS:
            return _reschedule(push, BACKOFF_SECONDS[push.attempts - 1], counts_as_attempt=True,
                               note=retrying_note(error))
        return _finish(push, "failed", error=gave_up_message(error))
    except IntegrationError as error:
        return fail(push, connection, error)
    except Exception:
        log.exception("push %s failed unexpectedly", push_id)
        return _finish(push, "failed", error=UNEXPECTED_MESSAGE)

    return succeed(connection, push, result)


TURN_WAIT_MARGIN = 60  # seconds of the job's timeout left for the push itself after waiting for its turn


@contextmanager
def _creating_dependency(provider, connection: Connection, record_type: str, record):
    """Two invoices of a client not yet at the provider, pushed by two workers at
    once, would each create the client there (a duplicate, or a refusal of the
    second). While the client may still be created, pushes of it and of its
    records take turns; once it is linked they run side by side again."""
    dependency_type, attribute = DEPENDENCIES.get(record_type, (record_type, "id"))
    if dependency_type != record_type and links.find_link(connection, dependency_type, getattr(record, attribute)):
        yield
        return
    key = f"lock:push-create:{connection.id}:{dependency_type}:{getattr(record, attribute)}"
    # Less than the job's own timeout, so a long wait ends as a retry with why,
    # not as RQ's kill in the middle of it.
    holder = _take_turn(key, wait=jobs.JOB_TIMEOUT - TURN_WAIT_MARGIN)
    if holder is None:
        raise TemporaryFailure("Timed out waiting for another push of the same client.", provider=provider.label)
    try:
        db.session.expire_all()  # what the other push linked while this one waited
        yield
    finally:
        _release_turn(current_app.redis, key, holder)


_DELETE_IF_HELD_BY = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _release_turn(redis, key: str, holder: str) -> None:
    """Give the turn back only if it is still ``holder``'s (it may have expired and been taken since)."""
    redis.eval(_DELETE_IF_HELD_BY, 1, key, holder)


def _take_turn(key: str, *, wait: float) -> Optional[str]:
    """Hold ``key`` for this push, waiting up to ``wait`` seconds; the holder's name, or None.

    The holder is named by its RQ job, so a turn held by a worker that was killed
    (no heartbeat: push.reconcile_lost's test) is taken over at once instead of
    making the Retry wait for the key to expire."""
    redis = current_app.redis
    rq_job = get_current_job()
    me = f"job:{rq_job.id}" if rq_job else f"process:{uuid.uuid4().hex}"
    deadline = time.monotonic() + wait
    while True:
        if redis.set(key, me, nx=True, ex=jobs.JOB_TIMEOUT):
            return me
        held_by = (redis.get(key) or b"").decode()
        if held_by.startswith("job:") and _job_is_dead(held_by[len("job:"):]):
            log.warning("%s was held by a job whose worker is gone; taking it over", key)
            _release_turn(redis, key, held_by)
            continue
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def _job_is_dead(job_id: str) -> bool:
    """The RQ job no longer runs: finished, failed, gone, or its worker stopped beating."""
    try:
        job = Job.fetch(job_id, connection=current_app.redis)
    except Exception:  # NoSuchJobError, or a job whose data expired
        return True
    status = job.get_status(refresh=False)
    return status != JobStatus.STARTED or _worker_is_gone(job)


# The words and endings below are shared with bulk pushes (bulk.py), so a
# record sent in a batch ends exactly as it would have ended on its own.
def throttled_note(provider) -> str:
    """Our own call budget for the tenant is spent (throttle.py): the push waits its turn."""
    return f"Waiting for {provider.label}'s rate limit."


def rate_limited_note(provider) -> str:
    """The provider answered 429: every worker waits out its Retry-After."""
    return f"{provider.label} asked us to slow down; the push will continue automatically."


UNEXPECTED_MESSAGE = "Something unexpected went wrong while sending. Retry; if it keeps happening, contact support."


def is_void(record_type: str, record) -> bool:
    """Closed in PlanMan: never sent as new, and voided at the provider on request."""
    return record_type == "invoice" and record.status == "void"


def void_not_sent_message(provider) -> str:
    return f"This invoice is void in PlanMan, so it is not sent to {provider.label}."


def connection_problem(provider, connection: Optional[Connection], tenant_id: str) -> Optional[str]:
    """Why nothing can be sent to ``tenant_id`` through ``connection`` now, or None."""
    if connection is not None and connection.tenant_id == tenant_id and connection.state == "needs_reconnect":
        return (f"{provider.label if provider else 'The connection'} needs reconnecting: an admin must reconnect it "
                "under Setup > Integrations, then retry.")
    if provider is None or connection is None or connection.tenant_id != tenant_id or connection.state != "connected":
        return f"This firm is no longer connected to that {provider.tenant_word if provider else 'account'}, " \
               "so nothing was sent."
    return None


def retrying_note(error: TemporaryFailure) -> str:
    return f"{error.user_message} Trying again automatically."


def gave_up_message(error: TemporaryFailure) -> str:
    return f"{error.user_message} Gave up after {MAX_ATTEMPTS} attempts."


def succeed(connection: Connection, push: PushJob, result, *, commit: bool = True,
            link=links.LOOK_UP) -> str:
    """Record the link and end the push; the external id and the end are committed together.
    ``link``: the record's link already read (None: it has none), else it is looked up."""
    links.record_link(connection, push.record_type, push.record_id, result, push.requested_by_id, link=link)
    return _finish(push, "succeeded", outcome=result.outcome, discard_pending=False, commit=commit)


def fail(push: PushJob, connection: Connection, error: IntegrationError, *, discard_pending: bool = True,
         commit: bool = True) -> str:
    """End a push on an error retrying cannot cure: refused data, a locked record, a broken connection."""
    if discard_pending:
        push = _fresh(push)
    if isinstance(error, RecordLocked):
        _note_locked(push, connection, error)
        return _finish(push, "failed", error=error.user_message, outcome="locked", discard_pending=False,
                       commit=commit)
    if isinstance(error, BlockedByDependency):
        # What blocks it is noted on that record's link: the panel offers Retry once it changes.
        links.note_remote_status(connection, error.record_type, error.record_id, error.remote_status)
        return _finish(push, "failed", error=error.user_message, outcome="blocked", discard_pending=False,
                       commit=commit)
    fields = error.field_errors if isinstance(error, ValidationFailed) else None
    return _finish(push, "failed", error=error.user_message, fields=fields, discard_pending=False, commit=commit)


def _finish(push: PushJob, state: str, *, error: str = "", fields: Optional[dict] = None, outcome: str = "",
            discard_pending: bool = True, commit: bool = True) -> str:
    """End the push. A failure first discards whatever the export left half-done."""
    if discard_pending:
        push = _fresh(push)
    push.state = state
    push.outcome = outcome
    push.error_message = error
    push.error_fields = fields or None
    push.finished_at = utcnow()
    push.next_attempt_at = None
    if commit:
        db.session.commit()
    log.info("push %s %s %s %s: %s %s", push.id, push.record_type, push.record_id, push.provider, state,
             outcome or error)
    return state


finish = _finish  # bulk pushes end records through the same door


def _reschedule(push: PushJob, delay: float, *, counts_as_attempt: bool, note: str) -> str:
    push = _fresh(push)
    if not counts_as_attempt:
        push.attempts = max(0, push.attempts - 1)
    push.state = "retrying"
    push.error_message = note
    push.next_attempt_at = utcnow() + timedelta(seconds=delay)
    db.session.commit()
    enqueue_push(push, delay=delay)
    return push.state


def _fresh(push: PushJob) -> PushJob:
    """The push row after a rollback of whatever the failed export left behind."""
    push_id = push.id
    db.session.rollback()
    return db.session.get(PushJob, push_id)


def _note_locked(push: PushJob, connection: Connection, error: RecordLocked) -> None:
    link = links.find_link(connection, push.record_type, push.record_id)
    if link is not None:
        link.remote_status = error.remote_status
        link.status_checked_at = utcnow()  # committed with the push's end


def _may_be_lost(push) -> bool:
    """Untouched for longer than a live job leaves it (a PushJob, or a row of its columns)."""
    touched: datetime = push.started_at or push.created_at
    if push.state == "retrying" and push.next_attempt_at:
        touched = max(touched, push.next_attempt_at)
    return utcnow() - touched >= LOST_AFTER


def progress_token(push) -> str:
    """Everything a "Sending…" panel shows of its push, in a few characters.
    The panel polls with it, and a poll is answered "nothing new" while it holds."""
    shown = f"{push.state}|{push.attempts}|{push.next_attempt_at}|{push.error_message}"
    return f"{push.id}-{hashlib.blake2s(shown.encode(), digest_size=8).hexdigest()}"


@cache
def _push_seen_by_user() -> sa.Select:
    # Columns only, no ORM objects, and the user (and that the session is still
    # theirs: its epoch) checked in the same statement: this answers every open
    # "Sending…" panel once a second.
    return sa.select(
        PushJob.id, PushJob.state, PushJob.attempts, PushJob.next_attempt_at, PushJob.error_message,
        PushJob.created_at, PushJob.started_at,
    ).join(User, User.firm_id == PushJob.firm_id).where(
        User.id == sa.bindparam("user_id"), User.session_epoch == sa.bindparam("session_epoch"),
        PushJob.id == sa.bindparam("push_id"),
        PushJob.provider == sa.bindparam("provider"), PushJob.record_type == sa.bindparam("record_type"),
        PushJob.record_id == sa.bindparam("record_id"),
    )


def still_as_seen(user_id: int, session_epoch: int, provider_key: str, record_type: str, record_id: int,
                  token: str) -> bool:
    """True when the push a polling panel shows (its ``progress_token``) is a
    push of the user's firm and still under way exactly as shown, asked from a
    session that has not ended (``session_epoch``). Anything else (finished,
    moved on, possibly lost, another firm's, a made-up token, a logged-out
    session) is False, and the caller renders the panel as usual."""
    push_id, _, _ = token.partition("-")
    if not push_id.isdigit() or len(push_id) > 18:
        return False
    with db.engine.connect() as connection:  # a bare connection: no ORM session to set up
        push = connection.execute(_push_seen_by_user(), {
            "user_id": user_id, "session_epoch": session_epoch, "push_id": int(push_id), "provider": provider_key,
            "record_type": record_type, "record_id": record_id,
        }).first()
    return (push is not None and push.state in ACTIVE_PUSH_STATES and not _may_be_lost(push)
            and progress_token(push) == token)


def _worker_is_gone(job: Job) -> bool:
    """A started job's worker stopped sending heartbeats (killed with its work-horse)."""
    beat = job.last_heartbeat or job.started_at
    if beat is None:
        return False
    if beat.tzinfo is not None:
        beat = beat.astimezone(timezone.utc).replace(tzinfo=None)
    return utcnow() - beat > HEARTBEAT_LOST_AFTER


def sent_since_failure() -> sa.ColumnElement[bool]:
    """The failed push's record was sent to the same tenant after it failed (by
    another push: an invoice's push creates its client), so it failed no more."""
    return sa.exists().where(
        ExternalLink.firm_id == PushJob.firm_id, ExternalLink.provider == PushJob.provider,
        ExternalLink.tenant_id == PushJob.tenant_id, ExternalLink.record_type == PushJob.record_type,
        ExternalLink.record_id == PushJob.record_id, ExternalLink.pushed_at > PushJob.finished_at)


def failed_latest(firm_id: int, limit: int) -> tuple[list[PushJob], int]:
    """The firm's records whose latest push failed, newest first (at most
    ``limit``), and how many there are. A record sent since by another write
    (an invoice's push creates its client) is not failed any more; pushes
    whose job was lost on the way are failed first, so they show here."""
    for active in db.session.scalars(sa.select(PushJob).where(
            PushJob.firm_id == firm_id, PushJob.state.in_(ACTIVE_PUSH_STATES), PushJob.bulk_push_id.is_(None),
            sa.func.coalesce(PushJob.started_at, PushJob.created_at) < utcnow() - LOST_AFTER)
            .order_by(PushJob.id).limit(limit)).all():
        reconcile_lost(active)
    newer = sa.orm.aliased(PushJob)
    superseded = sa.exists().where(
        newer.firm_id == PushJob.firm_id, newer.provider == PushJob.provider, newer.tenant_id == PushJob.tenant_id,
        newer.record_type == PushJob.record_type, newer.record_id == PushJob.record_id, newer.id > PushJob.id)
    latest_failed = sa.and_(PushJob.firm_id == firm_id, PushJob.state == "failed", ~superseded, ~sent_since_failure())
    failures = db.session.scalars(sa.select(PushJob).where(latest_failed)
                                  .order_by(PushJob.finished_at.desc(), PushJob.id.desc()).limit(limit)).all()
    count = db.session.scalar(sa.select(sa.func.count(PushJob.id)).where(latest_failed))
    return list(failures), count


def reconcile_lost(push: PushJob) -> PushJob:
    """Fail a push whose RQ job vanished (worker killed, Redis emptied), so no
    panel spins on "Sending…" for ever. Cheap: one Redis read, only when active."""
    if push.state not in ACTIVE_PUSH_STATES or not _may_be_lost(push):
        return push
    status = None
    if push.rq_job_id:
        try:
            job = Job.fetch(push.rq_job_id, connection=current_app.redis)
            status = job.get_status(refresh=False)
            if status == JobStatus.STARTED and _worker_is_gone(job):
                status = None
        except Exception:
            status = None
    if status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return push
    # While we looked, the job may have ended the push, or handed it to its next
    # job (a bulk send's next step): then the push is not lost.
    looked_at = push.rq_job_id
    db.session.refresh(push)
    if push.state not in ACTIVE_PUSH_STATES or push.rq_job_id != looked_at:
        return push
    _finish(push, "failed", error="The push was interrupted before it finished. Retry to send it again.")
    return db.session.get(PushJob, push.id)
