"""Keeping a pushed record's remote status current (an invoice approved or paid
at the provider) without the web process ever calling the provider: opening a panel
asks a worker to check, at most once per ``MAX_AGE`` per record."""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError

from planman.extensions import db
from planman.integrations import registry
from planman.integrations.errors import IntegrationError
from planman.integrations.throttle import Throttled
from planman.models import ExternalLink, utcnow

log = logging.getLogger(__name__)

MAX_AGE = timedelta(minutes=5)


def is_stale(link: ExternalLink) -> bool:
    return link.status_checked_at is None or utcnow() - link.status_checked_at > MAX_AGE


def request_check(link: ExternalLink) -> bool:
    """Queue a status check unless one was queued recently. True while one is pending."""
    key = f"status-check:{link.id}"
    try:
        if current_app.redis.set(key, "1", nx=True, ex=60):
            current_app.push_queue.enqueue("planman.jobs.check_remote_status", link.id, job_timeout=60,
                                           result_ttl=60, failure_ttl=3600)
        return True
    except RedisError:
        log.warning("could not queue a status check for link %s", link.id)
        return False


def check(link_id: int) -> str:
    """Read the remote status of one link and store it (run by a worker)."""
    link = db.session.get(ExternalLink, link_id)
    if link is None:
        return "missing"
    from planman.integrations.links import connection_for

    connection = connection_for(link.firm_id, link.provider)
    provider = registry.get_provider(link.provider)
    status = None
    if connection is not None and connection.is_usable and connection.tenant_id == link.tenant_id:
        try:
            status = provider.fetch_remote_status(connection, link.record_type, link.external_id)
        except (IntegrationError, Throttled) as error:
            log.info("status check of link %s skipped: %s", link_id, error)
    link = db.session.get(ExternalLink, link_id)
    if status:
        link.remote_status = status
    # Even a failed check counts: the panel stops waiting and shows what it knows.
    link.status_checked_at = utcnow()
    db.session.commit()
    current_app.redis.delete(f"status-check:{link_id}")
    return status or "unknown"
