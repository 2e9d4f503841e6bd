"""FreshBooks as a provider: its OAuth client, API client factory, exporters and words.

FreshBooks' differences from the friendly path (REFERENCE.md section 9):
OAuth 2.0 without PKCE; 12-hour access tokens and single-use refresh tokens
with no grace period (refreshes go through the shared TokenManager: one lock
per connection, the new pair committed before use); the business is picked
after consent from ``/auth/api/v1/users/me`` and accounting URLs are keyed by
its ``account_id``; no idempotency keys (exporter.py looks up before it
creates); invoices the customer may have seen are updated only once a person
confirms."""
from __future__ import annotations

from typing import Optional

from flask import current_app

from planman.integrations import links
from planman.integrations.base import BatchReport, Tenant
from planman.integrations.errors import RecordLocked, RemoteNotFound, ValidationFailed
from planman.integrations.freshbooks import exporter, mapping
from planman.integrations.freshbooks.client import FreshBooksClient
from planman.integrations.oauth_ledger import OAuthLedgerProvider, OAuthUrls

# Memberships that cannot use the accounting API: the identity is someone's customer there.
NOT_A_BUSINESS_OF_THEIRS = {"client"}


def callback_url() -> str:
    """The registered redirect URI (FreshBooks matches it exactly, also on refresh)."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/integrations/freshbooks/callback"


def memberships_to_tenants(me: dict) -> list[Tenant]:
    """The businesses an identity can push to, from ``/users/me`` (REFERENCE.md section 2):
    the tenant is the business's ``account_id``; its ``id`` (business_id) is kept too."""
    tenants = []
    for membership in me.get("business_memberships") or []:
        business = membership.get("business") or {}
        if membership.get("role") in NOT_A_BUSINESS_OF_THEIRS or not business.get("account_id"):
            continue
        tenants.append(Tenant(tenant_id=str(business["account_id"]), name=business.get("name") or "",
                              remote_connection_id=str(business.get("id") or ""), kind="business"))
    return tenants


class FreshBooksProvider(OAuthLedgerProvider):
    key = "freshbooks"
    label = "FreshBooks"
    summary = "Send clients to FreshBooks as clients and invoices as draft invoices."
    connect_label = "Connect to FreshBooks"  # the help pages' words
    reconnect_label = "Reconnect to FreshBooks"
    tenant_word = "business"
    tenant_words = "businesses"
    details_noun = "taxes"
    revoke_hint = "the apps connected to your FreshBooks account"
    settings_template = "integrations/freshbooks/_settings.html"
    tenant_detail_keys = ("freshbooks_taxes",)

    exporter = exporter

    # -- OAuth and API access (planman/integrations/oauth_ledger.py) -----------------
    def oauth_urls(self, cfg) -> OAuthUrls:
        # No PKCE: FreshBooks documents none (REFERENCE.md section 1).
        return OAuthUrls(authorize=f"{cfg['FRESHBOOKS_AUTH_URL']}/oauth/authorize",
                         token=f"{cfg['FRESHBOOKS_API_URL']}/auth/oauth/token",
                         revoke=f"{cfg['FRESHBOOKS_API_URL']}/auth/oauth/revoke")

    def refresh_params(self) -> dict:
        return {"redirect_uri": callback_url()}  # FreshBooks matches it on refresh too

    def tenants_of(self, api) -> list[Tenant]:
        return memberships_to_tenants(api.me())

    def make_client(self, *, tenant_id, tokens, throttle, on_forbidden=None) -> FreshBooksClient:
        cfg = current_app.config
        return FreshBooksClient(api_url=cfg["FRESHBOOKS_API_URL"], account_id=tenant_id, tokens=tokens,
                                throttle=throttle, timeout=cfg["FRESHBOOKS_HTTP_TIMEOUT"], on_forbidden=on_forbidden)

    def load_tenant_details(self, connection) -> None:
        """The business's saved taxes (shown on the settings page) and its currency."""
        api = self.api_for(connection)
        taxes = [{"name": t.get("name") or "", "rate": str(t.get("amount") or "")} for t in api.taxes()]
        settings = dict(connection.settings or {})
        settings["freshbooks_taxes"] = taxes
        connection.settings = settings

    def export_batch(self, connection, record_type: str, records: list, *, on_results, intent: str) -> BatchReport:
        """One call per record (FreshBooks has no batch endpoints); invoices the
        customer may have seen are left for a person to confirm on their page."""
        api = self.api_for(connection)
        marks = self._marks(connection)
        for record in records:
            try:
                if record_type == "client":
                    result = exporter.export_client(api, record, links.find_link(connection, "client", record.id),
                                                    marks)
                else:
                    result = exporter.export_invoice(api, connection, record, marks, user_id=None, confirmed=False)
            except (ValidationFailed, RecordLocked) as error:
                on_results({record.id: error})
                continue
            on_results({record.id: result})
        return BatchReport(calls=api.calls_made)

    def fetch_remote_status(self, connection, record_type: str, external_id: str) -> Optional[str]:
        api = self.api_for(connection)
        try:
            if record_type == "invoice":
                return mapping.invoice_status(api.get_invoice(external_id))
            return mapping.client_status(api.get_client(external_id))
        except RemoteNotFound:
            return "deleted"

    # -- presentation --------------------------------------------------------------
    def view_url(self, connection, record_type: str, external_id: str) -> Optional[str]:
        return mapping.record_url(current_app.config["FRESHBOOKS_RECORD_URL"], connection.tenant_id, record_type,
                                  external_id)

    def remote_status_label(self, record_type: str, remote_status: str) -> str:
        if record_type == "invoice":
            return mapping.INVOICE_STATUS_LABELS.get(remote_status, remote_status.title())
        return remote_status.title()

    def is_gone(self, record_type: str, remote_status: str) -> bool:
        return record_type == "invoice" and remote_status == "deleted"

    def confirm_update(self, record_type: str, remote_status: str) -> str:
        """The question to ask before an Update of a record in this remote state, or ""."""
        if record_type == "invoice" and mapping.customer_has_seen(remote_status):
            return mapping.confirm_update_question(remote_status)
        return ""

    def remote_notice(self, record_type: str, remote_status: str) -> str:
        if record_type == "client" and remote_status == "deleted":
            return exporter.DELETED_CLIENT
        if record_type == "client" and remote_status == "archived":
            return "This client is archived in FreshBooks. Updates still reach it there."
        return ""

    def record_warnings(self, connection, record_type: str, record) -> list[str]:
        return mapping.invoice_problems(record) if record_type == "invoice" else []
