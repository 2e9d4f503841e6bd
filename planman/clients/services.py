"""Client queries and rules shared by the views, the invoice form and the seed."""
from __future__ import annotations

from functools import cache

import sqlalchemy as sa

from planman.extensions import db
from planman.models import Client, client_name_key
from planman.tenancy import firm_scoped, firm_select


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@cache
def _list_rows() -> sa.Select:
    # What the list shows, as rows (cheaper than objects, and a list only reads them).
    return firm_scoped(Client).with_only_columns(
        Client.id, Client.name, Client.first_name, Client.last_name, Client.email, Client.phone, Client.reference
    ).order_by(sa.func.lower(Client.name), Client.id)


def search_select(query: str) -> sa.Select:
    """The firm's clients matching ``query`` in name, contact, email or
    reference, as list rows, to run with ``firm_params()``. Without a query it
    is one statement built once: the list as it opens."""
    stmt = _list_rows()
    for word in query.split():
        pattern = _like_pattern(word)
        stmt = stmt.where(
            sa.or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (Client.name, Client.first_name, Client.last_name, Client.email, Client.reference)
                )
            )
        )
    return stmt


def name_in_use(name: str, exclude_id: int | None = None) -> bool:
    """Ledgers insist on unique contact names, so a firm's client names are
    unique, ignoring case the way they do (``client_name_key``)."""
    stmt = firm_select(Client).where(Client.name_key == client_name_key(name))
    if exclude_id is not None:
        stmt = stmt.where(Client.id != exclude_id)
    return db.session.scalar(stmt.limit(1)) is not None


def is_name_clash(error: sa.exc.IntegrityError) -> bool:
    """The unique index on a firm's client name keys refused a save."""
    return "name_key" in str(error.orig)
