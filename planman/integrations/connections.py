"""Connecting a firm to a provider account (for Xero: one organisation).

Service functions, no request handling: the views in ``connect_views`` turn
requests into these calls and their ``ConnectFailed`` into flash messages.

Life of a connection::

    (none) --complete, one org--> connected --disconnect--> disconnected
    (none) --complete, several--> choosing --choose--> connected
    connected --invalid_grant / 403 for the tenant--> needs_reconnect --complete--> connected

Tokens only ever live encrypted in ``Connection.token_ciphertext``. Links
between PlanMan and provider records are keyed by tenant (``ExternalLink``),
so reconnecting the same organisation finds them again and a different one
starts with none. Settings remember which tenant they were chosen for, so the
same organisation keeps its account and tax mappings and another one starts
from fresh suggestions.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal
from typing import Optional

import click
import sqlalchemy as sa
from flask import Flask, current_app

from planman.extensions import db
from planman.integrations import links, registry
from planman.integrations.base import Provider, Tenant
from planman.integrations.crypto import reencrypt
from planman.integrations.errors import IntegrationError, RateLimited
from planman.integrations.throttle import Throttled
from planman.integrations.tokens import load_token, store_token
from planman.models import Connection, TaxRate, User, utcnow

log = logging.getLogger(__name__)

REFRESH_JOB = "planman.jobs.refresh_tenant_details"

# Status new invoices are pushed with (Xero's values, PlanMan's words).
INVOICE_STATUS_CHOICES = [
    ("DRAFT", "Draft"),
    ("SUBMITTED", "Awaiting approval"),
    ("AUTHORISED", "Awaiting payment"),
]
DEFAULT_INVOICE_STATUS = "DRAFT"
DEFAULT_SALES_ACCOUNT = "200"
DEFAULT_NO_TAX_TYPE = "NONE"

# What a connection learns about its tenant (refresh_tenant_details); dropped
# when another tenant is attached.
TENANT_DETAIL_KEYS = ("xero_accounts", "xero_tax_rates", "base_currency", "currencies", "details_loaded_at")
# What an admin chose for a tenant; kept when the same tenant is reconnected.
CHOICE_KEYS = ("sales_account_code", "tax_types", "no_tax_type", "invoice_status")


class ConnectFailed(Exception):
    """Connecting did not happen; ``user_message`` says why in plain words."""

    def __init__(self, user_message: str):
        self.user_message = user_message
        super().__init__(user_message)


# -- lookups ------------------------------------------------------------------

def connection_for(firm_id: int, provider_key: str) -> Optional[Connection]:
    return links.connection_for(firm_id, provider_key)


def _get_or_create(firm_id: int, provider_key: str) -> Connection:
    connection = links.connection_for(firm_id, provider_key)
    if connection is None:
        connection = Connection(firm_id=firm_id, provider=provider_key, state="disconnected", settings={})
        db.session.add(connection)
    return connection


def details_state(connection: Optional[Connection]) -> str:
    """loading | loaded | error: where the tenant's accounts and tax rates stand."""
    if connection is None:
        return "loading"
    settings = connection.settings or {}
    return settings.get("details_state") or ("loaded" if settings.get("details_loaded_at") else "loading")


# -- the connect flow -------------------------------------------------------------

def start(provider: Provider, redirect_uri: str):
    """The redirect to the provider's consent page (Authlib keeps state and PKCE verifier)."""
    return provider.authorize_redirect(redirect_uri)


def complete(provider: Provider, firm_id: int, user: User, token: dict, tenants: list[Tenant]) -> Connection:
    """Store what an approval gave us: one organisation attaches at once,
    several wait in state "choosing" until an admin picks one."""
    if not tenants:
        raise ConnectFailed(
            f"You did not give PlanMan access to any {provider.label} organisation, so nothing was connected. "
            f"Click {provider.connect_label} and tick the organisation this firm uses."
        )
    connection = _get_or_create(firm_id, provider.key)
    if len(tenants) == 1:
        attach(connection, tenants[0], token, user)
        return connection
    connection.state = "choosing"
    connection.state_reason = ""
    connection.pending_tenants = [asdict(tenant) for tenant in tenants]
    connection.tenant_id = None
    connection.remote_connection_id = None
    connection.tenant_name = ""
    connection.tenant_short_code = ""
    connection.connected_at = None
    connection.connected_by_id = user.id
    store_token(connection, token)
    db.session.commit()
    log.info("connection %s (%s) for firm %s: %d organisations to choose from",
             connection.id, provider.key, firm_id, len(tenants))
    return connection


def pending_tenants(connection: Optional[Connection]) -> list[Tenant]:
    if connection is None or connection.state != "choosing":
        return []
    return [Tenant(**tenant) for tenant in connection.pending_tenants or []]


def choose(connection: Connection, tenant_id: str, user: User) -> Connection:
    """Attach the organisation an admin picked from the ones an approval covered."""
    if connection.state != "choosing":
        raise ConnectFailed("There is no organisation to choose any more. Click Connect To Xero to start again.")
    tenant = next((t for t in pending_tenants(connection) if t.tenant_id == tenant_id), None)
    if tenant is None:
        raise ConnectFailed("Choose one of the organisations you gave PlanMan access to.")
    token = load_token(connection)
    if not token:
        raise ConnectFailed("PlanMan no longer holds the access you approved. Click Connect To Xero to start again.")
    attach(connection, tenant, token, user)
    return connection


def attach(connection: Connection, tenant: Tenant, token: dict, user: User) -> None:
    """Make ``tenant`` the connection's organisation and start loading its details."""
    settings = dict(connection.settings or {})
    same_tenant = settings.get("tenant_id") == tenant.tenant_id
    if not same_tenant:
        # Another organisation: its accounts and tax types are not ours to reuse.
        for key in TENANT_DETAIL_KEYS + CHOICE_KEYS:
            settings.pop(key, None)
        connection.tenant_short_code = ""
    settings["tenant_id"] = tenant.tenant_id
    settings.setdefault("invoice_status", DEFAULT_INVOICE_STATUS)
    settings["details_state"] = "loading"
    settings.pop("details_error", None)

    connection.state = "connected"
    connection.state_reason = ""
    connection.tenant_id = tenant.tenant_id
    connection.tenant_name = tenant.name or connection.tenant_name
    connection.remote_connection_id = tenant.remote_connection_id or None
    connection.pending_tenants = None
    connection.settings = settings
    connection.connected_at = utcnow()
    connection.connected_by_id = user.id
    store_token(connection, token)
    db.session.commit()
    log.info("connection %s (%s) for firm %s attached to tenant %s", connection.id, connection.provider,
             connection.firm_id, tenant.tenant_id)
    enqueue_refresh(connection)


def enqueue_refresh(connection: Connection) -> None:
    """Load the organisation's details in a worker (the web process never calls the accounting API)."""
    settings = dict(connection.settings or {})
    settings["details_state"] = "loading"
    settings.pop("details_error", None)
    connection.settings = settings
    db.session.commit()
    try:
        current_app.push_queue.enqueue(REFRESH_JOB, connection.id, job_timeout=180, result_ttl=600,
                                       failure_ttl=86400)
    except Exception as error:  # Redis down: say so on the page instead of polling for ever
        log.error("could not enqueue refresh of connection %s: %s", connection.id, type(error).__name__)
        _details_failed(connection, "PlanMan could not start loading from Xero. Click Refresh from Xero to try again.")


def _details_failed(connection: Connection, message: str) -> None:
    settings = dict(connection.settings or {})
    settings["details_state"] = "error"
    settings["details_error"] = message
    connection.settings = settings
    db.session.commit()


# -- worker side --------------------------------------------------------------

def refresh_tenant_details(connection_id: int) -> str:
    """RQ job body: fetch organisation, accounts and tax rates; fill in default choices.

    Returns "loaded", "failed", "rescheduled" (Xero's rate limit: the job runs
    again later, the page keeps saying "Loading") or "skipped" (connection gone
    or not connected)."""
    connection = db.session.get(Connection, connection_id)
    if connection is None or not connection.is_usable:
        return "skipped"
    provider = registry.get_provider(connection.provider)
    if provider is None:
        return "skipped"
    try:
        provider.load_tenant_details(connection)
    except Throttled as wait:
        db.session.rollback()
        return _reschedule_refresh(connection_id, wait.wait)
    except RateLimited as error:
        db.session.rollback()
        return _reschedule_refresh(connection_id, error.retry_after)
    except IntegrationError as error:
        # NeedsReconnect has already marked the connection; keep its state.
        db.session.rollback()
        log.warning("refresh of connection %s failed: %s %s", connection_id, type(error).__name__,
                    error.detail or error.user_message)
        connection = db.session.get(Connection, connection_id)
        _details_failed(connection, error.user_message)
        return "failed"
    except Exception:
        db.session.rollback()
        log.exception("refresh of connection %s failed unexpectedly", connection_id)
        connection = db.session.get(Connection, connection_id)
        _details_failed(connection, "Something unexpected went wrong while loading from Xero. "
                                    "Click Refresh from Xero to try again.")
        return "failed"
    settings = dict(connection.settings or {})
    apply_default_choices(settings, firm_tax_rates(connection.firm_id))
    settings["details_state"] = "loaded"
    settings["details_loaded_at"] = utcnow().isoformat(timespec="seconds")
    settings.pop("details_error", None)
    connection.settings = settings
    db.session.commit()
    log.info("loaded tenant details for connection %s: %d accounts, %d tax rates", connection_id,
             len(settings.get("xero_accounts") or []), len(settings.get("xero_tax_rates") or []))
    return "loaded"


def _reschedule_refresh(connection_id: int, delay: float) -> str:
    """Run the job again once the per-organisation budget allows (never sleep in a worker)."""
    current_app.push_queue.enqueue_in(timedelta(seconds=max(1, math.ceil(delay))), REFRESH_JOB, connection_id,
                                      job_timeout=180, result_ttl=600, failure_ttl=86400)
    log.info("refresh of connection %s rescheduled in %.1fs (rate limit)", connection_id, delay)
    return "rescheduled"


def firm_tax_rates(firm_id: int) -> list[TaxRate]:
    return list(db.session.scalars(sa.select(TaxRate).where(TaxRate.firm_id == firm_id).order_by(TaxRate.name)))


def apply_default_choices(settings: dict, tax_rates: list[TaxRate]) -> dict:
    """Fill in choices not made yet (or no longer valid) from what Xero returned."""
    from planman.integrations.xero.provider import suggest_tax_type

    account_codes = {a["code"] for a in settings.get("xero_accounts") or []}
    xero_rates = settings.get("xero_tax_rates") or []
    tax_types = {r["type"] for r in xero_rates}

    if settings.get("sales_account_code") not in account_codes:
        if DEFAULT_SALES_ACCOUNT in account_codes:
            settings["sales_account_code"] = DEFAULT_SALES_ACCOUNT
        else:
            settings.pop("sales_account_code", None)

    chosen = dict(settings.get("tax_types") or {})
    for rate in tax_rates:
        key = str(rate.id)
        if chosen.get(key) not in tax_types:
            suggestion = suggest_tax_type(Decimal(rate.percent), xero_rates)
            if suggestion:
                chosen[key] = suggestion
            else:
                chosen.pop(key, None)
    settings["tax_types"] = chosen

    if settings.get("no_tax_type") not in tax_types:
        if DEFAULT_NO_TAX_TYPE in tax_types:
            settings["no_tax_type"] = DEFAULT_NO_TAX_TYPE
        else:
            settings.pop("no_tax_type", None)
    if settings.get("invoice_status") not in dict(INVOICE_STATUS_CHOICES):
        settings["invoice_status"] = DEFAULT_INVOICE_STATUS
    payment_codes = {a["code"] for a in settings.get("xero_payment_accounts") or []}
    if settings.get("payment_account_code") and settings["payment_account_code"] not in payment_codes:
        settings.pop("payment_account_code")  # gone from Xero: the admin chooses again (never a guess)
    return settings


# -- settings --------------------------------------------------------------------

def save_settings(connection: Connection, *, sales_account_code: str, tax_types: dict[str, str],
                  no_tax_type: str, invoice_status: str, payment_account_code: str = "") -> None:
    """Store an admin's choices (already validated against Xero's lists by the form)."""
    settings = dict(connection.settings or {})
    allowed_accounts = {a["code"] for a in settings.get("xero_accounts") or []}
    allowed_types = {r["type"] for r in settings.get("xero_tax_rates") or []}
    if sales_account_code not in allowed_accounts or no_tax_type not in allowed_types \
            or invoice_status not in dict(INVOICE_STATUS_CHOICES) \
            or any(value not in allowed_types for value in tax_types.values()) \
            or payment_account_code not in {"", *(a["code"] for a in settings.get("xero_payment_accounts") or [])}:
        raise ValueError("settings must come from the lists Xero returned")
    settings.update(
        sales_account_code=sales_account_code,
        tax_types={str(key): value for key, value in tax_types.items()},
        no_tax_type=no_tax_type,
        invoice_status=invoice_status,
        payment_account_code=payment_account_code,
    )
    connection.settings = settings
    db.session.commit()


# -- disconnect -------------------------------------------------------------------

def disconnect(provider: Provider, connection: Connection) -> list[str]:
    """Tell the provider we are leaving, then forget the tokens. Returns problems worth showing.

    Links and settings stay: they belong to the tenant and come back if the same
    organisation is connected again."""
    problems: list[str] = []
    if connection.token_ciphertext:
        try:
            problems = provider.disconnect(connection)
        except Exception:  # never keep tokens because the goodbye failed
            log.exception("provider disconnect failed for connection %s", connection.id)
            problems = [f"PlanMan could not tell {provider.label} it was leaving; remove PlanMan under "
                        f"Settings > Connected apps in {provider.label} to be sure."]
    connection.token_ciphertext = None
    connection.tenant_id = None
    connection.remote_connection_id = None
    connection.pending_tenants = None
    connection.tenant_name = ""
    connection.tenant_short_code = ""
    connection.state = "disconnected"
    connection.state_reason = ""
    connection.connected_at = None
    connection.connected_by_id = None
    db.session.commit()
    log.info("connection %s (%s) for firm %s disconnected", connection.id, connection.provider, connection.firm_id)
    return problems


# -- encryption key rotation --------------------------------------------------------

def rotate_token_keys() -> tuple[int, list[int]]:
    """Re-encrypt every stored token set with the first TOKEN_ENCRYPTION_KEY.

    Returns (rows re-encrypted, ids of rows no configured key can decrypt)."""
    done, unreadable = 0, []
    for connection in db.session.scalars(sa.select(Connection).where(Connection.token_ciphertext.is_not(None))):
        try:
            connection.token_ciphertext = reencrypt(connection.token_ciphertext)
            done += 1
        except Exception:
            unreadable.append(connection.id)
    db.session.commit()
    return done, unreadable


def register_cli(app: Flask) -> None:
    """Add ``flask rotate-token-key`` to ``app``."""

    @app.cli.command("rotate-token-key")
    def rotate_token_key_command():
        """Re-encrypt stored provider tokens with the first key of TOKEN_ENCRYPTION_KEY."""
        done, unreadable = rotate_token_keys()
        click.echo(f"Re-encrypted the tokens of {done} connection(s) with the first key.")
        if unreadable:
            click.echo(f"Could not decrypt connection(s) {', '.join(map(str, unreadable))} with any configured "
                       f"key; they will need reconnecting.", err=True)
            raise SystemExit(1)
