"""Pages of a long list without counting all of it.

Counting every row of a list costs as much as the list is long (50,000 invoices
are a millisecond of SQLite on every visit), yet a reader of page 3 needs only
its rows, whether there is a next page, and a sense of the size. So rows are
counted only up to the end of the current page rounded up to the next
``COUNT_STEP``: a list shorter than that gets its exact size ("Page 3 of 12 ·
290 in all"), a longer one an honest lower bound ("Page 3 · more than 1,000 in
all"). The bound always reaches past the current page, so the next page is known.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from planman.extensions import db

# A huge page number overflows the database's OFFSET (a 500); nobody pages this far.
MAX_PAGE = 100_000
COUNT_STEP = 1_000


@dataclass(frozen=True)
class Page:
    items: list[Any]  # rows of the select
    page: int  # 1-based
    per_page: int
    counted: int  # rows from the first, counted up to ``count_limit + 1``
    count_limit: int  # a multiple of COUNT_STEP, at least the end of this page

    @property
    def total(self) -> int | None:
        """How many rows in all, or None when there are more than ``count_limit``."""
        return self.counted if self.counted <= self.count_limit else None

    @property
    def pages(self) -> int | None:
        total = self.total
        return None if total is None else max(1, -(-total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.counted > self.page * self.per_page

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1

    @property
    def past_the_end(self) -> bool:
        """A page number beyond the last page of a list that has rows."""
        return not self.items and self.counted > 0


@lru_cache(maxsize=64)
def _page_statements(stmt: sa.Select) -> tuple[sa.Select, sa.Select]:
    """A page of ``stmt``'s rows, and its bounded count, with the numbers as
    parameters: a list built once (``firm_scoped``) gets these built once too."""
    rows = stmt.limit(sa.bindparam("page_limit", type_=sa.Integer)).offset(
        sa.bindparam("page_offset", type_=sa.Integer))
    # Only the rows matter to a count, not their columns or order.
    bounded = stmt.with_only_columns(sa.literal_column("1")).order_by(None).limit(
        sa.bindparam("count_limit", type_=sa.Integer))
    return rows, sa.select(sa.func.count()).select_from(bounded.subquery())


def paginate(stmt: sa.Select, page: int, per_page: int, params: dict | None = None) -> Page:
    """The ``page``-th ``per_page`` rows of ``stmt``, an ordered select of the
    columns a list shows, run with ``params``; a page number below 1 is the
    first page, one past the end is an empty page."""
    page = min(max(page, 1), MAX_PAGE)
    offset = (page - 1) * per_page
    count_limit = -(-(offset + per_page) // COUNT_STEP) * COUNT_STEP
    rows, count = _page_statements(stmt)
    params = params or {}
    items = db.session.execute(rows, {**params, "page_limit": per_page, "page_offset": offset}).all()
    counted = db.session.execute(count, {**params, "count_limit": count_limit + 1}).scalar()
    return Page(items=items, page=page, per_page=per_page, counted=counted, count_limit=count_limit)
