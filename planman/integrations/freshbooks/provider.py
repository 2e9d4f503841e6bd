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

import logging
from typing import Optional

from authlib.integrations.flask_client import OAuth
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app

from planman.integrations import links
from planman.integrations import throttle as throttles
from planman.integrations.base import BatchReport, Provider, PushResult, RateLimits, Tenant
from planman.integrations.create_marks import CreateMarks
from planman.integrations.errors import RecordLocked, RemoteNotFound, ValidationFailed
from planman.integrations.freshbooks import exporter, mapping
from planman.integrations.freshbooks.client import FreshBooksClient
from planman.integrations.oauth_state import RedisStateCache
from planman.integrations.tokens import (FixedToken, TokenManager, load_token, reconnect_when_forbidden,
                                         refresh_or_explain)

log = logging.getLogger(__name__)

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


class FreshBooksProvider(Provider):
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

    # -- set-up -------------------------------------------------------------
    def init_app(self, app) -> None:
        cfg = app.config
        oauth = OAuth(app, cache=RedisStateCache())
        oauth.register(
            "freshbooks",
            client_id=cfg["FRESHBOOKS_CLIENT_ID"],
            client_secret=cfg["FRESHBOOKS_CLIENT_SECRET"],
            authorize_url=f"{cfg['FRESHBOOKS_AUTH_URL']}/oauth/authorize",
            access_token_url=f"{cfg['FRESHBOOKS_API_URL']}/auth/oauth/token",
            client_kwargs={
                # No PKCE: FreshBooks documents none (REFERENCE.md section 1).
                "scope": cfg["FRESHBOOKS_SCOPES"],
                "token_endpoint_auth_method": "client_secret_post",
                "timeout": cfg["FRESHBOOKS_HTTP_TIMEOUT"],
            },
        )
        app.extensions["freshbooks_oauth"] = oauth
        app.config.setdefault("CSP_FORM_ACTION_ORIGINS", set()).add(cfg["FRESHBOOKS_AUTH_URL"])

    def is_configured(self, app) -> bool:
        return bool(app.config.get("FRESHBOOKS_CLIENT_ID") and app.config.get("FRESHBOOKS_CLIENT_SECRET"))

    def _oauth_client(self):
        return current_app.extensions["freshbooks_oauth"].freshbooks

    # -- connect flow (web process) ---------------------------------------------
    def authorize_redirect(self, redirect_uri: str):
        return self._oauth_client().authorize_redirect(redirect_uri)

    def complete_authorization(self) -> tuple[dict, list[Tenant]]:
        token = self._oauth_client().authorize_access_token()
        api = self._api(account_id=None, tokens=FixedToken(token["access_token"], self.label), throttle=None)
        return token, memberships_to_tenants(api.me())

    def disconnect(self, connection) -> list[str]:
        try:
            token = load_token(connection)
        except Exception:  # undecryptable: nothing we can revoke
            return ["PlanMan could not read its stored FreshBooks tokens, so it could not revoke them."]
        if not token:
            return []
        cfg = current_app.config
        try:
            self._oauth_session().revoke_token(
                f"{cfg['FRESHBOOKS_API_URL']}/auth/oauth/revoke", token=token.get("refresh_token") or
                token["access_token"], timeout=cfg["FRESHBOOKS_HTTP_TIMEOUT"])
        except Exception as error:  # network trouble must not keep the tokens alive here
            log.info("freshbooks disconnect: revocation failed: %s", type(error).__name__)
            return ["FreshBooks could not be reached to revoke access; remove PlanMan from the apps connected "
                    "to your FreshBooks account to be sure."]
        return []

    # -- API access (workers) ------------------------------------------------------
    def _oauth_session(self) -> OAuth2Session:
        cfg = current_app.config
        # FreshBooks takes the client's credentials in the body, at the token and revoke endpoints alike.
        return OAuth2Session(cfg["FRESHBOOKS_CLIENT_ID"], cfg["FRESHBOOKS_CLIENT_SECRET"],
                             token_endpoint_auth_method="client_secret_post",
                             revocation_endpoint_auth_method="client_secret_post")

    def _refresh(self, refresh_token: str) -> dict:
        """One refresh. The refresh token dies with this call whatever happens to
        its answer (single use, no grace): the TokenManager calls it under the
        connection's lock and commits the new pair before anything uses it."""
        cfg = current_app.config
        return refresh_or_explain(lambda: self._oauth_session().refresh_token(
            f"{cfg['FRESHBOOKS_API_URL']}/auth/oauth/token", refresh_token=refresh_token,
            redirect_uri=callback_url(), timeout=cfg["FRESHBOOKS_HTTP_TIMEOUT"]), self.label)

    def _api(self, *, account_id, tokens, throttle, on_forbidden=None) -> FreshBooksClient:
        cfg = current_app.config
        return FreshBooksClient(api_url=cfg["FRESHBOOKS_API_URL"], account_id=account_id, tokens=tokens,
                                throttle=throttle, timeout=cfg["FRESHBOOKS_HTTP_TIMEOUT"], on_forbidden=on_forbidden)

    def rate_limits(self, config) -> RateLimits:
        return RateLimits(in_flight=config["FRESHBOOKS_MAX_IN_FLIGHT"], per_minute=config["FRESHBOOKS_MAX_PER_MINUTE"],
                          lease_seconds=config["FRESHBOOKS_HTTP_TIMEOUT"] + 5)

    def api_for(self, connection) -> FreshBooksClient:
        return self._api(account_id=connection.tenant_id, tokens=TokenManager(connection, self._refresh),
                         throttle=throttles.for_connection(self, connection),
                         on_forbidden=reconnect_when_forbidden(connection, self))

    def _marks(self, connection) -> CreateMarks:
        return CreateMarks(current_app.redis, self.key, connection.tenant_id)

    def load_tenant_details(self, connection) -> None:
        """The business's saved taxes (shown on the settings page) and its currency."""
        api = self.api_for(connection)
        taxes = [{"name": t.get("name") or "", "rate": str(t.get("amount") or "")} for t in api.taxes()]
        settings = dict(connection.settings or {})
        settings["freshbooks_taxes"] = taxes
        connection.settings = settings

    def export(self, connection, record_type: str, record, *, user_id: Optional[int], intent: str) -> PushResult:
        api = self.api_for(connection)
        if record_type == "client":
            return exporter.export_client(api, record, links.find_link(connection, "client", record.id),
                                          self._marks(connection))
        return exporter.export_invoice(api, connection, record, self._marks(connection), user_id=user_id)

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
