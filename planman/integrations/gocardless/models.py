"""What PlanMan keeps of GoCardless: each client's mandate, each invoice's collections.

Both are written from GoCardless's answers and verified webhooks only: a status
here is what GoCardless last said, never a guess from a redirect."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from planman.extensions import db
from planman.models import utcnow


class GoCardlessMandate(db.Model):
    """A client's Direct Debit with the firm's GoCardless account (one per client:
    asking again after a failure or cancellation starts a new billing request here)."""

    __tablename__ = "gocardless_mandate"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    client_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("client.id"), unique=True)
    organisation_id: so.Mapped[str] = so.mapped_column(sa.String(64))
    billing_request_id: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64), index=True)
    flow_url: so.Mapped[str] = so.mapped_column(sa.String(1000), default="")
    flow_expires_at: so.Mapped[Optional[datetime]]
    # Counts billing requests asked for: part of each one's Idempotency-Key.
    requests_made: so.Mapped[int] = so.mapped_column(default=0)
    customer_id: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64))
    mandate_id: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64), index=True)
    # GoCardless's mandate status; "requested" once the client has a set-up link and
    # has not finished the flow; "" before GoCardless has taken the request.
    status: so.Mapped[str] = so.mapped_column(sa.String(40), default="requested")
    status_detail: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    next_possible_charge_date: so.Mapped[Optional[date]]
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)


# A collection still under way (mapping.COLLECTING): an invoice has at most one. A
# paid one does not count, so a remainder (the total raised since) can be collected.
OPEN_COLLECTION_SQL = sa.text("status IN ('creating', 'pending_customer_approval', 'pending_submission', 'submitted')")


class GoCardlessCollection(db.Model):
    """One GoCardless payment collecting one invoice against its client's mandate.

    The row is committed before GoCardless is asked, with the Idempotency-Key the
    create carries: whatever happens to the answer, asking again with that key
    finds the same payment (409 conflict) instead of collecting twice."""

    __tablename__ = "gocardless_collection"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    invoice_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("invoice.id"), index=True)
    mandate_id: so.Mapped[str] = so.mapped_column(sa.String(64))
    idempotency_key: so.Mapped[str] = so.mapped_column(sa.String(100), unique=True)
    payment_id: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64), unique=True)
    amount: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(12, 2))
    currency: so.Mapped[str] = so.mapped_column(sa.String(3))
    charge_date: so.Mapped[Optional[date]]
    # "creating" until GoCardless answers the create; then GoCardless's payment status.
    status: so.Mapped[str] = so.mapped_column(sa.String(40), default="creating")
    failure_reason: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    error: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    retries: so.Mapped[int] = so.mapped_column(default=0)
    automatic: so.Mapped[bool] = so.mapped_column(default=False)
    charged_back_on: so.Mapped[Optional[date]]
    created_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("user.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.Index("uq_gocardless_collection_open", "invoice_id", unique=True,
                 sqlite_where=OPEN_COLLECTION_SQL, postgresql_where=OPEN_COLLECTION_SQL),
    )
