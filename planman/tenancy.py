"""The one door to firm data: every query is scoped to the signed-in user's firm.

Another firm's id is indistinguishable from a missing one (404), so ids leak nothing."""
from __future__ import annotations

from functools import cache
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


def firm_scoped(model: type[M]) -> sa.Select:
    """``SELECT model WHERE firm_id = :firm_id``, for statements built once and
    run with ``firm_params()`` (pages run them on every visit, and building a
    statement costs as much as running it). Run without the firm id it is an
    error, never another firm's rows."""
    return sa.select(model).where(model.firm_id == sa.bindparam("firm_id"))


def firm_params(**values) -> dict:
    """The parameters of a ``firm_scoped`` statement: the current firm, and ``values``."""
    return {"firm_id": current_firm_id(), **values}


@cache
def _by_id_in_firm(model: type[M]) -> sa.Select:
    return firm_scoped(model).where(model.id == sa.bindparam("record_id"))


def get_for_firm_or_404(model: type[M], record_id) -> M:
    return one_for_firm_or_404(_by_id_in_firm(model), record_id)


def one_for_firm_or_404(stmt: sa.Select, record_id):
    """The record a ``firm_scoped`` statement finds by ``:record_id`` (with
    whatever it loads along), or 404."""
    try:
        record_id = int(record_id)
    except (TypeError, ValueError):
        abort(404)
    # unique(): a statement may join a collection along (an invoice's lines).
    record = db.session.execute(stmt, firm_params(record_id=record_id)).unique().scalar()
    if record is None:
        abort(404)
    return record
