"""What every provider offers the integration layer, and what it declares.

A provider (a package ``planman/integrations/<key>/`` registered in
``registry.py``) supplies its OAuth client, an API client, mappers and
exporters, and *declares* everything it differs in: its name and connect
button, the word for the account a firm connects to, its settings form, what
it loads after connecting, its rate limits and batch size, its words for
remote statuses, which remote states are locked, gone or closed, and how links
to its site are built. Connections, links, push jobs, panels, retries, bulk
sends and every message a person reads are shared: they ask the provider
(``provider.label``, ``provider.tenant_word``, ``provider.rate_limits(...)``)
and never name one. ``tests/test_provider_neutral.py`` greps the shared files
for every registered provider's key and name and fails on a hit.

Writing a push provider (a ledger that takes clients and invoices)
-----------------------------------------------------------------------
Subclass ``Provider`` and set, at least:

* ``key`` ("acme"), ``label`` ("Acme Books"), ``summary``; ``connect_label`` /
  ``reconnect_label`` if the provider's own wording differs from the default
  "Connect to <label>"; ``tenant_word`` / ``tenant_words`` ("organisation",
  "business"); ``revoke_hint`` (where a person removes PlanMan's access on the
  provider's site); ``details_noun`` (what ``load_tenant_details`` loads).
* The connect flow: ``authorize_redirect`` and ``complete_authorization``
  (return the token and every ``Tenant`` the approval reaches; more than one
  and the shared tenant picker asks the admin which); ``disconnect``.
* Settings: ``settings_form`` and ``save_settings`` (the shared card shows each
  field of the form; for a layout of its own, a ``settings_template`` extends
  ``integrations/_settings.html`` and fills its ``fields`` block),
  ``initial_settings``, ``default_choices``, ``tenant_detail_keys`` and
  ``choice_keys`` (which keys of ``Connection.settings`` are the tenant's
  loaded lists, and which are the admin's choices kept across a reconnect of
  the same tenant); ``settings_problems`` (why invoices cannot be sent yet).
* Calls: ``rate_limits(config)`` (build the call budget with
  ``throttle.for_connection(provider, connection)``), ``batch_size`` and
  ``export_batch`` when the API has batch endpoints, ``load_tenant_details``,
  ``export``, ``void``, ``fetch_remote_status``.
* Words: ``remote_status_label``, ``is_locked`` / ``is_gone`` / ``is_closed``
  and their messages, ``remote_notice``, ``view_url``.
* Tokens whose refresh token dies unused: ``refresh_token_lifetime`` and
  ``renew_tokens`` (the keep-alive job, ``planman/integrations/keepalive.py``).
* Errors: raise the classes of ``errors.py`` with ``provider=self.label`` so
  their default messages carry the provider's name ("Acme Books asked us to
  slow down..."); refresh tokens through ``tokens.TokenManager`` (serialised per
  connection under a Redis lock, the rotated pair committed before use).
* Configuration: ``planman/integrations/<key>/config.py`` (standard library
  only: ``config.py`` reads it before the app exists) defines
  ``settings(environ) -> dict`` and ``TEST_SETTINGS``; its keys become
  ``app.config`` keys (the provider's env names, e.g. ``ACME_MAX_IN_FLIGHT``).

* Register it in ``registry.py``; add its ``PushDriver`` to
  ``tests/contract/drivers.py`` so the contract suite runs against its stand-in.

Templates that belong to one provider live under
``templates/integrations/<key>/``; shared templates use ``provider.*`` only.
Methods below without a body of their own have a default that suits a
provider without that feature; ``abstractmethod`` ones must be written.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Optional

from planman.integrations.errors import AnswerWithoutId, RecordLocked, ValidationFailed


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

    def __post_init__(self):
        # Checked here, where every exporter's answer passes: a write the provider
        # did not name would read "Sent" with nothing to link or update.
        if not self.external_id:
            raise AnswerWithoutId()


@dataclass
class BatchReport:
    """What one batch export learnt beyond its results (for pacing bulk pushes)."""

    calls: int = 0
    day_remaining: Optional[int] = None  # the provider's daily allowance left, when it says


@dataclass
class Tenant:
    """An account an approval gave us access to (what ``Provider.tenant_word`` names:
    an organisation, a business). ``tenant_id`` keys links and settings, so
    reconnecting the same tenant finds them again; ``name`` is what the admin
    sees in the tenant picker and on every page; ``remote_connection_id`` is the
    provider's id for the grant, when it has one (kept for ``disconnect``)."""

    tenant_id: str
    name: str
    remote_connection_id: str = ""
    kind: str = ""


@dataclass(frozen=True)
class PaymentStart:
    """Where ``Provider.start_payment`` sends the client. When it opened a page at
    the provider that holds an amount until it expires (a card checkout), it
    names it too (``page_reference``, ``page_amount``, ``page_expires_at`` as a
    Unix time), and the page is closed with ``close_payment_page`` once the
    invoice no longer needs that much."""

    url: str
    page_reference: str = ""
    page_amount: Optional[Decimal] = None
    page_expires_at: Optional[int] = None


@dataclass(frozen=True)
class RateLimits:
    """A provider's call budget per tenant, enforced by ``throttle.TenantThrottle``
    across every worker (Redis): at most ``in_flight`` calls at once and
    ``per_minute`` in any sliding 60 seconds; ``app_per_minute`` is the
    provider's limit for the whole application across all tenants (None: no
    such limit). ``per_day`` is the provider's
    daily allowance where it publishes one (None: unpublished), for estimates;
    bulk sends also pause when the provider's own answer says the day's
    allowance is nearly used (``BatchReport.day_remaining``)."""

    in_flight: int
    per_minute: int
    per_day: Optional[int] = None
    lease_seconds: float = 30.0  # how long an in-flight slot lives if its worker dies
    app_per_minute: Optional[int] = None


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
    # -- who it is (shared pages and messages are built from these) -------------
    key: str = ""  # URL and database key, and its package's name: "acme"
    label: str = ""  # its name as people write it: "Acme Books"
    summary: str = ""  # one line on Setup > Integrations
    # The account a firm connects to, in the provider's word, and its plural.
    tenant_word: str = "account"
    tenant_words: str = "accounts"
    # What load_tenant_details loads, for "Loading…" and "could not be loaded".
    details_noun: str = "details"
    # Where a person removes PlanMan's access on the provider's site, when
    # PlanMan could not revoke it itself ("Settings > Connected apps in Acme Books").
    revoke_hint: str = ""
    # Whether it takes e-mail addresses with accented letters (the client form
    # refuses them, naming each configured provider that does not).
    accepts_accented_emails: bool = True

    @property
    def connect_label(self) -> str:
        """The connect button's exact words; a provider whose help pages spell it
        otherwise sets a class attribute ("Connect To Acme Books")."""
        return f"Connect to {self.label}"

    @property
    def reconnect_label(self) -> str:
        return f"Reconnect to {self.label}"

    @property
    def connect_hint(self) -> str:
        """What happens when the connect button is pressed (above the button)."""
        return (f"You will be taken to a secure page on the {self.label} website. Log in, choose the "
                f"{self.tenant_word} this firm uses and allow access; you will then come back here.")

    record_types: tuple[str, ...] = ("client", "invoice")
    # Whether each PlanMan tax rate is mapped to one of the ledger's on its settings
    # page (so a total that differs there names the mapping as the likely cause).
    maps_tax_rates: bool = False
    # "ledger": takes pushes of clients and invoices, and records payments;
    # "payments": collects money for invoices (the client payment page offers it).
    kind: str = "ledger"

    # Webhooks (planman.integrations.webhooks) -----------------------------
    accepts_webhooks: bool = False
    webhook_max_bytes: int = 256 * 1024
    # Answer deliveries with an empty body (some providers require it).
    webhook_empty_answers: bool = False
    # Event types (prefixes of ``WebhookEventData.event_type``) about the
    # account itself, its details or its end, not about records: one that
    # arrives while the account is not connected, or before its connection
    # was made, is about an earlier connection and has nothing left to do.
    account_event_types: tuple[str, ...] = ()

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

    def takes_payments(self, connection) -> bool:
        """Whether the client payment page may offer this provider now; False while the
        provider would refuse (the firm's account there is not set up to take payments yet)."""
        return True

    def collections_under_way(self, invoice) -> list[tuple[str, Decimal]]:
        """``(provider payment id, amount)`` of each collection the provider has
        started for the invoice and not finished (the id "" until known): the
        payment page counts them, with pending payments, as already on their way."""
        return []

    def can_collect(self, invoice, amount) -> bool:
        """Whether the provider can collect ``amount`` of the invoice in its currency
        now (the payment page offers it only then)."""
        return True

    def record_section(self, connection, record_type: str, record):
        """What a connected payment provider adds to a client's or invoice's page:
        ``(template, context)``, or None for nothing."""
        return None

    def start_payment(self, connection, invoice, amount, *, return_url: str, attempt: str = "",
                      shown_at: Optional[int] = None) -> PaymentStart:
        """Where to send the client to pay ``amount`` of ``invoice``, and the page
        it opened at the provider, if any (``PaymentStart``). ``attempt`` is the
        same for resubmissions of one payment page's form (use it in idempotency
        keys), ``shown_at`` when that page was shown (a Unix time, None if
        unknown); raise IntegrationError when the provider cannot start the
        payment (its message is shown to the client)."""
        raise NotImplementedError

    def close_payment_page(self, connection, page_reference: str, tenant_id: str) -> None:
        """Make a page ``start_payment`` named, on tenant ``tenant_id`` (the
        connection's then), take no money: done too when it is finished or
        expired already. Raise TemporaryFailure to be tried again. Called only
        for providers whose ``start_payment`` names pages."""
        raise NotImplementedError

    # -- settings (Setup > Integrations > <provider>) ---------------------------
    # What the provider's page shows under the connection: the shared card
    # (loading, errors, Refresh, each field of settings_form), or a template that
    # extends "integrations/_settings.html" and fills its `fields` block.
    settings_template: str = "integrations/_settings.html"
    # Keys of Connection.settings: what load_tenant_details stores about the
    # tenant (dropped when another tenant is attached), and what the admin chose
    # (kept when the same tenant is connected again).
    tenant_detail_keys: tuple[str, ...] = ()
    choice_keys: tuple[str, ...] = ()

    def settings_ready(self, connection) -> bool:
        """Whether the loaded lists are there to build the settings form from."""
        return True

    def settings_form(self, connection, tax_rates: list, **kwargs):
        """The admin's settings form (a FlaskForm, choices from what the provider
        returned; a value outside them gets a message beside its field), or None
        for a provider without settings. ``tax_rates`` are the firm's PlanMan rates."""
        return None

    def save_settings(self, connection, form) -> None:
        """Store a validated ``settings_form`` into ``connection.settings`` (and commit)."""

    def initial_settings(self) -> dict:
        """Choices every new connection starts with (before the tenant's lists load)."""
        return {}

    def default_choices(self, settings: dict, tax_rates: list) -> dict:
        """Fill in, after loading, the choices not made yet (or no longer valid)
        from the tenant's lists; return ``settings``."""
        return settings

    # -- tokens that die unused (``flask keep-connections-alive``) ---------------------
    def refresh_token_lifetime(self, config) -> Optional[float]:
        """Seconds an unused refresh token lives when the token answer does not say
        (``refresh_token_expires_in``), or None: it lives until revoked. A provider
        that returns a number here is refreshed by the keep-alive job before half
        of that has passed, so a firm that sends nothing for weeks stays connected."""
        return None

    def renew_tokens(self, connection, *, refused_reason: Optional[Callable[[], str]] = None) -> None:
        """Refresh the connection's tokens now, under the shared lock
        (``TokenManager(connection, refresh).renew(refused_reason=...)``); raise
        ``NeedsReconnect`` when the provider refuses. Needed when
        ``refresh_token_lifetime`` is set."""
        raise NotImplementedError

    # -- calls ------------------------------------------------------------------------
    def rate_limits(self, config) -> RateLimits:
        """The per-tenant call budget (read from the provider's own settings in ``config``)."""
        return RateLimits(in_flight=1, per_minute=30)

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

    def release_tenants(self, connection, tenants: list[Tenant]) -> list[str]:
        """Give up the access an approval gave to ``tenants``, the ones the
        admin did not choose (where the provider grants per tenant); return
        problems worth showing."""
        return []

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

    # Records per export_batch call (bulk sends); 1 for APIs without batch endpoints.
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
    # ``remote_status`` is the provider's own status value as stored on the link
    # (``PushResult.remote_status``, ``fetch_remote_status``); these say what it means.
    def view_url(self, connection, record_type: str, external_id: str) -> Optional[str]:
        """The record's page on the provider's site ("View in <label>"), or None."""
        return None

    def remote_status_label(self, record_type: str, remote_status: str) -> str:
        """The provider's word for the status, as its users know it ("Awaiting payment")."""
        return remote_status.title()

    def is_locked(self, record_type: str, remote_status: str) -> bool:
        """Changed at the provider beyond what PlanMan may overwrite: no Update offered."""
        return False

    def is_gone(self, record_type: str, remote_status: str) -> bool:
        """Deleted at the provider: "Send again" is offered."""
        return False

    def is_closed(self, record_type: str, remote_status: str) -> bool:
        """Deleted or voided at the provider: nothing there is live any more."""
        return self.is_gone(record_type, remote_status)

    def closed_message(self, record_type: str, remote_status: str) -> str:
        return f"Void in PlanMan and closed in {self.label}."

    def gone_message(self, record_type: str, remote_status: str) -> str:
        """What the panel says of a record deleted at the provider (Send again is offered)."""
        noun = "invoice" if record_type == "invoice" else "client"
        return f"This {noun} was deleted in {self.label}. You can send it again as a new draft." \
            if record_type == "invoice" else f"This {noun} was deleted in {self.label}. You can send it again."

    def locked_message(self, record_type: str, remote_status: str) -> str:
        return ""

    def confirm_update(self, record_type: str, remote_status: str) -> str:
        """The question a person must answer before an Update changes a record in
        this remote state (an invoice the customer may have seen), or "" for none.
        The panel asks it and sends the status it asked about with the click."""
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
