"""The only code that speaks HTTP to Sage Accounting (API v3.1).

A thin requests client (Sage publishes no SDK, REFERENCE.md section 8). Every
call carries the bearer token, asks for JSON, has a timeout and passes the
shared per-business throttle; every call about a business sends
``X-Business`` and checks the header Sage echoes: an answer for another
business is a misrouted call and stops the push before anything is recorded
(section 2). Answers come back as bare objects or lists of ``$items``, or as
the typed errors of ``planman.integrations.errors``."""
from __future__ import annotations

import logging
from typing import Any, Callable

import requests

from planman.integrations.errors import (
    IntegrationError,
    NeedsReconnect,
    RateLimited,
    RemoteNotFound,
    TemporaryFailure,
    ValidationFailed,
)
from planman.integrations.sage import mapping
from planman.integrations.throttle import TenantThrottle

log = logging.getLogger(__name__)

ITEMS_PER_PAGE = 200  # the most a list page holds (REFERENCE.md section 4)
MAX_PAGES = 5  # a lookup matching more than 1,000 records is not a lookup
DEFAULT_RETRY_AFTER = 60.0  # Sage's Retry-After is unconfirmed (REFERENCE.md section 5)


class Refused(ValidationFailed):
    """Sage refused the request; ``errors`` keeps its array (severity, code, message, source)."""

    def __init__(self, record_type: str, errors: list[dict], status: int):
        self.errors = errors
        self.status = status
        messages = [e["message"] for e in errors if e.get("message")] or [f"Sage refused the request ({status})."]
        super().__init__(messages, mapping.field_errors(record_type, errors), provider="Sage")

    @property
    def codes(self) -> set[str]:
        return {e.get("code") for e in self.errors}

    def about(self, source: str) -> bool:
        return any((e.get("source") or "").split(".")[0].split("[")[0] == source for e in self.errors)


class Misrouted(IntegrationError):
    """Sage answered for another business than the one asked for: nothing of the
    answer is used, and the push stops (retrying would not make it safer)."""

    def __init__(self, asked: str, answered: str, what: str):
        super().__init__(
            "Sage answered this call for a different business than the one this firm is connected to, so PlanMan "
            "stopped and recorded nothing. Check the connection under Setup > Integrations > Sage before retrying.",
            detail=f"{what}: X-Business sent {asked}, echoed {answered}", provider="Sage")


class SageClient:
    def __init__(self, *, api_url: str, business_id: str | None, tokens, throttle: TenantThrottle | None,
                 timeout: float, on_forbidden: Callable[[str], None] | None = None,
                 http: requests.Session | None = None):
        self.api_url = api_url.rstrip("/")
        self.business_id = business_id
        self.tokens = tokens
        self.throttle = throttle
        self.timeout = timeout
        self.on_forbidden = on_forbidden
        self.http = http or requests.Session()
        self.calls_made = 0

    # -- the user's businesses (no X-Business: they are what it is chosen from) ---------
    def businesses(self) -> list[dict]:
        return self._list("businesses", {}, business=False)

    # -- lists for the settings pickers ------------------------------------------------
    def business(self) -> dict:
        return self._send("GET", f"businesses/{self.business_id}", record_type="") or {}

    def income_ledger_accounts(self) -> list[dict]:
        return self._list("ledger_accounts", {"visible_in": "sales", "attributes": "all"})

    def tax_rates(self) -> list[dict]:
        return self._list("tax_rates", {"attributes": "all"})

    # -- contacts ------------------------------------------------------------------------
    def find_contacts(self, search: str) -> list[dict]:
        return self._list("contacts", {"search": search, "contact_type_id": mapping.CUSTOMER, "attributes": "all"},
                          record_type="client")

    def get_contact(self, contact_id: str) -> dict:
        return self._send("GET", f"contacts/{contact_id}", record_type="client") or {}

    def create_contact(self, payload: dict) -> dict:
        return self._send("POST", "contacts", json=mapping.contact_body(payload), record_type="client") or {}

    def update_contact(self, contact_id: str, payload: dict) -> dict:
        return self._send("PUT", f"contacts/{contact_id}", json=mapping.contact_body(payload),
                          record_type="client") or {}

    # -- sales invoices -----------------------------------------------------------------
    def find_invoices(self, number: str) -> list[dict]:
        return self._list("sales_invoices", {"search": number, "attributes": "all"}, record_type="invoice")

    def get_invoice(self, invoice_id: str) -> dict:
        return self._send("GET", f"sales_invoices/{invoice_id}", record_type="invoice") or {}

    def create_invoice(self, payload: dict) -> dict:
        return self._send("POST", "sales_invoices", json=mapping.invoice_body(payload), record_type="invoice") or {}

    def update_invoice(self, invoice_id: str, payload: dict) -> dict:
        return self._send("PUT", f"sales_invoices/{invoice_id}", json=mapping.invoice_body(payload),
                          record_type="invoice") or {}

    def void_invoice(self, invoice_id: str, reason: str) -> None:
        """Void a posted invoice (Sage wants a reason) or delete a draft (it takes none)."""
        self._send("DELETE", f"sales_invoices/{invoice_id}", params={"void_reason": reason}, record_type="invoice")

    # -- transport --------------------------------------------------------------------
    def _list(self, path: str, params: dict, *, record_type: str = "", business: bool = True) -> list[dict]:
        found: list[dict] = []
        for page in range(1, MAX_PAGES + 1):
            body = self._send("GET", path, params={**params, "page": page, "items_per_page": ITEMS_PER_PAGE},
                              record_type=record_type, business=business) or {}
            found.extend(item for item in body.get("$items") or [] if isinstance(item, dict))
            if not body.get("$next"):
                break
        return found

    def _send(self, method: str, path: str, *, record_type: str, params=None, json=None, business: bool = True,
              _retried: bool = False) -> Any:
        url = f"{self.api_url}/{path}"
        access_token = self.tokens.access_token()
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        if business:
            headers["X-Business"] = self.business_id
        try:
            if self.throttle is not None:
                with self.throttle.slot():
                    response = self._http(method, url, headers, params, json)
            else:
                response = self._http(method, url, headers, params, json)
        except requests.Timeout as exc:
            raise TemporaryFailure("Sage did not answer in time.", detail=f"{method} /{path}: timeout",
                                   provider="Sage") from exc
        except requests.ConnectionError as exc:
            raise TemporaryFailure("The connection to Sage failed.", detail=f"{method} /{path}: {type(exc).__name__}",
                                   provider="Sage") from exc

        status = response.status_code
        echoed = response.headers.get("X-Business")
        if business and echoed and echoed != self.business_id:
            raise Misrouted(self.business_id or "", echoed, f"{method} /{path}")
        if 200 <= status < 300:
            return _json_or_none(response)
        errors = mapping.error_items(_json_or_none(response))
        if status == 401 and not _retried and not _no_subscription(errors):
            # An expired or revoked access token: refresh once (under the shared lock) and retry.
            self.tokens.refresh_after_401(access_token)
            return self._send(method, path, record_type=record_type, params=params, json=json, business=business,
                              _retried=True)
        if status in (401, 403):
            reason = (errors[0]["message"] if errors else "") or str(status)
            if self.on_forbidden:
                self.on_forbidden(reason)
            raise NeedsReconnect(detail=f"{method} /{path}: {status} {reason}", provider="Sage")
        if status == 404:
            raise RemoteNotFound(detail=f"{method} /{path}: 404", provider="Sage")
        if status == 429:
            retry_after = _float(response.headers.get("Retry-After"), DEFAULT_RETRY_AFTER)
            if self.throttle is not None:
                self.throttle.block_for(retry_after)
            raise RateLimited(retry_after, "429", provider="Sage")
        if status >= 500:
            raise TemporaryFailure(detail=f"{method} /{path}: {status}", provider="Sage")
        if 400 <= status < 500:
            raise Refused(record_type, errors, status)
        raise TemporaryFailure(f"Sage answered with an unexpected status ({status}).", detail=f"{method} /{path}",
                               provider="Sage")

    def _http(self, method, url, headers, params, json):
        self.calls_made += 1
        log.info("sage %s %s", method, url.replace(self.api_url, ""))
        return self.http.request(method, url, headers=headers, params=params, json=json, timeout=self.timeout)


def _no_subscription(errors: list[dict]) -> bool:
    """Sage's 401 for a business whose subscription lapsed: a new token would not help."""
    return any("subscription" in (e.get("message") or "").lower() for e in errors)


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
