"""Bulk pushes: many records sent together in batches, each record keeping
its own PushJob and ending exactly as a single push would (push.succeed /
push.fail / the shared retry words).

How a bulk push runs:
- ``start_bulk`` records one BulkPush and one PushJob per record (a record
  already being pushed is joined, never pushed twice: the one-active-push
  index settles it), all in one commit. Invoices whose client the provider
  does not know yet bring a client push into the same bulk.
- One chain of RQ jobs (``run_step``) on the bulk queue works through the
  bulk: client batches first, then invoice batches whose clients are linked.
  Each job sends one batch and queues the next step at the back of the bulk
  queue, so bulk sends of different firms take turns batch by batch (a firm's
  first batch waits for at most one batch of each other bulk send under way),
  a person's Send on the interactive queue waits for at most one batch, and a
  lost worker loses at most one step.
- Trouble with a whole batch follows the single-push rules: throttled or
  rate limited -> the batch waits and the chain is rescheduled (never slept
  through); 5xx/timeouts -> retried with backoff, 3 attempts, then failed;
  a long wait (the provider's daily limit) or the daily allowance running low ->
  the bulk pauses, ``paused_until`` says when it resumes. The time left shown
  is the pace since the latest pause ended (``paused_until`` once past, or
  ``resumed_at`` during a later pause: a pause is not work), plus what is left
  of a pause under way.
"""
from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from planman import jobs
from planman.extensions import db
from planman.integrations import links, push, registry, throttle
from planman.integrations.base import bulk_intent
from planman.integrations.records import KeptChanging, load_at_one_revision
from planman.integrations.errors import IntegrationError, RateLimited, TemporaryFailure
from planman.integrations.throttle import Throttled
from planman.models import ACTIVE_PUSH_STATES, BulkPush, Connection, ExternalLink, Invoice, PushJob, utcnow

log = logging.getLogger(__name__)

BATCHES_PER_STEP = 1  # then the next step queues behind every other bulk send's (round robin)
JOB_TIMEOUT = 600
WAIT_FOR_OTHER_PUSH = 3  # seconds between looks while an invoice waits for its client's push elsewhere
PAUSE_AFTER = 120  # a wait longer than this is a pause the page announces (a daily limit)
# Stop a bulk push while this many calls of the provider's daily allowance are
# left (2% of a smaller published allowance), so people can still send single
# records today; look again an hour later (providers do not say when their day
# window resets).
DAY_RESERVE = 100
DAY_RESERVE_PAUSE = 3600
SELECT_MODES = ("selected", "not_sent", "changed")


def day_reserve(provider) -> int:
    """Calls of the day's allowance a bulk send leaves for single pushes."""
    per_day = provider.rate_limits(current_app.config).per_day
    return min(DAY_RESERVE, max(1, per_day // 50)) if per_day else DAY_RESERVE


def _label(bulk: BulkPush) -> str:
    provider = registry.get_provider(bulk.provider)
    return provider.label if provider else bulk.provider


def paused_note(provider) -> str:
    return (f"{provider.label}'s daily limit for this {provider.tenant_word} is nearly used up; "
            "sending resumes automatically.")

DELETED_MESSAGE = "The record was deleted in PlanMan before it could be sent."


# -- choosing records -------------------------------------------------------------

def select_record_ids(connection: Connection, record_type: str, mode: str, ids: list[int]) -> list[int]:
    """The ids of the firm's records a bulk push is for.

    ``selected``: the given ids (another firm's are dropped); ``not_sent``:
    records with no link in the connected organisation; ``changed``: linked
    records edited since they were last sent."""
    model = push.RECORD_MODELS[record_type]
    linked = sa.select(ExternalLink.record_id).where(
        ExternalLink.provider == connection.provider, ExternalLink.tenant_id == connection.tenant_id,
        ExternalLink.record_type == record_type)
    query = sa.select(model.id).where(model.firm_id == connection.firm_id).order_by(model.id)
    if mode == "selected":
        return sorted(record_id for chunk in _chunks(sorted(set(ids)))
                      for record_id in db.session.scalars(query.where(model.id.in_(chunk))))
    if mode == "not_sent":
        if record_type == "invoice":  # void in PlanMan: never sent as new (push.is_void)
            query = query.where(model.status != "void")
        return list(db.session.scalars(query.where(model.id.not_in(linked))))
    if mode == "changed":
        # Voided since it was sent: "Void in <ledger>" on its page, not an update, ends it there.
        not_void = (model.status != "void",) if record_type == "invoice" else ()
        return links.changed_since_sent_ids(connection, model, record_type, *not_void)
    raise ValueError(f"unknown selection {mode!r}")


# -- starting ---------------------------------------------------------------------

@dataclass
class Started:
    bulk: Optional[BulkPush]  # None: every record is being sent by earlier bulk sends, so none was made
    queued: int = 0
    joined: int = 0  # a single push already under way: followed by this bulk, not sent twice
    # Already in an earlier bulk send (its id: how many), which carries on: not sent twice.
    elsewhere: dict[int, int] = field(default_factory=dict)


def start_bulk(connection: Connection, record_type: str, record_ids: list[int], *, user_id: Optional[int]) -> Started:
    """Record a bulk push for ``record_ids`` and start its job chain.

    The bulk and all its pushes are committed together: committed alone, a
    bulk is one that has nothing left to send, and the first progress read
    (anyone's list of bulk sends) would finish it before a record was sent."""
    bulk = BulkPush(firm_id=connection.firm_id, provider=connection.provider, tenant_id=connection.tenant_id,
                    record_type=record_type, requested_by_id=user_id)
    db.session.add(bulk)
    db.session.flush()
    started = Started(bulk)
    step_job_id = _new_step_id(bulk)
    ids = sorted(set(record_ids))
    if record_type == "invoice":
        # Clients the provider does not know yet go first, as pushes of their own in this bulk.
        client_ids: set[int] = set()
        for chunk in _chunks(ids):
            client_ids.update(db.session.scalars(sa.select(Invoice.client_id).where(
                Invoice.firm_id == connection.firm_id, Invoice.id.in_(chunk))))
        unlinked = [client_id for chunk in _chunks(sorted(client_ids))
                    for client_id in sorted(set(chunk) - set(links.links_by_record(connection, "client", chunk)))]
        _add_pushes(connection, bulk, "client", unlinked, user_id, step_job_id, started)
    _add_pushes(connection, bulk, record_type, ids, user_id, step_job_id, started)
    if not started.queued and not started.joined:
        # Nothing of its own (an earlier bulk send has every record): a bulk here would
        # read "Finished: 0 sent" beside one that is sending them.
        db.session.rollback()
        started.bulk = None
        return started
    db.session.commit()
    if not _enqueue_step(bulk, job_id=step_job_id):
        return started
    if not started.queued:
        _finish_if_done(bulk)
    return started


def _chunks(ids: list[int], size: int = 1000):
    """Keep IN lists well below the databases' bound-parameter limits (SQLite 32,766)."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _add_pushes(connection, bulk, record_type, ids, user_id, step_job_id, started: Started) -> None:
    """Add the bulk's pushes to the session (the caller commits them with the bulk)."""
    for chunk in _chunks(ids):
        active = {p.record_id: p for p in db.session.scalars(_active_pushes(connection, record_type, chunk))}
        for existing in active.values():
            _join(existing, bulk, started)
        now = utcnow()
        rows = [dict(firm_id=connection.firm_id, provider=connection.provider, tenant_id=connection.tenant_id,
                     record_type=record_type, record_id=record_id, state="queued", requested_by_id=user_id,
                     bulk_push_id=bulk.id, rq_job_id=step_job_id, created_at=now)
                for record_id in chunk if record_id not in active]
        if not rows:
            continue
        try:
            with db.session.begin_nested():
                db.session.execute(sa.insert(PushJob), rows)
            started.queued += len(rows)
        except IntegrityError:
            # Someone clicked Send on one of these meanwhile: go one by one, joining theirs.
            for row in rows:
                try:
                    with db.session.begin_nested():
                        db.session.execute(sa.insert(PushJob), [row])
                    started.queued += 1
                except IntegrityError:
                    theirs = db.session.scalars(_active_pushes(connection, record_type, [row["record_id"]])).first()
                    if theirs is not None:
                        _join(theirs, bulk, started)
                        continue
                    db.session.execute(sa.insert(PushJob), [row])  # theirs ended meanwhile: ours goes after all
                    started.queued += 1


def _active_pushes(connection, record_type, record_ids) -> sa.Select:
    return sa.select(PushJob).where(
        PushJob.provider == connection.provider, PushJob.tenant_id == connection.tenant_id,
        PushJob.record_type == record_type, PushJob.record_id.in_(record_ids), PushJob.state.in_(ACTIVE_PUSH_STATES))


def _join(existing: PushJob, bulk: BulkPush, started: Started) -> None:
    """A push already under way for one of the bulk's records: it is not sent twice."""
    if existing.bulk_push_id is None:
        existing.bulk_push_id = bulk.id  # a single push under way: this page follows it too
        started.joined += 1
    elif existing.bulk_push_id != bulk.id:
        started.elsewhere[existing.bulk_push_id] = started.elsewhere.get(existing.bulk_push_id, 0) + 1


# -- the job chain ------------------------------------------------------------------

def _new_step_id(bulk: BulkPush) -> str:
    return f"bulk-{bulk.id}-{uuid.uuid4().hex[:8]}"


def _owned(bulk: BulkPush):
    """This bulk's own pushes (joined single pushes run through their own jobs)."""
    return sa.and_(PushJob.bulk_push_id == bulk.id, PushJob.rq_job_id.like(f"bulk-{bulk.id}-%"))


def _enqueue_step(bulk: BulkPush, delay: float = 0, job_id: Optional[str] = None) -> bool:
    """Queue the next step, then write its job id on the bulk's active pushes,
    so ``push.reconcile_lost`` can tell a lost chain from a live one. In that
    order a push always names a job Redis holds: this running step until the
    next one exists (written the other way round, a progress poll in between
    found no job and failed the pushes as interrupted)."""
    job_id = job_id or _new_step_id(bulk)
    if not jobs.enqueue("run_bulk_step", bulk.id, job_id=job_id, delay=delay, timeout=JOB_TIMEOUT, bulk=True):
        _fail_remaining(bulk, jobs.QUEUE_UNAVAILABLE)
        return False
    running = jobs.current_job_id()
    if running is not None:
        # Only pushes still naming this step: the next one may have started
        # already and claimed them (see run_step), and must not be overwritten.
        _name_step(bulk, job_id, PushJob.rq_job_id == running)
    return True


def _name_step(bulk: BulkPush, job_id: str, *where) -> None:
    db.session.execute(sa.update(PushJob).where(_owned(bulk), PushJob.state.in_(ACTIVE_PUSH_STATES), *where)
                       .values(rq_job_id=job_id).execution_options(synchronize_session=False))
    db.session.commit()


def run_step(bulk_id: int) -> str:
    """Send batches for a while, then hand over to the next job (called by RQ)."""
    bulk = db.session.get(BulkPush, bulk_id)
    if bulk is None or bulk.finished_at is not None:
        return "missing" if bulk is None else "finished"
    running = jobs.current_job_id()
    if running is not None:
        _name_step(bulk, running)  # the pushes are this step's even if the last one has not said so yet
    if bulk.paused_until and bulk.paused_until > utcnow():
        _enqueue_step(bulk, delay=(bulk.paused_until - utcnow()).total_seconds())
        return "paused"
    connection = links.connection_for(bulk.firm_id, bulk.provider)
    problem = push.connection_problem(registry.get_provider(bulk.provider), connection, bulk.tenant_id)
    if problem:
        _fail_remaining(bulk, problem)
        return "failed"
    for _ in range(BATCHES_PER_STEP):
        work = _next_batch(bulk, connection)
        if work is None:
            return "finished" if _finish_if_done(bulk) else "waiting"
        if isinstance(work, float):
            _enqueue_step(bulk, delay=work)
            return "waiting"
        record_type, pushes = work
        with throttle.bulk_calls():  # leaves the tenant's reserve to single pushes
            wait = _send_batch(bulk, connection, record_type, pushes)
        if wait is not None:
            if wait > PAUSE_AFTER:
                bulk = db.session.get(BulkPush, bulk_id)
                if bulk.paused_until and bulk.paused_until <= utcnow():
                    bulk.resumed_at = bulk.paused_until  # sending since the pause before ended
                bulk.paused_until = utcnow() + timedelta(seconds=wait)
                db.session.commit()
            _enqueue_step(bulk, delay=wait)
            return "rescheduled"
    _enqueue_step(bulk)
    return "continued"


def _due(bulk: BulkPush):
    now = utcnow()
    return sa.and_(_owned(bulk), sa.or_(PushJob.state == "queued",
                                        sa.and_(PushJob.state == "retrying", PushJob.next_attempt_at <= now)))


def _next_batch(bulk: BulkPush, connection: Connection):
    """``(record_type, pushes)`` to send next; seconds to wait (float); or None when nothing is left."""
    provider = registry.get_provider(bulk.provider)
    size = max(1, provider.batch_size)
    clients = db.session.scalars(sa.select(PushJob).where(_due(bulk), PushJob.record_type == "client")
                                 .order_by(PushJob.id).limit(size)).all()
    if clients:
        return "client", clients

    invoices = db.session.scalars(sa.select(PushJob).where(_due(bulk), PushJob.record_type == "invoice")
                                  .order_by(PushJob.id).limit(size * 10)).all()
    ready, waiting = [], False
    if invoices:
        client_of = dict(db.session.execute(sa.select(Invoice.id, Invoice.client_id).where(
            Invoice.firm_id == bulk.firm_id, Invoice.id.in_([p.record_id for p in invoices]))).all())
        linked = links.links_by_record(connection, "client", sorted(set(client_of.values())))
        blocked = {client_of[p.record_id] for p in invoices
                   if client_of.get(p.record_id) is not None and client_of[p.record_id] not in linked}
        # The clients' latest pushes are read before their links are read again:
        # a push that ends between the two reads is then seen linked, not lost.
        latest = {client_id: _snapshot(push.latest_push(connection, "client", client_id)) for client_id in blocked}
        linked.update(links.links_by_record(connection, "client", sorted(blocked)))
        for pushed in invoices:
            client_id = client_of.get(pushed.record_id)
            if client_id is None or client_id in linked:
                ready.append(pushed)  # a deleted invoice is reported by _send_batch
            elif _client_blocks(bulk, connection, pushed, client_id, latest[client_id]):
                waiting = True
            if len(ready) >= size:
                break
    if ready:
        return "invoice", ready

    pending = db.session.scalar(sa.select(sa.func.min(PushJob.next_attempt_at)).where(
        _owned(bulk), PushJob.state == "retrying"))
    if pending is not None:
        return max(0.5, (pending - utcnow()).total_seconds())
    if waiting or db.session.scalar(sa.select(sa.func.count(PushJob.id)).where(_due(bulk))):
        return float(WAIT_FOR_OTHER_PUSH)
    return None


@dataclass(frozen=True)
class _PushSnapshot:
    """A push as read at one moment (rows reloaded after a commit could have moved on)."""

    is_active: bool
    state: str
    created_at: datetime
    error_message: str
    error_fields: Optional[dict]


def _snapshot(pushed: Optional[PushJob]) -> Optional[_PushSnapshot]:
    if pushed is None:
        return None
    return _PushSnapshot(pushed.is_active, pushed.state, pushed.created_at, pushed.error_message, pushed.error_fields)


def _client_blocks(bulk: BulkPush, connection: Connection, invoice_push: PushJob, client_id: int,
                   client_push: Optional[_PushSnapshot]) -> bool:
    """An invoice whose client is not linked: wait for the client's push, fail
    with the client's own reason, or give the client a push in this bulk."""
    if client_push is not None and client_push.is_active:
        return True
    if client_push is not None and client_push.state == "failed" and client_push.created_at >= bulk.created_at:
        push.finish(invoice_push, "failed", discard_pending=False,
                    error=f"Its client could not be sent to {_label(bulk)}: {client_push.error_message}",
                    fields=client_push.error_fields)
        return False
    pushed, joined = push.start_push(connection, "client", client_id, user_id=invoice_push.requested_by_id,
                                     bulk_push_id=bulk.id, enqueue=False)
    if not joined:
        pushed.rq_job_id = invoice_push.rq_job_id
        db.session.commit()
    return True


def _send_batch(bulk: BulkPush, connection: Connection, record_type: str, pushes: list[PushJob]) -> Optional[float]:
    """Send one batch and end each push in it. Returns seconds to wait before
    the next batch (rescheduled or paused), or None to carry on at once."""
    now = utcnow()
    for pushed in pushes:
        pushed.state, pushed.started_at, pushed.next_attempt_at = "running", now, None
        pushed.attempts += 1
    db.session.commit()

    model = push.RECORD_MODELS[record_type]
    waiting = {p.record_id: p for p in pushes}
    # Loaded at one revision with all their payloads need, and no commit until the
    # provider has built its payloads: the revisions recorded are those sent.
    while True:
        try:
            records = load_at_one_revision(model, bulk.firm_id, list(waiting))
        except KeptChanging as error:
            records = {}
            for pushed in waiting.values():
                push.fail(pushed, connection, error, discard_pending=False, commit=False)
            waiting.clear()
        ended = {record_id: (DELETED_MESSAGE, "") for record_id in waiting if record_id not in records}
        ended.update(_void_endings(connection, record_type, [r for r in records.values() if r.id in waiting]))
        if not ended and waiting:
            break
        for record_id, (message, outcome) in ended.items():
            push.finish(waiting.pop(record_id), "failed", error=message, outcome=outcome, discard_pending=False,
                        commit=False)
        db.session.commit()  # then read the rest again: the commit expired them
        if not waiting:
            return None
    revisions = {record_id: record.revision for record_id, record in records.items()}

    def on_results(results) -> None:
        # External ids are stored as each call returns, before the next one. The
        # batch's pushes and links are read in one query each and written in one
        # flush: row by row, a batch of 50 took 200 statements and held the
        # database's write lock throughout.
        _reload({record_id: waiting[record_id] for record_id in results})
        known = links.links_by_record(connection, record_type, list(results))
        with db.session.no_autoflush:
            for record_id, result in results.items():
                pushed = waiting.pop(record_id)
                if isinstance(result, IntegrationError):
                    push.fail(pushed, connection, result, discard_pending=False, commit=False)
                else:
                    result.record_revision = revisions[record_id]  # loaded with what was sent
                    push.succeed(connection, pushed, result, commit=False, link=known.get(record_id))
        db.session.commit()

    provider = registry.get_provider(bulk.provider)
    try:
        report = provider.export_batch(connection, record_type, [records[rid] for rid in sorted(waiting)],
                                       on_results=on_results, intent=bulk_intent(bulk))
    except Throttled as wait:
        return _hold(waiting, wait.wait, push.throttled_note(provider))
    except RateLimited as error:
        return _hold(waiting, error.retry_after, push.rate_limited_note(provider))
    except TemporaryFailure as error:
        log.warning("bulk %s: temporary failure: %s", bulk.id, error.detail or error.user_message)
        return _retry_or_fail(waiting, error)
    except IntegrationError as error:
        db.session.rollback()
        for pushed in _reload(waiting):
            push.fail(pushed, connection, error, discard_pending=False, commit=False)
        db.session.commit()
        return None
    except Exception:
        log.exception("bulk %s: batch failed unexpectedly", bulk.id)
        db.session.rollback()
        for pushed in _reload(waiting):
            push.finish(pushed, "failed", error=push.UNEXPECTED_MESSAGE, discard_pending=False, commit=False)
        db.session.commit()
        return None
    for pushed in _reload(waiting):  # the provider reported nothing for these: say so rather than spin
        push.finish(pushed, "failed", error=push.UNEXPECTED_MESSAGE, discard_pending=False, commit=False)
    db.session.commit()
    if report.day_remaining is not None and report.day_remaining <= day_reserve(provider):
        return float(DAY_RESERVE_PAUSE)
    return None


def _void_endings(connection: Connection, record_type: str, records: list) -> dict[int, tuple[str, str]]:
    """Void records are never sent as new; one sent before is voided from its own page."""
    void = [record.id for record in records if push.is_void(record_type, record)]
    if not void:
        return {}
    provider = registry.get_provider(connection.provider)
    sent_before = links.links_by_record(connection, record_type, void)
    hint = f" It was sent before: open it and use “Void in {provider.label}”."
    return {record_id: (push.void_not_sent_message(provider) + (hint if record_id in sent_before else ""), "closed")
            for record_id in void}


def _reload(waiting: dict[int, PushJob]) -> list[PushJob]:
    ids = [sa.inspect(p).identity[0] for p in waiting.values()]  # p.id would load each expired row
    return db.session.scalars(sa.select(PushJob).where(PushJob.id.in_(ids))).all() if ids else []


def _hold(waiting: dict[int, PushJob], delay: float, note: str) -> float:
    """Put the rest of the batch back to wait; the wait does not count as an attempt."""
    db.session.rollback()
    now = utcnow()
    for pushed in _reload(waiting):
        pushed.attempts = max(0, pushed.attempts - 1)
        pushed.state, pushed.error_message = "retrying", note
        pushed.next_attempt_at = now + timedelta(seconds=delay)
    db.session.commit()
    return max(0.5, delay)


def _retry_or_fail(waiting: dict[int, PushJob], error: TemporaryFailure) -> Optional[float]:
    db.session.rollback()
    now, delays = utcnow(), []
    for pushed in _reload(waiting):
        if pushed.attempts < push.MAX_ATTEMPTS:
            delay = push.BACKOFF_SECONDS[pushed.attempts - 1]
            pushed.state, pushed.error_message = "retrying", push.retrying_note(error)
            pushed.next_attempt_at = now + timedelta(seconds=delay)
            delays.append(delay)
        else:
            push.finish(pushed, "failed", error=push.gave_up_message(error), discard_pending=False, commit=False)
    db.session.commit()
    return float(min(delays)) if delays else None


def _fail_remaining(bulk: BulkPush, message: str) -> None:
    db.session.rollback()
    for pushed in db.session.scalars(sa.select(PushJob).where(_owned(bulk), PushJob.state.in_(ACTIVE_PUSH_STATES))):
        push.finish(pushed, "failed", error=message, discard_pending=False, commit=False)
    db.session.commit()
    _finish_if_done(bulk)


def _finish_if_done(bulk: BulkPush) -> bool:
    active = db.session.scalar(sa.select(sa.func.count(PushJob.id)).where(
        PushJob.bulk_push_id == bulk.id, PushJob.state.in_(ACTIVE_PUSH_STATES)))
    if active:
        return False
    if bulk.finished_at is None:
        bulk.finished_at = utcnow()
        bulk.paused_until = None
        db.session.commit()
    return True


# -- progress -------------------------------------------------------------------------

@dataclass
class Progress:
    bulk: BulkPush
    total: int = 0
    sent: int = 0
    failed: int = 0
    remaining: int = 0
    by_type: dict = field(default_factory=dict)  # record_type -> {"total", "sent", "failed"}
    seconds_left: Optional[int] = None
    finished: bool = False
    paused_until: Optional[datetime] = None
    note: str = ""  # why it is waiting, when it is

    @property
    def done(self) -> int:
        return self.sent + self.failed

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100


def progress(bulk: BulkPush) -> Progress:
    """Where a bulk push stands; also ends one whose job chain was lost."""
    _reconcile(bulk)
    rows = db.session.execute(sa.select(PushJob.record_type, PushJob.state, sa.func.count(PushJob.id))
                              .where(PushJob.bulk_push_id == bulk.id)
                              .group_by(PushJob.record_type, PushJob.state)).all()
    result = Progress(bulk)
    for record_type, state, count in rows:
        counts = result.by_type.setdefault(record_type, {"total": 0, "sent": 0, "failed": 0})
        counts["total"] += count
        result.total += count
        if state == "succeeded":
            counts["sent"] += count
            result.sent += count
        elif state == "failed":
            counts["failed"] += count
            result.failed += count
        else:
            result.remaining += count
    if result.remaining == 0:
        _finish_if_done(bulk)
    result.finished = bulk.finished_at is not None
    if result.finished:
        return result
    if bulk.paused_until and bulk.paused_until > utcnow():
        result.paused_until, result.note = bulk.paused_until, paused_note(registry.get_provider(bulk.provider))
    else:
        result.note = db.session.scalar(sa.select(PushJob.error_message).where(
            PushJob.bulk_push_id == bulk.id, PushJob.state == "retrying").limit(1)) or ""
    result.seconds_left = _estimate(bulk, result)
    return result


def _estimate(bulk: BulkPush, result: Progress) -> int:
    """Seconds left: from the pace so far once there is one (pauses left out), else
    from the call budget (a lookup and a write per batch, at the provider's calls
    per minute); plus what is left of a pause."""
    provider = registry.get_provider(bulk.provider)
    size = max(1, getattr(provider, "batch_size", 1))
    per_minute = provider.rate_limits(current_app.config).per_minute or 60
    by_budget = math.ceil(result.remaining / size) * 2 * 60 / per_minute
    now = utcnow()
    since = db.session.scalar(sa.select(sa.func.min(PushJob.started_at)).where(PushJob.bulk_push_id == bulk.id))
    done = result.done
    # The pace since the latest pause ended: counting an hour's pause as work would
    # make every record after it look an hour slower.
    resumed = bulk.paused_until if bulk.paused_until and bulk.paused_until <= now else bulk.resumed_at
    if since and resumed and since < resumed:
        since = resumed
        done = db.session.scalar(sa.select(sa.func.count(PushJob.id)).where(
            PushJob.bulk_push_id == bulk.id, PushJob.state.in_(("succeeded", "failed")),
            PushJob.finished_at >= since))
    until = now
    if since and result.paused_until:  # paused now: the pace up to the last record sent
        until = db.session.scalar(sa.select(sa.func.max(PushJob.finished_at)).where(
            PushJob.bulk_push_id == bulk.id)) or now
    elapsed = (until - since).total_seconds() if since else 0
    estimate = result.remaining * elapsed / done if done and elapsed > 1 else by_budget
    if result.paused_until:
        estimate += (result.paused_until - now).total_seconds()
    return int(math.ceil(estimate))


def _reconcile(bulk: BulkPush) -> None:
    """A chain whose job vanished (worker killed, Redis emptied) leaves pushes
    active for ever: check one push per job id with the single-push rule and,
    if its job is lost, end the others waiting on that job the same way."""
    if bulk.finished_at is not None:
        return
    job_ids = db.session.scalars(sa.select(PushJob.rq_job_id).where(
        PushJob.bulk_push_id == bulk.id, PushJob.state.in_(ACTIVE_PUSH_STATES)).distinct()).all()
    for job_id in job_ids:
        sample = db.session.scalar(sa.select(PushJob).where(
            PushJob.bulk_push_id == bulk.id, PushJob.rq_job_id == job_id, PushJob.state.in_(ACTIVE_PUSH_STATES))
            .order_by(PushJob.started_at.desc().nulls_last(), PushJob.id.desc()).limit(1))
        if sample is None or push.reconcile_lost(sample).state in ACTIVE_PUSH_STATES:
            continue
        for pushed in db.session.scalars(sa.select(PushJob).where(
                PushJob.bulk_push_id == bulk.id, PushJob.rq_job_id == job_id, PushJob.state.in_(ACTIVE_PUSH_STATES))):
            push.finish(pushed, "failed", error=sample.error_message, discard_pending=False, commit=False)
        db.session.commit()


def failures(bulk: BulkPush) -> list[PushJob]:
    return db.session.scalars(sa.select(PushJob).where(PushJob.bulk_push_id == bulk.id, PushJob.state == "failed")
                              .order_by(PushJob.record_type, PushJob.id)).all()


def retryable(bulk: BulkPush) -> list[PushJob]:
    """Failed pushes of the bulk's own kind worth another go: not locked or
    blocked at the provider nor void in PlanMan, the record still there, and no later
    push of the record since."""
    newer = sa.orm.aliased(PushJob)
    superseded = sa.exists().where(newer.provider == PushJob.provider, newer.tenant_id == PushJob.tenant_id,
                                   newer.record_type == PushJob.record_type, newer.record_id == PushJob.record_id,
                                   newer.id > PushJob.id)
    model = push.RECORD_MODELS[bulk.record_type]
    exists = sa.exists().where(model.id == PushJob.record_id, model.firm_id == PushJob.firm_id)
    return db.session.scalars(sa.select(PushJob).where(
        PushJob.bulk_push_id == bulk.id, PushJob.record_type == bulk.record_type, PushJob.state == "failed",
        PushJob.outcome.not_in(("locked", "closed", "blocked")), ~superseded, ~push.sent_since_failure(), exists)
        .order_by(PushJob.id)).all()


def retry_failed(bulk: BulkPush, connection: Connection, *, user_id: Optional[int]) -> Optional[Started]:
    """A new bulk push for just the failed records of ``bulk``."""
    ids = [p.record_id for p in retryable(bulk)]
    if not ids:
        return None
    return start_bulk(connection, bulk.record_type, ids, user_id=user_id)
