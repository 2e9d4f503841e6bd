"""Connecting a firm to a provider account (its ``tenant_word``: an organisation, a business).

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
from typing import Optional

import click
import sqlalchemy as sa
from flask import Flask, current_app

from planman.extensions import db
from planman.integrations import links, registry, webhooks
from planman.integrations.base import Provider, Tenant
from planman.integrations.crypto import reencrypt
from planman.integrations.errors import IntegrationError, RateLimited
from planman.integrations.throttle import Throttled
from planman.integrations.tokens import load_token, store_token
from planman.models import Connection, TaxRate, User, utcnow

log = logging.getLogger(__name__)

REFRESH_JOB = "planman.jobs.refresh_tenant_details"

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
    """Store what an approval gave us: one tenant attaches at once, several
    wait in state "choosing" until an admin picks one."""
    if not tenants:
        raise ConnectFailed(
            f"You did not give PlanMan access to any {provider.label} {provider.tenant_word}, so nothing was "
            f"connected. Click {provider.connect_label} and tick the {provider.tenant_word} this firm uses."
        )
    connection = _get_or_create(firm_id, provider.key)
    if connection.is_usable:
        # Someone connected the firm while this admin was at the provider: their
        # connection and tokens stay. (This approval's token is not revoked: for
        # some providers that would end the other connection too.)
        raise ConnectFailed(
            f"This firm was connected to {connection.tenant_name or provider.label} while you were signing in "
            f"to {provider.label}, so nothing was changed. Disconnect first to connect another "
            f"{provider.tenant_word}."
        )
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
    log.info("connection %s (%s) for firm %s: %d tenants to choose from",
             connection.id, provider.key, firm_id, len(tenants))
    return connection


def pending_tenants(connection: Optional[Connection]) -> list[Tenant]:
    if connection is None or connection.state != "choosing":
        return []
    return [Tenant(**tenant) for tenant in connection.pending_tenants or []]


def choose(provider: Provider, connection: Connection, tenant_id: str, user: User) -> list[str]:
    """Attach the tenant an admin picked from the ones an approval covered and
    give up the others. Returns problems worth showing."""
    if connection.state != "choosing":
        raise ConnectFailed(f"There is no {provider.tenant_word} to choose any more. "
                            f"Click {provider.connect_label} to start again.")
    tenant = next((t for t in pending_tenants(connection) if t.tenant_id == tenant_id), None)
    if tenant is None:
        raise ConnectFailed(f"Choose one of the {provider.tenant_words} you gave PlanMan access to.")
    token = load_token(connection)
    if not token:
        raise ConnectFailed(f"PlanMan no longer holds the access you approved. "
                            f"Click {provider.connect_label} to start again.")
    others = [t for t in pending_tenants(connection) if t.tenant_id != tenant_id]
    attach(connection, tenant, token, user)
    try:
        return provider.release_tenants(connection, others)
    except Exception:  # the chosen one is attached; the rest is housekeeping at the provider
        log.exception("releasing unchosen tenants failed for connection %s", connection.id)
        return [f"PlanMan could not give up its access to the {provider.tenant_words} you did not choose; "
                f"remove PlanMan under {provider.revoke_hint or f'the {provider.label} website'} there."]


def attach(connection: Connection, tenant: Tenant, token: dict, user: User) -> None:
    """Make ``tenant`` the connection's tenant and start loading its details."""
    provider = registry.get_provider(connection.provider)
    if _held_by_another_firm(connection, tenant.tenant_id):
        # Its webhooks name only the tenant, so they could reach one of the firms
        # only; and two firms pushing to one ledger would make each other's contacts twice.
        raise ConnectFailed(f"{tenant.name or 'That ' + provider.tenant_word} is already connected to another "
                            f"firm in PlanMan, so nothing was changed. A {provider.label} {provider.tenant_word} "
                            f"can be connected to one PlanMan firm at a time.")
    settings = dict(connection.settings or {})
    same_tenant = settings.get("tenant_id") == tenant.tenant_id
    if not same_tenant:
        # Another tenant: its lists and the choices made from them are not ours to reuse.
        for key in provider.tenant_detail_keys + provider.choice_keys + ("details_loaded_at", "tenant_name"):
            settings.pop(key, None)
        connection.tenant_short_code = ""
    settings["tenant_id"] = tenant.tenant_id
    for key, value in provider.initial_settings().items():
        settings.setdefault(key, value)
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
    webhooks.release_waiting(connection.provider, tenant.tenant_id, connection.firm_id)  # held while not connected


def _held_by_another_firm(connection: Connection, tenant_id: str) -> bool:
    return db.session.scalar(sa.select(Connection.id).where(
        Connection.provider == connection.provider, Connection.tenant_id == tenant_id,
        Connection.firm_id != connection.firm_id, Connection.state.in_(("connected", "needs_reconnect")))
        .limit(1)) is not None


def enqueue_refresh(connection: Connection) -> None:
    """Load the tenant's details in a worker (the web process never calls the accounting API)."""
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
        label = _label(connection)
        _details_failed(connection, f"PlanMan could not start loading from {label}. "
                                    f"Click Refresh from {label} to try again.")


def _label(connection: Connection) -> str:
    provider = registry.get_provider(connection.provider)
    return provider.label if provider else connection.provider


def _details_failed(connection: Connection, message: str) -> None:
    settings = dict(connection.settings or {})
    settings["details_state"] = "error"
    settings["details_error"] = message
    connection.settings = settings
    db.session.commit()


# -- worker side --------------------------------------------------------------

def refresh_tenant_details(connection_id: int) -> str:
    """RQ job body: fetch the tenant's details (``provider.load_tenant_details``);
    fill in default choices (``provider.default_choices``).

    Returns "loaded", "failed", "rescheduled" (the provider's rate limit: the job runs
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
        _details_failed(connection, f"Something unexpected went wrong while loading from {provider.label}. "
                                    f"Click Refresh from {provider.label} to try again.")
        return "failed"
    settings = dict(connection.settings or {})
    provider.default_choices(settings, firm_tax_rates(connection.firm_id))
    settings["details_state"] = "loaded"
    settings["details_loaded_at"] = utcnow().isoformat(timespec="seconds")
    settings.pop("details_error", None)
    connection.settings = settings
    db.session.commit()
    log.info("loaded tenant details for connection %s (%s)", connection_id, connection.provider)
    return "loaded"


def _reschedule_refresh(connection_id: int, delay: float) -> str:
    """Run the job again once the per-tenant budget allows (never sleep in a worker)."""
    current_app.push_queue.enqueue_in(timedelta(seconds=max(1, math.ceil(delay))), REFRESH_JOB, connection_id,
                                      job_timeout=180, result_ttl=600, failure_ttl=86400)
    log.info("refresh of connection %s rescheduled in %.1fs (rate limit)", connection_id, delay)
    return "rescheduled"


def firm_tax_rates(firm_id: int) -> list[TaxRate]:
    return list(db.session.scalars(sa.select(TaxRate).where(TaxRate.firm_id == firm_id).order_by(TaxRate.name)))


# -- disconnect -------------------------------------------------------------------

def disconnect(provider: Provider, connection: Connection, reason: str = "") -> list[str]:
    """Tell the provider we are leaving, then forget the tokens. Returns problems worth showing.

    `reason` is shown beside "Not connected"; it is written in the same commit as the
    state so no reader ever sees the one without the other. Links and settings stay:
    they belong to the tenant and come back if the same tenant is connected again."""
    from planman.payments import pages

    # First, while PlanMan can still reach the account (not when the provider ended
    # the access): pages paid on afterwards take money PlanMan hears of only on a reconnect.
    problems: list[str] = pages.close_all_before_disconnect(connection) \
        if connection.token_ciphertext and connection.tenant_id else []
    if connection.token_ciphertext:
        try:
            problems += provider.disconnect(connection)
        except Exception:  # never keep tokens because the goodbye failed
            log.exception("provider disconnect failed for connection %s", connection.id)
            where = provider.revoke_hint or f"the {provider.label} website"
            problems += [f"PlanMan could not tell {provider.label} it was leaving; remove PlanMan's access "
                         f"under {where} to be sure."]
    connection.token_ciphertext = None
    # The settings stay with the tenant they were made for; its name, for events that wait for it.
    connection.settings = {**(connection.settings or {}), "tenant_name": connection.tenant_name}
    connection.tenant_id = None
    connection.remote_connection_id = None
    connection.pending_tenants = None
    connection.tenant_name = ""
    connection.tenant_short_code = ""
    connection.state = "disconnected"
    connection.state_reason = reason
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
