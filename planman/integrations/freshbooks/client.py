"""The only code that speaks HTTP to FreshBooks.

A thin requests client rather than ``freshbooks-sdk``: the SDK keeps tokens
in its own object with no storage or lock (PlanMan's single-use refresh
tokens must be rotated under the shared lock and committed before use), it
retries by itself (PlanMan's push lifecycle decides retries, and must never
sleep in a worker on a 429), and it reads its base URL from the process
environment. Calls go through the ledgers' shared transport
(``planman.integrations.http``: bearer token, JSON, timeout, the shared
per-account throttle); this client reads FreshBooks' error envelopes. Answers
come back as the ``result`` dict or as the typed errors of
``planman.integrations.errors``."""
from __future__ import annotations

from typing import Any

from planman.integrations.errors import TemporaryFailure, ValidationFailed
from planman.integrations.freshbooks import mapping
from planman.integrations.http import BearerApiClient, json_or_none

PER_PAGE = 100  # the most a list page holds (REFERENCE.md section 4)
MAX_PAGES = 5  # a lookup matching more than 500 records is not a lookup


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


class FreshBooksClient(BearerApiClient):
    label = "FreshBooks"
    key = "freshbooks"
    default_retry_after = 60.0  # FreshBooks' Retry-After is unconfirmed (REFERENCE.md section 5)

    def __init__(self, *, account_id: str | None, **transport):
        super().__init__(**transport)
        self.account_id = account_id

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
        if isinstance(response, dict) and response.get("errors"):  # a refusal in a 2xx's envelope is still one
            raise Refused(record_type, mapping.error_messages(body), 200)
        return (response or {}).get("result") or {}

    def _send(self, method, url, *, record_type: str, params=None, json=None, throttled=True) -> Any:
        return json_or_none(self.call(method, url, record_type=record_type, params=params, json=json,
                                      throttled=throttled))

    # -- what FreshBooks' refusals mean ------------------------------------
    def needs_reconnect(self, response) -> bool:
        status = response.status_code
        return status == 401 or (status == 403 and any(e.get("errno") == mapping.ACCESS_DENIED
                                                       for e in _errors(response)))

    def forbidden_reason(self, response) -> str:
        errors = _errors(response)
        return (errors[0]["message"] if errors else "") or str(response.status_code)

    def refuse(self, response, record_type: str, shown: str) -> None:
        errors = _errors(response)
        if 400 <= response.status_code < 500 and errors:
            if any(e.get("errno") == 409 for e in errors):  # a concurrent modification: worth another attempt
                raise TemporaryFailure("FreshBooks was changing the record at the same moment.",
                                       detail=f"{shown}: errno 409", provider=self.label)
            raise Refused(record_type, errors, response.status_code)


def _errors(response) -> list[dict]:
    return mapping.error_messages(json_or_none(response))
