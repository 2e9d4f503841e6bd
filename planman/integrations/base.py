"""What every provider offers the integration layer.

A provider (Xero now; FreshBooks, Sage, GoCardless, Stripe later) supplies its
OAuth client, an API client, mappers and exporters. Connections, links, push
jobs, panels and retries are shared and know nothing provider-specific."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Optional

from planman.integrations.errors import RecordLocked, ValidationFailed


@dataclass
class PushResult:
    """What one successful export tells the shared layer to record."""

    external_id: str
    outcome: str  # created | updated | linked
    fingerprint: str
    external_number: str = ""
    remote_status: str = ""
    notes: list[str] = field(default_factory=list)
    record_revision: Optional[int] = None  # the record's revision this result is for
    line_ids: Optional[dict[str, str]] = None  # the provider's id of each line, by PlanMan line id
    changed_fields: Optional[list[str]] = None  # what linking changed on a record PlanMan did not create
    remote_total: Optional[Decimal] = None  # the total the provider worked out (invoices)


@dataclass
class BatchReport:
    """What one batch export learnt beyond its results (for pacing bulk pushes)."""

    calls: int = 0
    day_remaining: Optional[int] = None  # the provider's daily allowance left, when it says


@dataclass
class Tenant:
    """An account an approval gave us access to (for Xero: an organisation)."""

    tenant_id: str
    name: str
    remote_connection_id: str = ""
    kind: str = ""


def push_intent(push) -> str:
    """What identifies one push a person asked for (a Send, Update, Retry click)."""
    return f"p{push.id}"


def bulk_intent(bulk) -> str:
    """What identifies one bulk send a person asked for."""
    return f"b{bulk.id}"
@dataclass
class WebhookEventData:
    """One event out of a verified webhook delivery, as the provider reads it."""

    event_id: str
    event_type: str
    account: str  # the provider account (tenant) it is about; "" for none
    payload: dict


class WebhookVerificationFailed(Exception):
    """A delivery that is not provably from the provider: refused before anything is stored."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class PaymentNotSupported(Exception):
    """This ledger provider cannot record payments (yet)."""



class Provider(ABC):
    key: str = ""
    label: str = ""
    summary: str = ""
    record_types: tuple[str, ...] = ("client", "invoice")
    # "ledger": takes pushes of clients and invoices, and records payments;
    # "payments": collects money for invoices (the client payment page offers it).
    kind: str = "ledger"

    # Webhooks (planman.integrations.webhooks) -----------------------------
    accepts_webhooks: bool = False
    webhook_max_bytes: int = 256 * 1024
    # Answer deliveries with an empty body (some providers require it).
    webhook_empty_answers: bool = False

    def verify_webhook(self, raw_body: bytes, headers) -> list[WebhookEventData]:
        """Check the delivery's signature on the raw body, then read its events;
        raise WebhookVerificationFailed before reading anything unverified."""
        raise WebhookVerificationFailed("This provider sends no webhooks.", status=404)

    def handle_webhook_event(self, event, connection) -> None:
        """Act on one stored event (``WebhookEvent``; ``connection`` is the firm's
        for its account, or None for events about no account). Called in a
        worker, in any order and possibly more than once: make it idempotent.
        Raise to have it retried."""
        raise NotImplementedError

    # Catching up with changes made at the provider (``flask reconcile-ledgers``) --
    catches_up: bool = False

    def catch_up(self, connection) -> str:
        """Read back what changed at the provider since ``connection.caught_up_to``
        (what webhooks would have said, had they arrived); return a summary.
        Called in a worker; raise to leave the watermark where it was."""
        raise NotImplementedError

    # Ledgers: payments received, recorded in the ledger ---------------------
    def record_payment(self, connection, invoice_link, payment) -> str:
        """Record ``payment`` against the invoice ``invoice_link`` names; return
        the ledger's payment id. Must look the payment up by our reference
        first, so a retry after a lost answer finds it instead of paying twice."""
        raise PaymentNotSupported()

    def reverse_payment(self, connection, invoice_link, payment, ledger_payment_id: str) -> None:
        """Reverse (or delete) the ledger's payment ``ledger_payment_id``."""
        raise PaymentNotSupported()

    # Payment providers: the client payment page ---------------------------------
    pay_button_label: str = ""  # e.g. "Pay by card"

    def start_payment(self, connection, invoice, amount, *, return_url: str, attempt: str = "") -> str:
        """Where to send the client to pay ``amount`` of ``invoice`` (a URL).
        ``attempt`` is the same for resubmissions of one payment page's form
        (use it in idempotency keys); raise IntegrationError when the provider
        cannot start the payment (its message is shown to the client)."""
        raise NotImplementedError

    # What the provider's page shows under the connection (settings, account state).
    settings_template: str = "integrations/_settings.html"

    def init_app(self, app) -> None:
        """Register OAuth clients and the like on a new app."""

    def is_configured(self, app) -> bool:
        return True

    # Connect flow (web process) ------------------------------------------
    @abstractmethod
    def authorize_redirect(self, redirect_uri: str):
        """A redirect response to the provider's consent page."""

    @abstractmethod
    def complete_authorization(self) -> tuple[dict, list[Tenant]]:
        """Exchange the callback's code; return the token and reachable tenants."""

    @abstractmethod
    def disconnect(self, connection) -> list[str]:
        """Tell the provider we are leaving; return problems worth showing."""

    # Worker side -----------------------------------------------------------
    @abstractmethod
    def load_tenant_details(self, connection) -> None:
        """Fetch what settings pickers and links need (names, codes, rates)."""

    @abstractmethod
    def export(self, connection, record_type: str, record, *, user_id: Optional[int], intent: str) -> PushResult:
        """Create or update the record's counterpart (dependencies first).

        ``intent`` names the push a person asked for (``push_intent``): derive
        idempotency keys from it, so retries of this push repeat its writes and
        a new push never replays an old answer."""

    def void(self, connection, record_type: str, link, *, intent: str) -> PushResult:
        """Void (or delete, if never approved) the record ``link`` points at, because
        PlanMan voided it. Refuse with ``RecordLocked`` when the provider cannot."""
        raise RecordLocked(f"{self.label} records cannot be voided from PlanMan: void it in {self.label}.", "")

    def fetch_remote_status(self, connection, record_type: str, external_id: str) -> Optional[str]:
        """The record's current status at the provider, for kinds that have one."""
        return None

    batch_size: int = 1

    def export_batch(self, connection, record_type: str, records: list, *, on_results, intent: str) -> BatchReport:
        """Export many records, reporting ``{record_id: PushResult | error}`` through
        ``on_results`` as results arrive. Per-record refusals are results; trouble
        with the whole call (rate limits, outages) is raised. Providers without
        batch endpoints get this one-call-per-record default."""
        for record in records:
            try:
                result = self.export(connection, record_type, record, user_id=None, intent=intent)
            except (ValidationFailed, RecordLocked) as error:
                on_results({record.id: error})
                continue
            on_results({record.id: result})
        return BatchReport()

    # Presentation ------------------------------------------------------------
    def view_url(self, connection, record_type: str, external_id: str) -> Optional[str]:
        return None

    def remote_status_label(self, record_type: str, remote_status: str) -> str:
        return remote_status.title()

    def is_locked(self, record_type: str, remote_status: str) -> bool:
        return False

    def is_gone(self, record_type: str, remote_status: str) -> bool:
        return False

    def is_closed(self, record_type: str, remote_status: str) -> bool:
        """Deleted or voided at the provider: nothing there is live any more."""
        return self.is_gone(record_type, remote_status)

    def closed_message(self, record_type: str, remote_status: str) -> str:
        return f"Void in PlanMan and closed in {self.label}."

    def locked_message(self, record_type: str, remote_status: str) -> str:
        return ""

    def remote_notice(self, record_type: str, remote_status: str) -> str:
        """What a person should know (and do) about a record in this remote state,
        when it can still be updated but is not in use there (an archived contact)."""
        return ""

    def settings_problems(self, connection) -> list[str]:
        return []

    def record_warnings(self, connection, record_type: str, record) -> list[str]:
        """What the provider would refuse about this record, said before sending."""
        return []
