"""A ledger reached through an OAuth 2.0 app that sends its id and secret in
the body, without PKCE, whose refresh tokens rotate, and whose records are
written one call each: the connect flow, refreshes, revocation, the API
client for a connection and the export of a record, written once.

A subclass says where its provider differs: its URLs (``oauth_urls``), the
tenants an approval reaches (``tenants_of``), its API client (``make_client``)
and any extra parameters. Its settings are ``<KEY>_CLIENT_ID``,
``<KEY>_CLIENT_SECRET``, ``<KEY>_SCOPES``, ``<KEY>_HTTP_TIMEOUT``,
``<KEY>_MAX_IN_FLIGHT`` and ``<KEY>_MAX_PER_MINUTE`` (``key`` upper-cased)."""
from __future__ import annotations

import logging
from abc import abstractmethod
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from authlib.integrations.flask_client import OAuth
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app

from planman.integrations import links
from planman.integrations import throttle as throttles
from planman.integrations.base import Provider, PushResult, RateLimits, Tenant
from planman.integrations.create_marks import CreateMarks
from planman.integrations.oauth_state import RedisStateCache
from planman.integrations.tokens import (FixedToken, TokenManager, load_token, reconnect_when_forbidden,
                                         refresh_or_explain, revoke_or_explain)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OAuthUrls:
    authorize: str
    token: str
    revoke: str


class OAuthLedgerProvider(Provider):
    # The provider's exporter module: export_client(api, record, link, marks) and
    # export_invoice(api, connection, record, marks, user_id=...).
    exporter = None
    # Extra query parameters of the consent page.
    authorize_params: dict = {}

    # -- what each provider says ------------------------------------------------------
    @abstractmethod
    def oauth_urls(self, cfg) -> OAuthUrls:
        """Its consent page, token endpoint and revocation endpoint, from the app's config."""

    @abstractmethod
    def tenants_of(self, api) -> list[Tenant]:
        """The tenants the approving user's token reaches (``api`` holds that token)."""

    @abstractmethod
    def make_client(self, *, tenant_id: Optional[str], tokens, throttle, on_forbidden=None):
        """The provider's API client; ``tenant_id`` None for calls about no tenant."""

    def refresh_params(self) -> dict:
        """Extra fields of a refresh request."""
        return {}

    # -- set-up ---------------------------------------------------------------------------
    def _setting(self, name: str, config=None):
        return (config if config is not None else current_app.config)[f"{self.key.upper()}_{name}"]

    def init_app(self, app) -> None:
        urls = self.oauth_urls(app.config)
        oauth = OAuth(app, cache=RedisStateCache())
        oauth.register(
            self.key,
            client_id=self._setting("CLIENT_ID", app.config),
            client_secret=self._setting("CLIENT_SECRET", app.config),
            authorize_url=urls.authorize,
            access_token_url=urls.token,
            client_kwargs={
                "scope": self._setting("SCOPES", app.config),
                "token_endpoint_auth_method": "client_secret_post",
                "timeout": self._setting("HTTP_TIMEOUT", app.config),
            },
        )
        app.extensions[f"{self.key}_oauth"] = oauth
        parts = urlsplit(urls.authorize)
        app.config.setdefault("CSP_FORM_ACTION_ORIGINS", set()).add(f"{parts.scheme}://{parts.netloc}")

    def is_configured(self, app) -> bool:
        prefix = self.key.upper()
        return bool(app.config.get(f"{prefix}_CLIENT_ID") and app.config.get(f"{prefix}_CLIENT_SECRET"))

    def _oauth_client(self):
        return getattr(current_app.extensions[f"{self.key}_oauth"], self.key)

    # -- connect flow (web process) ----------------------------------------------------
    def authorize_redirect(self, redirect_uri: str):
        return self._oauth_client().authorize_redirect(redirect_uri, **self.authorize_params)

    def complete_authorization(self) -> tuple[dict, list[Tenant]]:
        token = self._oauth_client().authorize_access_token()
        api = self.make_client(tenant_id=None, tokens=FixedToken(token["access_token"], self.label), throttle=None)
        return token, self.tenants_of(api)

    def disconnect(self, connection) -> list[str]:
        try:
            token = load_token(connection)
        except Exception:  # undecryptable: nothing we can revoke
            return [f"PlanMan could not read its stored {self.label} tokens, so it could not revoke them."]
        if not token:
            return []
        return revoke_or_explain(lambda: self._oauth_session().revoke_token(
            self.oauth_urls(current_app.config).revoke, token=token.get("refresh_token") or token["access_token"],
            timeout=self._setting("HTTP_TIMEOUT")), self.label, self.revoke_hint)

    # -- tokens ------------------------------------------------------------------------------
    def _oauth_session(self) -> OAuth2Session:
        # The client's credentials go in the body, at the token and revoke endpoints alike.
        return OAuth2Session(self._setting("CLIENT_ID"), self._setting("CLIENT_SECRET"),
                             token_endpoint_auth_method="client_secret_post",
                             revocation_endpoint_auth_method="client_secret_post")

    def _refresh(self, refresh_token: str) -> dict:
        """One refresh. The refresh token may die with this call whatever happens
        to its answer (it rotates): the TokenManager calls this under the
        connection's lock and commits the new pair before anything uses it."""
        return refresh_or_explain(lambda: self._oauth_session().refresh_token(
            self.oauth_urls(current_app.config).token, refresh_token=refresh_token,
            timeout=self._setting("HTTP_TIMEOUT"), **self.refresh_params()), self.label)

    # -- API access (workers) ------------------------------------------------------------
    def rate_limits(self, config) -> RateLimits:
        return RateLimits(in_flight=self._setting("MAX_IN_FLIGHT", config),
                          per_minute=self._setting("MAX_PER_MINUTE", config),
                          lease_seconds=self._setting("HTTP_TIMEOUT", config) + 5)

    def api_for(self, connection):
        return self.make_client(tenant_id=connection.tenant_id, tokens=TokenManager(connection, self._refresh),
                                throttle=throttles.for_connection(self, connection),
                                on_forbidden=reconnect_when_forbidden(connection, self))

    def _marks(self, connection) -> CreateMarks:
        return CreateMarks(current_app.redis, self.key, connection.tenant_id)

    def export(self, connection, record_type: str, record, *, user_id: Optional[int], intent: str) -> PushResult:
        api = self.api_for(connection)
        if record_type == "client":
            return self.exporter.export_client(api, record, links.find_link(connection, "client", record.id),
                                               self._marks(connection))
        return self.exporter.export_invoice(api, connection, record, self._marks(connection), user_id=user_id)
