"""Xero as a provider: its OAuth client, API client factory, exporters and words."""
from __future__ import annotations

import base64
import json
import logging
from typing import Optional

from authlib.integrations.flask_client import OAuth
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app

from planman.integrations import links
from planman.integrations.base import BatchReport, Provider, PushResult, RateLimits, Tenant
from planman.integrations.errors import IntegrationError, RemoteNotFound
from planman.integrations import throttle as throttles
from planman.integrations.oauth_state import RedisStateCache
from planman.integrations.tokens import (FixedToken, TokenManager, load_token, reconnect_when_forbidden,
                                         refresh_or_explain, revoke_or_explain)
from planman.integrations.throttle import Throttled
from planman.integrations.xero import bulk_exporter, exporter, mapping, payments, reconcile, webhooks
from planman.integrations.xero import settings as xero_settings
from planman.integrations.xero.client import XeroClient

log = logging.getLogger(__name__)

REVENUE_ACCOUNT_TYPES = {"REVENUE", "SALES", "OTHERINCOME"}


class XeroProvider(Provider):
    key = "xero"
    label = "Xero"
    summary = "Send clients to Xero as contacts and invoices as draft sales invoices."
    connect_label = "Connect To Xero"  # the help pages' words
    reconnect_label = "Reconnect To Xero"
    tenant_word = "organisation"
    tenant_words = "organisations"
    details_noun = "accounts and tax rates"
    revoke_hint = "Settings > Connected apps in Xero"
    accepts_accented_emails = False  # EmailAddress (REFERENCE.md section 3)
    settings_template = "integrations/xero/_settings.html"
    tenant_detail_keys = xero_settings.TENANT_DETAIL_KEYS
    maps_tax_rates = True  # the settings page's per-rate pickers
    choice_keys = xero_settings.CHOICE_KEYS

    # -- set-up -------------------------------------------------------------
    def init_app(self, app) -> None:
        oauth = OAuth(app, cache=RedisStateCache())
        cfg = app.config
        oauth.register(
            "xero",
            client_id=cfg["XERO_CLIENT_ID"],
            client_secret=cfg["XERO_CLIENT_SECRET"],
            authorize_url=f"{cfg['XERO_LOGIN_URL']}/identity/connect/authorize",
            access_token_url=f"{cfg['XERO_IDENTITY_URL']}/connect/token",
            client_kwargs={
                "scope": cfg["XERO_SCOPES"],
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": "client_secret_basic",
                "timeout": cfg["XERO_HTTP_TIMEOUT"],
            },
        )
        app.extensions["xero_oauth"] = oauth
        app.config.setdefault("CSP_FORM_ACTION_ORIGINS", set()).add(cfg["XERO_LOGIN_URL"])

    def is_configured(self, app) -> bool:
        return bool(app.config["XERO_CLIENT_ID"] and app.config["XERO_CLIENT_SECRET"])

    def _oauth_client(self):
        return current_app.extensions["xero_oauth"].xero

    # -- connect flow (web process; identity endpoints only) -----------------
    def authorize_redirect(self, redirect_uri: str):
        return self._oauth_client().authorize_redirect(redirect_uri)

    def complete_authorization(self) -> tuple[dict, list[Tenant]]:
        token = self._oauth_client().authorize_access_token()
        api = self._api(tenant_id=None, tokens=FixedToken(token["access_token"], self.label), throttle=None)
        # /connections lists every organisation the user ever connected to this
        # app; offer only those this approval added (REFERENCE.md section 1).
        event = authentication_event_id(token["access_token"])
        tenants = [
            Tenant(tenant_id=c["tenantId"], name=c.get("tenantName") or "", remote_connection_id=c.get("id", ""),
                   kind=c.get("tenantType", ""))
            for c in api.list_connections(auth_event_id=event)
            if c.get("tenantType", "ORGANISATION") == "ORGANISATION"
            and (not event or c.get("authEventId", event) == event)
        ]
        return token, tenants

    def disconnect(self, connection) -> list[str]:
        problems = []
        token = None
        try:
            token = load_token(connection)
        except Exception:  # undecryptable: nothing we can revoke
            problems.append("PlanMan could not read its stored Xero tokens, so it could not revoke them.")
        if token and connection.remote_connection_id:
            try:
                api = self._api(tenant_id=None, tokens=FixedToken(token["access_token"], self.label), throttle=None)
                api.delete_connection(connection.remote_connection_id)
            except IntegrationError as error:
                log.info("xero disconnect: DELETE /connections failed: %s", error.detail or error)
        if token and token.get("refresh_token"):
            problems += revoke_or_explain(lambda: self._oauth_session().revoke_token(
                f"{current_app.config['XERO_IDENTITY_URL']}/connect/revocation",
                token=token["refresh_token"], token_type_hint="refresh_token",
                timeout=current_app.config["XERO_HTTP_TIMEOUT"],
            ), self.label, self.revoke_hint)
        return problems

    def release_tenants(self, connection, tenants) -> list[str]:
        # Each organisation approved is a connection at Xero, counted against the
        # app's connection limit and listing PlanMan in that organisation's
        # Connected apps; the ones not chosen are removed (REFERENCE.md section 1).
        token = load_token(connection)
        api = self._api(tenant_id=None, tokens=FixedToken(token["access_token"], self.label), throttle=None)
        kept = []
        for tenant in tenants:
            if not tenant.remote_connection_id:
                continue
            try:
                api.delete_connection(tenant.remote_connection_id)
            except IntegrationError as error:
                log.info("xero choose: DELETE /connections failed: %s", error.detail or error)
                kept.append(tenant.name or tenant.tenant_id)
        if not kept:
            return []
        return [f"PlanMan could not give up its access to {', '.join(kept)}, which you approved but did not "
                f"choose; in {'that organisation' if len(kept) == 1 else 'each of them'}, remove PlanMan under "
                f"{self.revoke_hint}."]

    # -- API access (workers) ------------------------------------------------
    def _oauth_session(self) -> OAuth2Session:
        cfg = current_app.config
        return OAuth2Session(cfg["XERO_CLIENT_ID"], cfg["XERO_CLIENT_SECRET"],
                             token_endpoint_auth_method="client_secret_basic")

    def _refresh(self, refresh_token: str) -> dict:
        cfg = current_app.config
        return refresh_or_explain(lambda: self._oauth_session().refresh_token(
            f"{cfg['XERO_IDENTITY_URL']}/connect/token", refresh_token=refresh_token,
            timeout=cfg["XERO_HTTP_TIMEOUT"]), self.label)

    # Refresh tokens rotate on every use and die after 60 days unused. Pushes and the
    # catch-up job (reconcile-ledgers) use them, but a firm that sends nothing and an
    # installation without that job would lose the connection: the keep-alive renews them.
    def refresh_token_lifetime(self, config) -> Optional[float]:
        return config["XERO_REFRESH_TOKEN_DAYS"] * 86400

    def renew_tokens(self, connection, *, refused_reason=None) -> None:
        TokenManager(connection, self._refresh).renew(refused_reason=refused_reason)

    def _api(self, *, tenant_id, tokens, throttle, on_tenant_forbidden=None) -> XeroClient:
        cfg = current_app.config
        return XeroClient(api_url=cfg["XERO_API_URL"], tenant_id=tenant_id, tokens=tokens, throttle=throttle,
                          timeout=cfg["XERO_HTTP_TIMEOUT"], on_tenant_forbidden=on_tenant_forbidden)

    def rate_limits(self, config) -> RateLimits:
        return RateLimits(in_flight=config["XERO_MAX_IN_FLIGHT"], per_minute=config["XERO_MAX_PER_MINUTE"],
                          per_day=config.get("XERO_MAX_PER_DAY", 5000), lease_seconds=config["XERO_HTTP_TIMEOUT"] + 5,
                          app_per_minute=config.get("XERO_APP_MAX_PER_MINUTE", 10000))

    def api_for(self, connection) -> XeroClient:
        return self._api(tenant_id=connection.tenant_id, tokens=TokenManager(connection, self._refresh),
                         throttle=throttles.for_connection(self, connection),
                         on_tenant_forbidden=reconnect_when_forbidden(connection, self))

    def load_tenant_details(self, connection) -> None:
        api = self.api_for(connection)
        organisation = api.organisation()
        xero_accounts = api.accounts()
        accounts = [
            {"code": a["Code"], "name": a.get("Name", "")}
            for a in xero_accounts
            if a.get("Code") and a.get("Type") in REVENUE_ACCOUNT_TYPES and a.get("Status", "ACTIVE") == "ACTIVE"
        ]
        tax_rates = [
            {"type": t["TaxType"], "name": t.get("Name", ""), "rate": str(t.get("EffectiveRate", t.get("DisplayTaxRate", "")))}
            for t in api.tax_rates()
            if t.get("TaxType") and t.get("Status", "ACTIVE") == "ACTIVE" and t.get("CanApplyToRevenue", True)
        ]
        try:
            # The currencies the organisation has enabled: Xero refuses invoices in any other.
            currencies = sorted({c["Code"] for c in api.currencies() if c.get("Code")} |
                                {organisation.get("BaseCurrency") or ""} - {""})
        except RemoteNotFound:
            currencies = None  # not known: nothing is warned about
        connection.tenant_name = organisation.get("Name") or connection.tenant_name
        connection.tenant_short_code = organisation.get("ShortCode") or ""
        settings = dict(connection.settings or {})
        settings[xero_settings.ACCOUNTS_KEY] = accounts
        settings[xero_settings.PAYMENT_ACCOUNTS_KEY] = mapping.payment_accounts(xero_accounts)
        settings[xero_settings.TAX_RATES_KEY] = tax_rates
        settings["base_currency"] = organisation.get("BaseCurrency", "")
        settings["currencies"] = currencies
        connection.settings = settings

    def export(self, connection, record_type: str, record, *, user_id: Optional[int], intent: str) -> PushResult:
        api = self.api_for(connection)
        if record_type == "client":
            return exporter.export_client(api, record, links.find_link(connection, "client", record.id), intent=intent)
        return exporter.export_invoice(api, connection, record, invoice_url=invoice_url(record), user_id=user_id,
                                       intent=intent)

    def fetch_remote_status(self, connection, record_type: str, external_id: str) -> Optional[str]:
        if record_type != "invoice":
            return None
        try:
            return self.api_for(connection).get_invoice(external_id).get("Status", "")
        except RemoteNotFound:
            return "DELETED"

    batch_size = bulk_exporter.BATCH_SIZE

    def export_batch(self, connection, record_type: str, records: list, *, on_results, intent: str) -> BatchReport:
        """Up to 50 records in as few calls as the rules allow (bulk_exporter.py);
        an invoice's client must be linked already (the bulk engine sends clients first)."""
        api = self.api_for(connection)
        day_left: list[int] = []

        def note_day_limit(response, *args, **kwargs):
            value = response.headers.get("X-DayLimit-Remaining")
            if value is not None and value.isdigit():
                day_left.append(int(value))

        api.http.hooks["response"].append(note_day_limit)
        ids = [record.id for record in records]
        if record_type == "client":
            bulk_exporter.export_contacts(api, records, links.links_by_record(connection, "client", ids), on_results,
                                          intent=intent)
        else:
            bulk_exporter.export_invoices(
                api, connection, records, on_results=on_results, invoice_url=invoice_url, intent=intent,
                contact_links=links.links_by_record(connection, "client", [r.client_id for r in records]),
                invoice_links=links.links_by_record(connection, "invoice", ids))
        return BatchReport(calls=api.calls_made, day_remaining=min(day_left) if day_left else None)

    # -- payments received (planman.payments.ledger) -------------------------
    def record_payment(self, connection, invoice_link, payment) -> str:
        # The account for the payment's method (a card clearing account, a Direct Debit one), else the one for all.
        account_code = xero_settings.payment_account_for(connection.settings or {}, payment.method)
        if not account_code:
            raise payments.PaymentRefused(mapping.NO_PAYMENT_ACCOUNT)
        return payments.record_payment(self.api_for(connection), invoice_link.external_id, account_code, payment)

    def reverse_payment(self, connection, invoice_link, payment, ledger_payment_id: str) -> None:
        payments.reverse_payment(self.api_for(connection), payment, ledger_payment_id)

    # -- read back from Xero: webhooks (xero/webhooks.py) and catch-up (xero/reconcile.py) --
    accepts_webhooks = True
    webhook_empty_answers = True  # Xero: "200, empty body"
    catches_up = True

    def verify_webhook(self, raw_body: bytes, headers):
        return webhooks.verify(raw_body, headers, current_app.config["XERO_WEBHOOK_KEY"])

    def handle_webhook_event(self, event, connection) -> None:
        webhooks.handle(self, event, connection)

    def catch_up(self, connection) -> str:
        try:
            return reconcile.catch_up(self.api_for(connection), connection)
        except Throttled as throttled:
            return f"Xero's limits are in use ({throttled}); the next run carries on"

    # -- presentation ----------------------------------------------------------
    def view_url(self, connection, record_type: str, external_id: str) -> Optional[str]:
        return mapping.deep_link(current_app.config["XERO_APP_URL"], connection.tenant_short_code, record_type,
                                 external_id)

    def remote_status_label(self, record_type: str, remote_status: str) -> str:
        if record_type == "invoice":
            return mapping.INVOICE_STATUS_LABELS.get(remote_status, remote_status.title())
        return remote_status.title()

    def is_locked(self, record_type: str, remote_status: str) -> bool:
        return record_type == "invoice" and remote_status in {"AUTHORISED", "PAID", "VOIDED"}

    def is_gone(self, record_type: str, remote_status: str) -> bool:
        return record_type == "invoice" and remote_status == "DELETED"

    def is_closed(self, record_type: str, remote_status: str) -> bool:
        return record_type == "invoice" and remote_status in ("DELETED", "VOIDED")

    def closed_message(self, record_type: str, remote_status: str) -> str:
        done = "deleted in Xero (it was never approved there)" if remote_status == "DELETED" else "voided in Xero"
        return f"This invoice is void in PlanMan and {done}."

    def void(self, connection, record_type: str, link, *, intent: str) -> PushResult:
        return exporter.void_invoice(self.api_for(connection), link, intent=intent)

    def locked_message(self, record_type: str, remote_status: str) -> str:
        return mapping.locked_invoice_message(remote_status)

    def remote_notice(self, record_type: str, remote_status: str) -> str:
        if record_type == "client" and remote_status == "ARCHIVED":
            return exporter.ARCHIVED_CONTACT_NOTICE
        return ""
    def record_warnings(self, connection, record_type: str, record) -> list[str]:
        if record_type != "invoice":
            return []
        problem = mapping.currency_not_enabled(record.currency, (connection.settings or {}).get("currencies"))
        return [problem] if problem else []


    # -- settings (planman/integrations/xero/settings.py) ------------------------
    def settings_ready(self, connection) -> bool:
        return (connection.settings or {}).get(xero_settings.ACCOUNTS_KEY) is not None

    def settings_form(self, connection, tax_rates: list, **kwargs):
        return xero_settings.xero_settings_form(connection.settings or {}, tax_rates, **kwargs)

    def save_settings(self, connection, form) -> None:
        xero_settings.save_settings(connection, sales_account_code=form.sales_account_code.data,
                                    tax_types=form.chosen_per_rate(), no_tax_type=form.no_tax_type.data,
                                    invoice_status=form.invoice_status.data,
                                    payment_account_code=form.payment_account_code.data,
                                    method_accounts=form.method_accounts())

    def initial_settings(self) -> dict:
        return {"invoice_status": xero_settings.DEFAULT_INVOICE_STATUS}

    def default_choices(self, settings: dict, tax_rates: list) -> dict:
        return xero_settings.apply_default_choices(settings, tax_rates)

    def settings_problems(self, connection) -> list[str]:
        settings = connection.settings or {}
        problems = []
        if not settings.get("sales_account_code"):
            problems.append("Choose the sales account invoices are posted to.")
        return problems


def authentication_event_id(access_token: str) -> str:
    """The ``authentication_event_id`` claim of Xero's access token (a JWT), or "".

    Read without checking the signature, on purpose and for this claim only: the
    token came to this process straight from Xero's token endpoint over TLS (the
    code exchange, not the browser), and the claim only narrows the list of
    organisations Xero itself returns for that same token, so a forged value
    could hide an organisation but never reach one the token cannot."""
    try:
        segment = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError):
        return ""  # not a JWT: offer every organisation the token reaches, as before
    event = claims.get("authentication_event_id") if isinstance(claims, dict) else None
    return event if isinstance(event, str) else ""


def invoice_url(invoice) -> str:
    """The PlanMan page Xero links back to ("Go to PlanMan")."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/invoices/{invoice.id}"
