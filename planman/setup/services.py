"""Firm administration: colleagues and tax rates."""
from __future__ import annotations

import sqlalchemy as sa

from planman.extensions import db
from planman.models import Invoice, InvoiceLine, TaxRate, User
from planman.tenancy import firm_select


class LastAdminError(Exception):
    """A firm always keeps at least one administrator."""


def firm_users() -> list[User]:
    return list(db.session.scalars(firm_select(User).order_by(sa.func.lower(User.name), User.id)))


def _keep_an_admin(user: User) -> None:
    # Lock the firm's admin rows so two admins demoting each other at once
    # cannot leave the firm with none (FOR UPDATE is ignored by SQLite, whose
    # single writer gives the same guarantee).
    # Only admins who can log in count: one invited but not in yet may never be.
    admins = db.session.scalars(
        sa.select(User.id).where(User.firm_id == user.firm_id, User.is_admin.is_(True),
                                 User.password_hash.is_not(None)).with_for_update()
    ).all()
    if not any(admin_id != user.id for admin_id in admins):
        raise LastAdminError("A firm needs at least one administrator who can log in, so this one stays.")


def set_admin(user: User, is_admin: bool) -> None:
    if not is_admin and user.is_admin:
        _keep_an_admin(user)
        # Sessions opened as an admin end: the user logs in again as a member.
        user.end_sessions()
    user.is_admin = is_admin


def issued_invoices_using(rate: TaxRate) -> int:
    """How many invoices past draft (sent, part paid, paid or void) use the rate:
    their totals are what the client was sent, so its percentage stays."""
    using = sa.select(InvoiceLine.invoice_id).where(InvoiceLine.tax_rate_id == rate.id)
    return db.session.scalar(sa.select(sa.func.count(Invoice.id)).where(
        Invoice.firm_id == rate.firm_id, Invoice.id.in_(using), Invoice.status != "draft"))


def mark_invoices_using_changed(rate: TaxRate) -> None:
    """A new percentage changes the totals of every invoice using the rate:
    count it as an edit of each (their revision moves), so a pushed invoice
    reads "Changed since last sent" and Update sends the new totals."""
    using = sa.select(InvoiceLine.invoice_id).where(InvoiceLine.tax_rate_id == rate.id)
    db.session.execute(
        sa.update(Invoice).where(Invoice.firm_id == rate.firm_id, Invoice.id.in_(using))
        .values(revision=Invoice.revision + 1),
        execution_options={"synchronize_session": False})


def remove_user(user: User) -> None:
    """Delete a colleague; what they did stays, no longer naming them. Their
    sessions end with the row (the session loader finds no one)."""
    if user.is_admin:
        _keep_an_admin(user)
    for column in _columns_naming_a_user():
        db.session.execute(sa.update(column.table).where(column == user.id).values({column.name: None}))
    db.session.delete(user)


def _columns_naming_a_user() -> list[sa.Column]:
    """Every column that points at a user (who recorded a payment, pushed a record,
    made a link…), read from the schema: a table added later is not forgotten."""
    user_id = User.__table__.c.id
    return [column for table in db.metadata.sorted_tables for column in table.columns
            if table is not User.__table__ and any(fk.column is user_id for fk in column.foreign_keys)]


def tax_rate_name_in_use(name: str, exclude_id: int | None = None) -> bool:
    stmt = firm_select(TaxRate).where(sa.func.lower(TaxRate.name) == name.lower())
    if exclude_id is not None:
        stmt = stmt.where(TaxRate.id != exclude_id)
    return db.session.scalar(stmt.limit(1)) is not None
