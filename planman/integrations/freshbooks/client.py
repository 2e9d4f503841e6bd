"""The only code that speaks HTTP to FreshBooks.

A thin requests client rather than ``freshbooks-sdk``: the SDK keeps tokens
in its own object with no storage or lock (PlanMan's single-use refresh
tokens must be rotated under the shared lock and committed before use), it
retries by itself (PlanMan's push lifecycle decides retries, and must never
sleep in a worker on a 429), and it reads its base URL from the process
environment. Here every call carries the bearer token, asks for JSON, has a
timeout and passes the shared per-account throttle; answers come back as the
``result`` dict or as the typed errors of ``planman.integrations.errors``."""
from __future__ import annotations

import logging
from typing import Any, Callable

import requests

from planman.integrations.errors import NeedsReconnect, RateLimited, RemoteNotFound, TemporaryFailure, ValidationFailed
from planman.integrations.freshbooks import mapping
from planman.integrations.throttle import TenantThrottle

log = logging.getLogger(__name__)

PER_PAGE = 100  # the most a list page holds (REFERENCE.md section 4)
MAX_PAGES = 5  # a lookup matching more than 500 records is not a lookup
DEFAULT_RETRY_AFTER = 60.0  # FreshBooks' Retry-After is unconfirmed (REFERENCE.md section 5)


class Refused(ValidationFailed):
    """FreshBooks refused the request; ``errors`` keeps its envelope (errno, field, message)."""

    def __init__(self, record_type: str, errors: list[dict], status: int):
        self.errors = errors
        self.status = status
        messages = [e["message"] for e in errors if e.get("message")] or [
            f"FreshBooks refused the request ({status})."]
        super().__init__(messages, mapping.field_errors(record_type, errors), provider="FreshBooks")

    @property
    def errnos(self) -> set:
        return {e.get("errno") for e in self.errors}


class FreshBooksClient:
    def __init__(self, *, api_url: str, account_id: str | None, tokens, throttle: TenantThrottle | None,
                 timeout: float, on_forbidden: Callable[[str], None] | None = None,
                 http: requests.Session | None = None):
        self.api_url = api_url.rstrip("/")
        self.account_id = account_id
        self.tokens = tokens
        self.throttle = throttle
        self.timeout = timeout
        self.on_forbidden = on_forbidden
        self.http = http or requests.Session()
        self.calls_made = 0

    # -- identity ---------------------------------------------------------
    def me(self) -> dict:
        """The identity and its business memberships (``/auth/api/v1/users/me``)."""
        body = self._send("GET", f"{self.api_url}/auth/api/v1/users/me", record_type="", throttled=False)
        return (body or {}).get("response") or {}

    # -- accounting -------------------------------------------------------
    def taxes(self) -> list[dict]:
        return self._list("taxes/taxes", "taxes", {})

    def find_clients(self, organization: str) -> list[dict]:
        """Active clients whose organisation is ``organization`` (compared by the caller too)."""
        return self._list("users/clients", "clients", {"search[organization]": organization}, record_type="client")

    def get_client(self, client_id: str) -> dict:
        return self._accounting("GET", f"users/clients/{client_id}", record_type="client").get("client") or {}

    def create_client(self, client: dict) -> dict:
        body = self._accounting("POST", "users/clients", json={"client": client}, record_type="client")
        return body.get("client") or {}

    def update_client(self, client_id: str, client: dict) -> dict:
        body = self._accounting("PUT", f"users/clients/{client_id}", json={"client": client}, record_type="client")
        return body.get("client") or {}

    def find_invoices(self, number: str) -> list[dict]:
        return self._list("invoices/invoices", "invoices", {"search[invoice_number]": number}, record_type="invoice")

    def get_invoice(self, invoice_id: str) -> dict:
        return self._accounting("GET", f"invoices/invoices/{invoice_id}", record_type="invoice").get("invoice") or {}

    def create_invoice(self, invoice: dict) -> dict:
        body = self._accounting("POST", "invoices/invoices", json={"invoice": invoice}, record_type="invoice")
        return body.get("invoice") or {}

    def update_invoice(self, invoice_id: str, invoice: dict) -> dict:
        body = self._accounting("PUT", f"invoices/invoices/{invoice_id}", json={"invoice": invoice},
                                record_type="invoice")
        return body.get("invoice") or {}

    # -- transport --------------------------------------------------------
    def _list(self, path: str, plural: str, params: dict, record_type: str = "") -> list[dict]:
        found: list[dict] = []
        for page in range(1, MAX_PAGES + 1):
            result = self._accounting("GET", path, params={**params, "page": page, "per_page": PER_PAGE},
                                      record_type=record_type)
            found.extend(result.get(plural) or [])
            if page >= int(result.get("pages") or 1):
                break
        return found

    def _accounting(self, method: str, path: str, *, record_type: str, params=None, json=None) -> dict:
        url = f"{self.api_url}/accounting/account/{self.account_id}/{path}"
        body = self._send(method, url, record_type=record_type, params=params, json=json) or {}
        response = body.get("response") if isinstance(body, dict) else None
        return (response or {}).get("result") or {}

    def _send(self, method, url, *, record_type: str, params=None, json=None, throttled=True, _retried=False) -> Any:
        access_token = self.tokens.access_token()
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        try:
            if throttled and self.throttle is not None:
                with self.throttle.slot():
                    response = self._http(method, url, headers, params, json)
            else:
                response = self._http(method, url, headers, params, json)
        except requests.Timeout as exc:
            raise TemporaryFailure("FreshBooks did not answer in time.", detail=f"{method} {url}: timeout",
                                   provider="FreshBooks") from exc
        except requests.ConnectionError as exc:
            raise TemporaryFailure("The connection to FreshBooks failed.",
                                   detail=f"{method} {url}: {type(exc).__name__}", provider="FreshBooks") from exc

        status = response.status_code
        if 200 <= status < 300:
            return _json_or_none(response)
        if status == 401 and not _retried:
            # Expired or revoked access token: refresh once (under the shared lock) and retry.
            self.tokens.refresh_after_401(access_token)
            return self._send(method, url, record_type=record_type, params=params, json=json, throttled=throttled,
                              _retried=True)
        body = _json_or_none(response)
        errors = mapping.error_messages(body)
        if status == 401 or (status == 403 and any(e.get("errno") == mapping.ACCESS_DENIED for e in errors)):
            reason = (errors[0]["message"] if errors else "") or str(status)
            if self.on_forbidden:
                self.on_forbidden(reason)
            raise NeedsReconnect(detail=f"{method} {url}: {status} {reason}", provider="FreshBooks")
        if status == 404:
            raise RemoteNotFound(detail=f"{method} {url}: 404", provider="FreshBooks")
        if status == 429:
            retry_after = _float(response.headers.get("Retry-After"), DEFAULT_RETRY_AFTER)
            if self.throttle is not None:
                self.throttle.block_for(retry_after)
            raise RateLimited(retry_after, "429", provider="FreshBooks")
        if status >= 500:
            raise TemporaryFailure(detail=f"{method} {url}: {status}", provider="FreshBooks")
        if 400 <= status < 500 and errors:
            if any(e.get("errno") == 409 for e in errors):  # a concurrent modification: worth another attempt
                raise TemporaryFailure("FreshBooks was changing the record at the same moment.",
                                       detail=f"{method} {url}: errno 409", provider="FreshBooks")
            raise Refused(record_type, errors, status)
        raise TemporaryFailure(f"FreshBooks answered with an unexpected status ({status}).",
                               detail=f"{method} {url}", provider="FreshBooks")

    def _http(self, method, url, headers, params, json):
        self.calls_made += 1
        log.info("freshbooks %s %s", method, url.replace(self.api_url, ""))
        return self.http.request(method, url, headers=headers, params=params, json=json, timeout=self.timeout)


def _float(value, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _json_or_none(response):
    try:
        return response.json() if response.content else None
    except ValueError:
        return None
