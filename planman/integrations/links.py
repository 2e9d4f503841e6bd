"""Connections and the links between PlanMan records and provider records."""
from __future__ import annotations

from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import g, has_request_context

from planman.extensions import db
from planman.integrations.base import PushResult
from planman.models import Connection, ExternalLink, utcnow


# Built once: panels, pushes and settings pages all start here.
_CONNECTION_FOR = sa.select(Connection).where(
    Connection.firm_id == sa.bindparam("firm_id"), Connection.provider == sa.bindparam("provider")
)
_FIRM_CONNECTIONS = sa.select(Connection).where(Connection.firm_id == sa.bindparam("firm_id"))


def connection_for(firm_id: int, provider_key: str) -> Optional[Connection]:
    """The firm's connection to the provider. Within a request the firm's
    connections are read once, together (a record page asks for every
    provider's tab and payment options), until the session next writes
    anything, which may have added or removed one."""
    if not has_request_context():
        return db.session.execute(_CONNECTION_FOR, {"firm_id": firm_id, "provider": provider_key}).scalar()
    read = g.setdefault("connections_read", {})
    if firm_id not in read:
        read[firm_id] = {c.provider: c for c in db.session.scalars(_FIRM_CONNECTIONS, {"firm_id": firm_id})}
    return read[firm_id].get(provider_key)


@sa.event.listens_for(so.Session, "after_flush")
@sa.event.listens_for(so.Session, "after_soft_rollback")
def _forget_connections_read(session, *_):
    if has_request_context():
        g.pop("connections_read", None)


# Names only, no connection objects (their tokens and settings): every list page asks.
_USABLE_PROVIDERS = sa.select(Connection.provider).where(
    Connection.firm_id == sa.bindparam("firm_id"), Connection.is_usable)


def usable_provider_keys(firm_id: int) -> set[str]:
    """The providers the firm is connected to and can push to now."""
    return set(db.session.execute(_USABLE_PROVIDERS, {"firm_id": firm_id}).scalars())


def find_link(connection: Connection, record_type: str, record_id: int) -> Optional[ExternalLink]:
    """The record's link in the connection's *current* tenant (links are per tenant)."""
    if not connection.tenant_id:
        return None
    return db.session.scalar(
        sa.select(ExternalLink).where(
            ExternalLink.provider == connection.provider,
            ExternalLink.tenant_id == connection.tenant_id,
            ExternalLink.record_type == record_type,
            ExternalLink.record_id == record_id,
        )
    )


def links_by_record(connection: Connection, record_type: str, record_ids: list[int]) -> dict[int, ExternalLink]:
    if not connection or not connection.tenant_id or not record_ids:
        return {}
    rows = db.session.scalars(
        sa.select(ExternalLink).where(
            ExternalLink.provider == connection.provider,
            ExternalLink.tenant_id == connection.tenant_id,
            ExternalLink.record_type == record_type,
            ExternalLink.record_id.in_(record_ids),
        )
    )
    return {link.record_id: link for link in rows}


LOOK_UP = object()  # record_link's default: read the record's link first


def record_link(connection: Connection, record_type: str, record_id: int, result: PushResult,
                user_id: Optional[int], *, link=LOOK_UP) -> ExternalLink:
    """Create or refresh the link for a push result (the caller commits). ``link``:
    the record's link if the caller has already read it (None when it has none)."""
    if link is LOOK_UP:
        link = find_link(connection, record_type, record_id)
    if link is None:
        link = ExternalLink(
            firm_id=connection.firm_id,
            provider=connection.provider,
            tenant_id=connection.tenant_id,
            record_type=record_type,
            record_id=record_id,
            linked_existing=result.outcome == "linked",
        )
        db.session.add(link)
    link.external_id = result.external_id
    link.external_number = result.external_number or ""
    link.remote_status = result.remote_status or ""
    link.fingerprint = result.fingerprint
    link.record_revision = result.record_revision
    link.line_ids = result.line_ids
    link.changed_fields = result.changed_fields
    link.remote_total = result.remote_total
    link.pushed_at = link.status_checked_at = utcnow()
    link.pushed_by_id = user_id
    return link


def changed_since_sent(link: ExternalLink, record) -> bool:
    """Edited in PlanMan since it was last pushed (cheap: no payload is built)."""
    return link.record_revision is not None and record.revision != link.record_revision


def changed_since_sent_ids(connection: Connection, model, record_type: str, *criteria) -> list[int]:
    """Every linked record of the firm edited since it was last pushed (and
    meeting ``criteria``), in one query."""
    return list(db.session.scalars(
        sa.select(model.id).join(ExternalLink, sa.and_(
            ExternalLink.record_id == model.id, ExternalLink.record_type == record_type,
            ExternalLink.provider == connection.provider, ExternalLink.tenant_id == connection.tenant_id))
        .where(model.firm_id == connection.firm_id, ExternalLink.record_revision.is_not(None),
               ExternalLink.record_revision != model.revision, *criteria)
        .order_by(model.id)
    ))


def note_remote_status(connection: Connection, record_type: str, record_id: int, remote_status: str) -> None:
    link = find_link(connection, record_type, record_id)
    if link is not None:
        link.remote_status = remote_status
