"""Sage Accounting as a provider: its OAuth client, API client factory, exporters and words.

Sage's differences from the friendly path (REFERENCE.md section 9): 5-minute
access tokens and rotating refresh tokens that die after 31 days unused, so
nearly every job refreshes (the shared TokenManager: one lock per connection,
the new pair committed before use) and a quiet firm is kept alive by the
keep-alive job (``refresh_token_lifetime``); a token belongs to a user who may
reach several businesses, so the business is picked after consent and sent as
``X-Business`` on every call (client.py checks the echo); invoice lines need
an INCOME ledger account and a Sage tax rate (settings.py); no idempotency
keys (exporter.py looks up before it creates); paid and part-paid invoices
are not edited."""
from __future__ import annotations

from typing import Optional

from flask import current_app

from planman.integrations.base import PushResult, Tenant
from planman.integrations.errors import RemoteNotFound
from planman.integrations.oauth_ledger import OAuthLedgerProvider, OAuthUrls
from planman.integrations.sage import exporter, mapping
from planman.integrations.sage import settings as sage_settings
from planman.integrations.sage.client import SageClient
from planman.integrations.tokens import TokenManager


def businesses_to_tenants(items: list[dict]) -> list[Tenant]:
    """The businesses a Sage user reaches (``GET /businesses``), as tenants."""
    return [Tenant(tenant_id=str(b["id"]), name=b.get("name") or b.get("displayed_as") or "", kind="business")
            for b in items if b.get("id")]


class SageProvider(OAuthLedgerProvider):
    key = "sage"
    label = "Sage"
    summary = "Send clients to Sage Accounting as customers and invoices as draft sales invoices."
    connect_label = "Connect to Sage"  # the help page's words
    reconnect_label = "Reconnect to Sage"
    tenant_word = "business"
    tenant_words = "businesses"
    details_noun = "income accounts and tax rates"
    revoke_hint = "Settings > Connected apps in Sage Accounting"
    settings_template = "integrations/sage/_settings.html"
    tenant_detail_keys = sage_settings.TENANT_DETAIL_KEYS
    maps_tax_rates = True  # the settings page's per-rate pickers
    choice_keys = sage_settings.CHOICE_KEYS

    exporter = exporter
    # filter=apiv3.1 offers only the countries of API v3.1 in Sage's picker.
    authorize_params = {"filter": "apiv3.1"}

    # -- OAuth and API access (planman/integrations/oauth_ledger.py) -----------------
    def oauth_urls(self, cfg) -> OAuthUrls:
        # No PKCE: Sage documents none (REFERENCE.md section 1).
        return OAuthUrls(authorize=cfg["SAGE_AUTH_URL"], token=f"{cfg['SAGE_TOKEN_URL']}/token",
                         revoke=f"{cfg['SAGE_TOKEN_URL']}/revoke")

    def tenants_of(self, api) -> list[Tenant]:
        return businesses_to_tenants(api.businesses())

    def make_client(self, *, tenant_id, tokens, throttle, on_forbidden=None) -> SageClient:
        cfg = current_app.config
        return SageClient(api_url=cfg["SAGE_API_URL"], business_id=tenant_id, tokens=tokens, throttle=throttle,
                          timeout=cfg["SAGE_HTTP_TIMEOUT"], on_forbidden=on_forbidden)

    # Refresh tokens rotate on every use and die after 31 days unused: the keep-alive renews them.
    def refresh_token_lifetime(self, config) -> Optional[float]:
        return config["SAGE_REFRESH_TOKEN_DAYS"] * 86400

    def renew_tokens(self, connection, *, refused_reason=None) -> None:
        TokenManager(connection, self._refresh).renew(refused_reason=refused_reason)

    def load_tenant_details(self, connection) -> None:
        """The business's INCOME ledger accounts and tax rates (the settings pickers)."""
        api = self.api_for(connection)
        business = api.business()
        settings = dict(connection.settings or {})
        settings[sage_settings.LEDGER_ACCOUNTS_KEY] = sage_settings.ledger_accounts(api.income_ledger_accounts())
        settings[sage_settings.TAX_RATES_KEY] = sage_settings.tax_rates(api.tax_rates())
        # Country and currency decide which tax rates and accounts exist (REFERENCE.md section 2).
        settings["sage_country"] = _id_of(business.get("country"))
        settings["sage_currency"] = _id_of(business.get("currency"))
        connection.tenant_name = business.get("name") or connection.tenant_name
        connection.settings = settings

    def void(self, connection, record_type: str, link, *, intent: str) -> PushResult:
        return exporter.void_invoice(self.api_for(connection), link)

    def fetch_remote_status(self, connection, record_type: str, external_id: str) -> Optional[str]:
        if record_type != "invoice":
            return None
        try:
            return mapping.invoice_status(self.api_for(connection).get_invoice(external_id))
        except RemoteNotFound:
            return "DELETED"

    # -- presentation --------------------------------------------------------------
    def view_url(self, connection, record_type: str, external_id: str) -> Optional[str]:
        return mapping.record_url(current_app.config["SAGE_RECORD_URL"], connection.tenant_id, record_type,
                                  external_id)

    def remote_status_label(self, record_type: str, remote_status: str) -> str:
        if record_type == "invoice":
            return mapping.INVOICE_STATUS_LABELS.get(remote_status, remote_status.replace("_", " ").title())
        return remote_status.title()

    def is_locked(self, record_type: str, remote_status: str) -> bool:
        return record_type == "invoice" and remote_status in mapping.LOCKED_STATUSES

    # Voided in Sage is an end there, like deleted: Send again makes a new invoice.
    def is_gone(self, record_type: str, remote_status: str) -> bool:
        return record_type == "invoice" and remote_status in mapping.CLOSED_STATUSES

    def gone_message(self, record_type: str, remote_status: str) -> str:
        if record_type == "invoice" and remote_status == "VOID":
            return mapping.locked_invoice_message("VOID")
        return super().gone_message(record_type, remote_status)

    def is_closed(self, record_type: str, remote_status: str) -> bool:
        return record_type == "invoice" and remote_status in mapping.CLOSED_STATUSES

    def closed_message(self, record_type: str, remote_status: str) -> str:
        done = "deleted in Sage (it was still a draft there)" if remote_status == "DELETED" else "voided in Sage"
        return f"This invoice is void in PlanMan and {done}."

    def locked_message(self, record_type: str, remote_status: str) -> str:
        return mapping.locked_invoice_message(remote_status)

    def record_warnings(self, connection, record_type: str, record) -> list[str]:
        if record_type == "invoice":
            return mapping.invoice_problems(record, (connection.settings or {}).get("sage_currency"))
        return mapping.client_problems(record)

    # -- settings (planman/integrations/sage/settings.py) ------------------------
    def settings_ready(self, connection) -> bool:
        return (connection.settings or {}).get(sage_settings.LEDGER_ACCOUNTS_KEY) is not None

    def settings_form(self, connection, tax_rates: list, **kwargs):
        return sage_settings.sage_settings_form(connection.settings or {}, tax_rates, **kwargs)

    def save_settings(self, connection, form) -> None:
        sage_settings.save_settings(connection, ledger_account_id=form.ledger_account_id.data,
                                    rates=form.chosen_per_rate(), no_tax_rate_id=form.no_tax_rate_id.data)

    def default_choices(self, settings: dict, tax_rates: list) -> dict:
        return sage_settings.apply_default_choices(settings, tax_rates)

    def settings_problems(self, connection) -> list[str]:
        settings = connection.settings or {}
        problems = []
        if not settings.get("ledger_account_id"):
            problems.append("Choose the income account invoice lines are posted to.")
        if not settings.get("no_tax_rate_id"):
            problems.append("Choose the Sage tax rate for lines without a tax rate.")
        return problems


def _id_of(value) -> str:
    """Sage's ``{id, displayed_as}`` reference (or a bare id) as its id."""
    return str((value.get("id") if isinstance(value, dict) else value) or "")

