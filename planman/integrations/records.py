"""Reading a record exactly as it stood at one revision, so what a push sends
and the revision it records as sent always belong together.

An edit commits its new content and its new revision in one transaction, but
reading a record takes several statements (the invoice, then its lines), and
under READ COMMITTED (or SQLite) an edit can land between them. So read, then
check that the revision has not moved; if it has, read again."""
from __future__ import annotations

from typing import Callable, TypeVar

import sqlalchemy as sa
import sqlalchemy.orm as so

from planman.extensions import db
from planman.integrations.errors import IntegrationError
from planman.models import Invoice, InvoiceLine

T = TypeVar("T")
MAX_READS = 5  # an edit per read, five times running, is someone typing faster than a push reads
# Everything a payload is built from, loaded with the record (no lazy loads after the check).
LOAD_OPTIONS = {Invoice: (so.selectinload(Invoice.lines).joinedload(InvoiceLine.tax_rate),)}


class KeptChanging(IntegrationError):
    """The record was edited on every read: nothing was sent."""

    user_message = "The record kept changing while it was being read, so nothing was sent. Retry when editing is done."


def _current_revisions(model, ids) -> dict[int, int]:
    return dict(db.session.execute(sa.select(model.id, model.revision).where(model.id.in_(ids))).all())


def at_one_revision(record, build: Callable[[], T]) -> tuple[T, int]:
    """``(build(), revision)``: what ``build`` made of ``record`` at one revision."""
    for _ in range(MAX_READS):
        db.session.expire_all()  # read the record (and its lines) afresh, not from an older transaction
        revision = record.revision
        built = build()
        if _current_revisions(type(record), [record.id]).get(record.id) == revision:
            return built, revision
    raise KeptChanging()


def load_at_one_revision(model, firm_id: int, ids: list[int]) -> dict:
    """The firm's records ``ids`` (those that exist), each with everything its
    payload needs loaded at one revision, which ``record.revision`` holds."""
    for _ in range(MAX_READS):
        db.session.expire_all()
        records = {r.id: r for r in db.session.scalars(
            sa.select(model).options(*LOAD_OPTIONS.get(model, ())).where(model.firm_id == firm_id, model.id.in_(ids)))}
        current = _current_revisions(model, list(records))
        if all(current.get(record_id) == record.revision for record_id, record in records.items()):
            return records
    raise KeptChanging()
