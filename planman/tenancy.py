"""The one door to firm data: every query is scoped to the signed-in user's firm.

Another firm's id is indistinguishable from a missing one (404), so ids leak nothing."""
from __future__ import annotations

from typing import TypeVar

import sqlalchemy as sa
from flask import abort
from flask_login import current_user

from planman.extensions import db

M = TypeVar("M")


def current_firm_id() -> int:
    return current_user.firm_id


def firm_select(model: type[M]) -> sa.Select:
    """``SELECT model WHERE firm_id = <current firm>``, to refine further."""
    return sa.select(model).where(model.firm_id == current_firm_id())


def get_for_firm_or_404(model: type[M], record_id) -> M:
    try:
        record_id = int(record_id)
    except (TypeError, ValueError):
        abort(404)
    record = db.session.scalar(firm_select(model).where(model.id == record_id))
    if record is None:
        abort(404)
    return record
