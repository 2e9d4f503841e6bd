"""Automatic collection on the due date: a daily sweep that re-schedules itself
(one job id, so it is never queued twice), plus ``flask gocardless-collect-due``
for cron, for when Redis lost the scheduled job."""
from __future__ import annotations

import logging
import uuid
from datetime import date, timedelta

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
SWEEP_JOB_ID = "gocardless-collect-due"
SWEEP_EVERY = timedelta(hours=24)


def collect_due_now(today: date | None = None) -> int:
    """Collect every firm's due invoices whose firm turned automatic collection on."""
    from planman.extensions import db
    from planman.integrations.gocardless import services
    from planman.models import Connection

    today = today or date.today()
    done = 0
    for connection in db.session.scalars(sa.select(Connection).where(Connection.provider == "gocardless",
                                                                     Connection.is_usable)).all():
        if (connection.settings or {}).get("auto_collect"):
            done += services.collect_due(connection, today)
    return done


def sweep() -> str:
    """The RQ job: collect what is due, then come back tomorrow."""
    from planman.jobs import _app

    with _app().app_context():
        done = collect_due_now()
        schedule_sweep(SWEEP_EVERY)
        return f"{done} invoice(s) collected"


def schedule_sweep(delay: timedelta = timedelta(0)) -> bool:
    """Queue a sweep now (a firm turned the setting on) or after ``delay``. Tomorrow's
    sweep has one job id per day, so however many chains were started they meet
    in one job a day; a sweep run twice collects nothing twice (one open
    collection per invoice, and never an invoice collected before)."""
    queue = current_app.push_queue
    target = "planman.integrations.gocardless.jobs.sweep"
    options = {"result_ttl": 86400, "failure_ttl": 7 * 86400}
    try:
        if delay:
            day = (date.today() + delay).isoformat() if delay >= SWEEP_EVERY else uuid.uuid4().hex
            queue.enqueue_in(delay, target, job_id=f"{SWEEP_JOB_ID}-{day}", **options)
        else:
            queue.enqueue(target, job_id=f"{SWEEP_JOB_ID}-now-{uuid.uuid4().hex[:12]}", **options)
    except RedisError:
        log.exception("could not schedule the GoCardless collection sweep")
        return False
    return True


def register_cli(app) -> None:
    import click

    if "gocardless-collect-due" in app.cli.commands:
        return

    @app.cli.command("gocardless-collect-due")
    def collect_due_command():
        """Collect by Direct Debit the invoices due (firms with automatic collection on)."""
        click.echo(f"{collect_due_now()} invoice(s) collected by Direct Debit.")
