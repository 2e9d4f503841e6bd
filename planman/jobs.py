"""RQ entry points. They take ids, never objects, and run inside an app
context: the worker's own app (configured from the environment), or the
caller's when a test runs a job in-process."""
from __future__ import annotations

import logging
import os
from datetime import timedelta

from flask import current_app, has_app_context
from redis.exceptions import RedisError
from rq import Queue, get_current_job

log = logging.getLogger(__name__)
_worker_app = None
_app_pid = None  # the process whose database connections the app's pool holds


JOB_TIMEOUT = 300
# How often a worker busy with a job tells Redis it is alive (RQ's default is
# 30 s); a push whose worker has been silent for three of these is interrupted.
HEARTBEAT_SECONDS = 10
QUEUE_UNAVAILABLE = "The job queue is not available right now, so nothing was sent. Try again shortly."


def bulk_queue(app=None) -> Queue:
    """The queue of bulk work (a bulk send's batches, catch-ups): workers take
    it only when the interactive queue (``app.push_queue``) is empty."""
    app = app or current_app
    return Queue(app.config["RQ_BULK_QUEUE"], connection=app.redis)


def queues(app=None) -> list[Queue]:
    """Every queue PlanMan uses, in the order a worker must take them."""
    app = app or current_app
    return [app.push_queue, bulk_queue(app)]


def current_job_id():
    """The id of the RQ job this code runs in, or None outside a worker."""
    job = get_current_job()
    return job.id if job is not None else None


def enqueue(function: str, record_id: int, *, job_id: str, delay: float = 0, timeout: int = JOB_TIMEOUT,
            bulk: bool = False) -> bool:
    """Queue ``planman.jobs.<function>(record_id)`` now, or after ``delay`` seconds
    through the RQ scheduler; on the bulk queue when ``bulk``, else on the
    interactive one. False (and logged) when Redis cannot take it."""
    queue = bulk_queue() if bulk else current_app.push_queue
    options = dict(job_id=job_id, job_timeout=timeout, result_ttl=3600, failure_ttl=7 * 86400)
    target = f"planman.jobs.{function}"
    try:
        if delay > 0:
            queue.enqueue_in(timedelta(seconds=delay), target, record_id, **options)
        else:
            queue.enqueue(target, record_id, **options)
    except RedisError:
        log.exception("could not enqueue %s(%s)", function, record_id)
        return False
    return True


def warm_up():
    """Build the worker's app now (in a worker's parent, before it forks)."""
    return _app()


def _app():
    global _worker_app, _app_pid
    if has_app_context():
        return current_app._get_current_object()
    if _worker_app is None:
        from planman import create_app

        _worker_app = create_app()
        _app_pid = os.getpid()
    elif _app_pid != os.getpid():
        # A forked work-horse must not use connections its parent opened.
        from planman.extensions import db

        with _worker_app.app_context():
            db.engine.dispose(close=False)
        _app_pid = os.getpid()
    return _worker_app


def run_push(push_id: int) -> str:
    from planman.integrations import push

    with _app().app_context():
        return push.run_push(push_id)


def refresh_tenant_details(connection_id: int) -> str:
    """Load the organisation's name, ShortCode, accounts and tax rates after connecting."""
    from planman.integrations.connections import refresh_tenant_details as refresh

    with _app().app_context():
        return refresh(connection_id)


def check_remote_status(link_id: int) -> str:
    """Refresh one pushed record's status at the provider (e.g. an invoice paid there)."""
    from planman.integrations import remote_status

    with _app().app_context():
        return remote_status.check(link_id)


def run_bulk_step(bulk_id: int) -> str:
    """Send the next batch of a bulk push, then queue the rest behind other firms' work."""
    from planman.integrations import bulk

    with _app().app_context():
        return bulk.run_step(bulk_id)


def process_webhook_event(event_row_id: int) -> str:
    """Process one stored webhook event (planman.integrations.webhooks)."""
    from planman.integrations import webhooks

    with _app().app_context():
        return webhooks.process(event_row_id)


def catch_up_connection(connection_id: int) -> str:
    """Read back what changed at a provider since the last catch-up (planman.integrations.webhooks)."""
    from planman.integrations import webhooks

    with _app().app_context():
        return webhooks.catch_up(connection_id)


def record_payment_in_ledger(payment_id: int) -> str:
    """Make each connected ledger match one payment, exactly once (planman.payments.ledger)."""
    from planman.payments import ledger

    with _app().app_context():
        return ledger.sync(payment_id)


def keep_connection_alive(connection_id: int) -> str:
    """Renew the tokens of a connection whose refresh token would die unused (planman.integrations.keepalive)."""
    from planman.integrations import keepalive

    with _app().app_context():
        return keepalive.keep_alive(connection_id)


def close_payment_pages(invoice_id: int) -> str:
    """Close the invoice's open payment pages it no longer needs (planman.payments.pages)."""
    from planman.payments import pages

    with _app().app_context():
        return pages.close_unneeded(invoice_id)
