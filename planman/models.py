"""The data model. Firm data always carries ``firm_id``; read it through
``planman.tenancy`` so one firm never sees another's rows."""
from __future__ import annotations

import functools
import secrets
import unicodedata
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.ext.hybrid import hybrid_property
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from planman.extensions import db


@functools.cache
def _dummy_password_hash() -> str:
    return generate_password_hash(secrets.token_hex(16))


def password_matches(password_hash: str | None, password: str) -> bool:
    """Check ``password``; without a hash (no such user, or one still invited)
    a dummy hash is checked instead, so the answer takes as long either way
    and its timing does not tell which e-mail addresses have accounts."""
    if not password_hash:
        check_password_hash(_dummy_password_hash(), password)
        return False
    return check_password_hash(password_hash, password)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Firm(db.Model):
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(255))
    currency: so.Mapped[str] = so.mapped_column(sa.String(3), default="GBP")
    next_invoice_number: so.Mapped[int] = so.mapped_column(default=1)
    # IANA name (zoneinfo): every time a page shows is in this zone.
    time_zone: so.Mapped[str] = so.mapped_column(sa.String(64), default="Europe/London",
                                                 server_default="Europe/London")
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    users: so.Mapped[list["User"]] = so.relationship(back_populates="firm", order_by="User.name")


class User(UserMixin, db.Model):
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    email: so.Mapped[str] = so.mapped_column(sa.String(255), unique=True)
    password_hash: so.Mapped[Optional[str]] = so.mapped_column(sa.String(255))
    is_admin: so.Mapped[bool] = so.mapped_column(default=False)
    # An invited colleague sets their own password through a one-time link;
    # only a hash of the token is stored.
    invite_token_hash: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64), index=True)
    invite_expires_at: so.Mapped[Optional[datetime]] = so.mapped_column()  # UTC, like every stored time
    # Each session carries the epoch it started in and counts only while it
    # still matches: bumping it (log-out, new password, removal, demotion)
    # ends every session of this user at once.
    session_epoch: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    firm: so.Mapped[Firm] = so.relationship(back_populates="users")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return password_matches(self.password_hash, password)

    def end_sessions(self) -> None:
        self.session_epoch = (self.session_epoch or 0) + 1


def client_name_key(name: str) -> str:
    """What makes two client names the same for a ledger: case ignored in every
    script ("Ülf" is "ülf", "STRASSE" is "Straße"), as is how an accented letter
    was typed (composed or not) and surrounding space."""
    return unicodedata.normalize("NFC", (name or "").strip()).casefold()


def _name_key_default(context) -> str:
    # Core inserts (the bulk seed) pass the ORM; they get the key from the row's name.
    return client_name_key(context.get_current_parameters()["name"])


def new_client_reference() -> str:
    """A stable, firm-independent reference, sent to ledgers as the contact's number."""
    return "PM-" + secrets.token_hex(5).upper()


class Client(db.Model):
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    reference: so.Mapped[str] = so.mapped_column(sa.String(50), unique=True, default=new_client_reference)
    name: so.Mapped[str] = so.mapped_column(sa.String(255))
    # client_name_key(name), kept by the validator below; unique per firm, so
    # the database itself refuses two names a ledger would take for one.
    name_key: so.Mapped[str] = so.mapped_column(sa.String(1024), default=_name_key_default)
    first_name: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    last_name: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    email: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    phone: so.Mapped[str] = so.mapped_column(sa.String(50), default="")
    address_line1: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    address_line2: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    city: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    region: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    postcode: so.Mapped[str] = so.mapped_column(sa.String(50), default="")
    country: so.Mapped[str] = so.mapped_column(sa.String(50), default="")
    tax_number: so.Mapped[str] = so.mapped_column(sa.String(50), default="")
    payment_terms_days: so.Mapped[int] = so.mapped_column(default=30)
    notes: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    # Bumped on every edit: a link holding an older one is "changed since last sent".
    revision: so.Mapped[int] = so.mapped_column(default=1)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (sa.UniqueConstraint("firm_id", "name_key", name="uq_client_firm_name_key"),)

    @so.validates("name")
    def _keep_name_key(self, _key, name):
        self.name_key = client_name_key(name)
        return name


# Client lists sort by name ignoring case: this index serves that order directly.
sa.Index("ix_client_firm_lower_name", Client.firm_id, sa.func.lower(Client.name), Client.id)


class TaxRate(db.Model):
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(100))
    percent: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(7, 4))


# What a user picks for an invoice; "part_paid" and "paid" follow from its
# payments (planman.payments.services keeps them), never from the form.
USER_INVOICE_STATUSES = ("draft", "sent", "void")
INVOICE_STATUSES = ("draft", "sent", "part_paid", "paid", "void")
AMOUNT_TYPES = ("exclusive", "inclusive", "no_tax")


class Invoice(db.Model):
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    client_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("client.id"), index=True)
    number: so.Mapped[str] = so.mapped_column(sa.String(255))
    issue_date: so.Mapped[date]
    due_date: so.Mapped[date]
    currency: so.Mapped[str] = so.mapped_column(sa.String(3))
    reference: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    amounts_are: so.Mapped[str] = so.mapped_column(sa.String(20), default="exclusive")
    status: so.Mapped[str] = so.mapped_column(sa.String(20), default="draft")
    revision: so.Mapped[int] = so.mapped_column(default=1)
    # What the lines add up to (``totals.total``), stored for the lists and kept
    # right by planman.invoices.totals on every change. Room for 500 lines at
    # the largest amounts the form accepts.
    total: so.Mapped[Optional[Decimal]] = so.mapped_column(sa.Numeric(24, 2))
    # The sum of its succeeded payments, kept by planman.payments.services in
    # the statement that changes a payment (so two payments can never overpay).
    amount_paid: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(24, 2), default=Decimal("0.00"),
                                                       server_default="0")
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)

    client: so.Mapped[Client] = so.relationship()
    lines: so.Mapped[list["InvoiceLine"]] = so.relationship(
        back_populates="invoice", order_by="InvoiceLine.position", cascade="all, delete-orphan"
    )
    # Read along with the invoice for its page; planman.payments.links writes it.
    payment_link: so.Mapped[Optional["PaymentLink"]] = so.relationship(viewonly=True)

    __table_args__ = (
        sa.UniqueConstraint("firm_id", "number", name="uq_invoice_firm_number"),
        # The invoice list's order (newest first), with and without a status filter:
        # pages come straight off the index instead of sorting every invoice.
        sa.Index("ix_invoice_firm_issued", "firm_id", "issue_date", "id"),
        sa.Index("ix_invoice_firm_status_issued", "firm_id", "status", "issue_date", "id"),
    )

    @property
    def totals(self):
        from planman.money import invoice_totals

        return invoice_totals(self)

    @property
    def amount_due(self) -> Decimal:
        return (self.total or Decimal("0.00")) - (self.amount_paid or Decimal("0.00"))


class InvoiceLine(db.Model):
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    invoice_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("invoice.id"), index=True)
    position: so.Mapped[int] = so.mapped_column(default=0)
    description: so.Mapped[str] = so.mapped_column(sa.Text)
    quantity: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(14, 4))
    unit_price: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(14, 4))
    discount_percent: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(7, 4), default=Decimal("0"))
    tax_rate_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("tax_rate.id"))

    invoice: so.Mapped[Invoice] = so.relationship(back_populates="lines")
    tax_rate: so.Mapped[Optional[TaxRate]] = so.relationship()


# --- Integrations ----------------------------------------------------------

CONNECTION_STATES = ("choosing", "connected", "needs_reconnect", "disconnected")


class Connection(db.Model):
    """A firm's link to one provider account (its tenant: an organisation, a business)."""

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    provider: so.Mapped[str] = so.mapped_column(sa.String(30))
    state: so.Mapped[str] = so.mapped_column(sa.String(20), default="disconnected")
    state_reason: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    tenant_id: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64))
    tenant_name: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    tenant_short_code: so.Mapped[str] = so.mapped_column(sa.String(32), default="")
    remote_connection_id: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64))
    # Organisations offered by an approval that covered several, until one is picked.
    pending_tenants: so.Mapped[Optional[list]] = so.mapped_column(sa.JSON)
    # Fernet ciphertext of the whole token set (access, refresh, expiry).
    token_ciphertext: so.Mapped[Optional[str]] = so.mapped_column(sa.Text)
    settings: so.Mapped[dict] = so.mapped_column(sa.JSON, default=dict)
    connected_at: so.Mapped[Optional[datetime]]
    connected_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("user.id"))
    # When the provider's last webhook event for this account arrived (the Setup page says so).
    last_event_at: so.Mapped[Optional[datetime]]
    # Changes made at the provider up to this time have been read back by the
    # catch-up job (the next one asks only for what changed since).
    caught_up_to: so.Mapped[Optional[datetime]]
    updated_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)

    connected_by: so.Mapped[Optional[User]] = so.relationship()

    __table_args__ = (sa.UniqueConstraint("firm_id", "provider", name="uq_connection_firm_provider"),)

    @hybrid_property
    def is_usable(self) -> bool:
        return self.state == "connected" and bool(self.tenant_id)

    @is_usable.inplace.expression
    @classmethod
    def _is_usable_in_sql(cls) -> sa.ColumnElement[bool]:
        return sa.and_(cls.state == "connected", sa.func.coalesce(cls.tenant_id, "") != "")


class ExternalLink(db.Model):
    """A PlanMan record's counterpart in one provider tenant.

    Keyed by tenant, so reconnecting the same organisation keeps its links and a
    different organisation starts with none."""

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    provider: so.Mapped[str] = so.mapped_column(sa.String(30))
    tenant_id: so.Mapped[str] = so.mapped_column(sa.String(64))
    record_type: so.Mapped[str] = so.mapped_column(sa.String(20))
    record_id: so.Mapped[int]
    external_id: so.Mapped[str] = so.mapped_column(sa.String(64))
    external_number: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    remote_status: so.Mapped[str] = so.mapped_column(sa.String(30), default="")
    # Hash of the payload last pushed (what the provider was sent, for the record).
    fingerprint: so.Mapped[str] = so.mapped_column(sa.String(64), default="")
    # The record's revision when it was pushed: a newer one => "changed since last sent".
    record_revision: so.Mapped[Optional[int]]
    linked_existing: so.Mapped[bool] = so.mapped_column(default=False)
    # The provider's id of each line, by PlanMan line id (invoices): sent back on
    # update so the provider keeps its lines (and what a bookkeeper added to them).
    line_ids: so.Mapped[Optional[dict]] = so.mapped_column(sa.JSON)
    # What the last push changed on a provider record PlanMan did not create (labels), shown in the panel.
    changed_fields: so.Mapped[Optional[list]] = so.mapped_column(sa.JSON)
    # The total the provider worked out at the last push (invoices): compared with PlanMan's in the panel.
    remote_total: so.Mapped[Optional[Decimal]] = so.mapped_column(sa.Numeric(24, 2))
    # When remote_status was last read from the provider (pushes and status checks).
    status_checked_at: so.Mapped[Optional[datetime]]
    # The record's name at the provider, as last read back (a contact renamed there).
    remote_name: so.Mapped[str] = so.mapped_column(sa.String(255), default="", server_default="")
    # The provider's own last-modified time of what was last read back: an older
    # read (events come in any order) never overwrites a newer one.
    remote_updated_at: so.Mapped[Optional[datetime]]
    pushed_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    pushed_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("user.id"))

    pushed_by: so.Mapped[Optional[User]] = so.relationship()

    __table_args__ = (
        sa.UniqueConstraint("provider", "tenant_id", "record_type", "record_id", name="uq_external_link_record"),
        sa.Index("ix_external_link_firm_record", "firm_id", "record_type", "record_id"),
    )


ACTIVE_PUSH_STATES = ("queued", "running", "retrying")
PUSH_STATES = ACTIVE_PUSH_STATES + ("succeeded", "failed")
_ACTIVE_PUSH_SQL = sa.text("state IN ('queued', 'running', 'retrying')")


class BulkPush(db.Model):
    """Many records pushed together; each keeps its own PushJob row."""

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    provider: so.Mapped[str] = so.mapped_column(sa.String(30))
    tenant_id: so.Mapped[str] = so.mapped_column(sa.String(64))
    record_type: so.Mapped[str] = so.mapped_column(sa.String(20))
    requested_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("user.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    finished_at: so.Mapped[Optional[datetime]]
    # When the latest pause (a daily limit) ends, or ended: kept after it, since the
    # time left is measured from the pace since then; while a later pause is under
    # way, since the end of the one before (resumed_at).
    paused_until: so.Mapped[Optional[datetime]]
    resumed_at: so.Mapped[Optional[datetime]]

    requested_by: so.Mapped[Optional[User]] = so.relationship()


class PushJob(db.Model):
    """One push of one record: who asked, its RQ job, where it stands, why it failed."""

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    provider: so.Mapped[str] = so.mapped_column(sa.String(30))
    tenant_id: so.Mapped[str] = so.mapped_column(sa.String(64))
    record_type: so.Mapped[str] = so.mapped_column(sa.String(20))
    record_id: so.Mapped[int]
    state: so.Mapped[str] = so.mapped_column(sa.String(20), default="queued")
    rq_job_id: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64))
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    outcome: so.Mapped[str] = so.mapped_column(sa.String(20), default="")
    error_message: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    error_fields: so.Mapped[Optional[dict]] = so.mapped_column(sa.JSON)
    next_attempt_at: so.Mapped[Optional[datetime]]
    bulk_push_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("bulk_push.id"), index=True)
    requested_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("user.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    started_at: so.Mapped[Optional[datetime]]
    finished_at: so.Mapped[Optional[datetime]]

    requested_by: so.Mapped[Optional[User]] = so.relationship()

    __table_args__ = (
        sa.Index("ix_push_job_record", "firm_id", "record_type", "record_id"),
        sa.Index("ix_push_job_firm_state", "firm_id", "state"),
        # The database itself guarantees one active push per record: a second
        # click joins the existing push instead of racing it.
        sa.Index(
            "uq_push_job_one_active",
            "provider", "tenant_id", "record_type", "record_id",
            unique=True,
            sqlite_where=_ACTIVE_PUSH_SQL,
            postgresql_where=_ACTIVE_PUSH_SQL,
        ),
    )

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_PUSH_STATES


# --- Payments ---------------------------------------------------------------

PAYMENT_METHODS = ("card", "direct_debit", "bank_transfer", "other")
# "reversed": a payment a user recorded and then took back (recorded in error,
# or the transfer bounced); providers report "refunded" and "disputed".
PAYMENT_STATES = ("pending", "succeeded", "failed", "refunded", "disputed", "charged_back", "reversed")


class Payment(db.Model):
    """Money received (or on its way) for one invoice. Only "succeeded" counts
    towards the invoice's amount paid. Rows are never deleted: a reversal or
    refund changes the state and says who and when."""

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    invoice_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("invoice.id"), index=True)
    amount: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(12, 2))
    currency: so.Mapped[str] = so.mapped_column(sa.String(3))
    paid_on: so.Mapped[date]
    method: so.Mapped[str] = so.mapped_column(sa.String(20))
    state: so.Mapped[str] = so.mapped_column(sa.String(20), default="succeeded")
    reference: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    note: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    # Where it came from: a user recorded it, or a provider reported it (once:
    # the provider's id is unique per provider).
    recorded_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("user.id"))
    provider: so.Mapped[Optional[str]] = so.mapped_column(sa.String(30))
    provider_payment_id: so.Mapped[Optional[str]] = so.mapped_column(sa.String(255))
    reversed_at: so.Mapped[Optional[datetime]]
    reversed_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("user.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)

    recorded_by: so.Mapped[Optional[User]] = so.relationship(foreign_keys=[recorded_by_id])
    reversed_by: so.Mapped[Optional[User]] = so.relationship(foreign_keys=[reversed_by_id])
    # Read along with the payment for the invoice page; planman.payments.ledger writes them.
    ledger_links: so.Mapped[list["PaymentLedgerLink"]] = so.relationship(viewonly=True,
                                                                       order_by="PaymentLedgerLink.id")

    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_payment_id", name="uq_payment_provider_payment"),
    )


class PaymentLink(db.Model):
    """The client payment page's link for one invoice. The token itself is an
    HMAC (SECRET_KEY) of the invoice id and this nonce, so the firm can be shown
    it again, while only its hash is stored for the lookup: the database alone
    opens no page. A new nonce replaces (revokes) the old link."""

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    invoice_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("invoice.id"), unique=True)
    nonce: so.Mapped[str] = so.mapped_column(sa.String(64))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    created_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("user.id"))


class OpenPaymentPage(db.Model):
    """A provider's hosted payment page opened for one invoice (a card checkout).
    It takes its amount from whoever holds it until it expires or is closed, so
    PlanMan closes it once the invoice no longer needs that much
    (planman.payments.pages): an invoice paid meanwhile is never paid twice."""

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    invoice_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("invoice.id"), index=True)
    provider: so.Mapped[str] = so.mapped_column(sa.String(30))
    tenant_id: so.Mapped[str] = so.mapped_column(sa.String(64))  # the account it was opened on
    reference: so.Mapped[str] = so.mapped_column(sa.String(255))  # the provider's id of the page
    amount: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(12, 2))
    currency: so.Mapped[str] = so.mapped_column(sa.String(3))  # the invoice's when the page was opened
    expires_at: so.Mapped[datetime]
    closed_at: so.Mapped[Optional[datetime]]
    attempts: so.Mapped[int] = so.mapped_column(default=0)  # closes tried and refused for now
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("provider", "reference", name="uq_open_payment_page_provider_reference"),
    )


LEDGER_LINK_STATES = ("queued", "recording", "recorded", "failed", "unsupported", "reversed")


class PaymentLedgerLink(db.Model):
    """A payment's counterpart in a connected ledger: written once per ledger tenant."""

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    firm_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    payment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("payment.id"), index=True)
    provider: so.Mapped[str] = so.mapped_column(sa.String(30))
    tenant_id: so.Mapped[str] = so.mapped_column(sa.String(64))
    external_id: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64))
    state: so.Mapped[str] = so.mapped_column(sa.String(20), default="queued")
    error: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("payment_id", "provider", "tenant_id", name="uq_payment_ledger_link_payment"),
    )


WEBHOOK_STATES = ("queued", "processed", "failed", "dropped", "waiting")


class WebhookEvent(db.Model):
    """One verified event a provider sent us, stored before it is processed.

    Stays "queued" until a worker finishes it; a worker claims it with a lease
    (``lease_until``), so one that dies mid-event leaves it to be claimed again."""

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    provider: so.Mapped[str] = so.mapped_column(sa.String(30))
    event_id: so.Mapped[str] = so.mapped_column(sa.String(255))
    event_type: so.Mapped[str] = so.mapped_column(sa.String(100), default="")
    # The provider account it is about ("" for events about no account).
    account: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    firm_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("firm.id"), index=True)
    payload: so.Mapped[str] = so.mapped_column(sa.Text)
    state: so.Mapped[str] = so.mapped_column(sa.String(20), default="queued")
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    error: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    lease_until: so.Mapped[Optional[datetime]]
    received_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    processed_at: so.Mapped[Optional[datetime]]

    __table_args__ = (
        sa.UniqueConstraint("provider", "event_id", name="uq_webhook_event_provider_event"),
        sa.Index("ix_webhook_event_state_lease", "state", "lease_until"),
    )
