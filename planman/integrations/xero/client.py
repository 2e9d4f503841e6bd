"""The only code that speaks HTTP to Xero.

Calls go through the ledgers' shared transport (``planman.integrations.http``:
bearer token, JSON, timeout, the shared per-tenant throttle, one refresh on a
401); this client adds the tenant header to accounting calls and reads Xero's
refusals and limit headers. Xero's answers come back as plain dicts or as the
typed errors of ``planman.integrations.errors``; nothing above this module
sees HTTP."""
from __future__ import annotations

from typing import Any, Callable

from planman.integrations.errors import RemoteNotFound, TemporaryFailure, ValidationFailed
from planman.integrations.http import BearerApiClient, json_or_none, number_or

NAME = "Xero"  # what messages call it (errors.py fills {provider} with it)

ACCOUNTING_PATH = "/api.xro/2.0"
SEARCH_PAGE_SIZE = 100  # Xero's own page size
SEARCH_MAX_PAGES = 5  # a name found in more than 500 contacts' text is not worth more calls


class QueryRefused(ValidationFailed):
    """Xero could not parse a lookup's filter (``QueryParseException``)."""


def validation_messages(body: Any) -> list[str]:
    """Xero's validation messages, verbatim, from a 400 body or a batch element."""
    messages: list[str] = []
    if not isinstance(body, dict):
        return messages
    for element in body.get("Elements") or [body]:
        for error in element.get("ValidationErrors") or []:
            if error.get("Message") and error["Message"] not in messages:
                messages.append(error["Message"])
    if not messages and body.get("Message") and body.get("Type") == "ValidationException":
        messages.append(body["Message"])
    return messages


class XeroClient(BearerApiClient):
    label = NAME
    key = "xero"
    default_retry_after = 1.0

    def __init__(self, *, tenant_id: str | None, on_tenant_forbidden: Callable[[str], None] | None = None,
                 **transport):
        super().__init__(on_forbidden=on_tenant_forbidden, **transport)
        self.tenant_id = tenant_id

    # -- identity ---------------------------------------------------------
    def list_connections(self, auth_event_id: str | None = None) -> list[dict]:
        """The organisations the token reaches; with ``auth_event_id``, only
        those one approval added (Xero's ``authEventId`` filter)."""
        params = {"authEventId": auth_event_id} if auth_event_id else None
        return self._send("GET", f"{self.api_url}/connections", tenant=False, params=params) or []

    def delete_connection(self, connection_id: str) -> None:
        self._send("DELETE", f"{self.api_url}/connections/{connection_id}", tenant=False)

    # -- settings ---------------------------------------------------------
    def organisation(self) -> dict:
        return (self._accounting("GET", "/Organisation").get("Organisations") or [{}])[0]

    def accounts(self) -> list[dict]:
        return self._accounting("GET", "/Accounts").get("Accounts") or []

    def tax_rates(self) -> list[dict]:
        return self._accounting("GET", "/TaxRates").get("TaxRates") or []

    def currencies(self) -> list[dict]:
        return self._accounting("GET", "/Currencies").get("Currencies") or []

    # -- contacts ---------------------------------------------------------
    def find_contacts(self, *, where: str | None = None, ids: list[str] | None = None) -> list[dict]:
        params: dict[str, str] = {}
        if where:
            params["where"] = where
        if ids:
            params["IDs"] = ",".join(ids)
        return self._accounting("GET", "/Contacts", params=params).get("Contacts") or []

    def get_contact(self, contact_id: str) -> dict:
        """One contact, archived or not."""
        contacts = self._accounting("GET", f"/Contacts/{contact_id}").get("Contacts") or []
        if not contacts:
            raise RemoteNotFound()
        return contacts[0]

    def modified_since(self, collection: str, since, page: int, **params) -> list[dict]:
        """One page (100) of the invoices or contacts created or changed after
        ``since`` (a UTC datetime), oldest change first: Xero's If-Modified-Since header."""
        query = {"page": str(page), "order": "UpdatedDateUTC ASC", **params}
        if collection == "Invoices":
            query["unitdp"] = "4"
        body = self._accounting("GET", f"/{collection}", params=query,
                                headers={"If-Modified-Since": since.strftime("%Y-%m-%dT%H:%M:%S+00:00")})
        return body.get(collection) or []

    def search_contacts(self, term: str) -> list[dict]:
        """Active contacts whose name, names, number or e-mail contain ``term``,
        ignoring case (``searchTerm``): finds names no ``where`` filter can hold."""
        found: list[dict] = []
        for page in range(1, SEARCH_MAX_PAGES + 1):
            params = {"searchTerm": term, "page": str(page), "pageSize": str(SEARCH_PAGE_SIZE)}
            contacts = self._accounting("GET", "/Contacts", params=params).get("Contacts") or []
            found.extend(contacts)
            if len(contacts) < SEARCH_PAGE_SIZE:
                break
        return found

    def create_contacts(self, contacts: list[dict], idempotency_key: str) -> list[dict]:
        body = self._accounting(
            "PUT", "/Contacts", params={"summarizeErrors": "false"}, json={"Contacts": contacts},
            idempotency_key=idempotency_key,
        )
        return body.get("Contacts") or []

    def save_contacts(self, contacts: list[dict], idempotency_key: str) -> list[dict]:
        """Create or update many (elements with ContactID update); per-element results."""
        body = self._accounting(
            "POST", "/Contacts", params={"summarizeErrors": "false"}, json={"Contacts": contacts},
            idempotency_key=idempotency_key,
        )
        return body.get("Contacts") or []

    def update_contact(self, contact_id: str, contact: dict, idempotency_key: str) -> dict:
        body = self._accounting(
            "POST", f"/Contacts/{contact_id}", json={"Contacts": [contact]}, idempotency_key=idempotency_key
        )
        return (body.get("Contacts") or [{}])[0]

    # -- invoices ---------------------------------------------------------
    def find_invoices(self, *, numbers: list[str] | None = None, ids: list[str] | None = None) -> list[dict]:
        params = {"unitdp": "4"}
        if numbers:
            params["InvoiceNumbers"] = ",".join(numbers)
        if ids:
            params["IDs"] = ",".join(ids)
        return self._accounting("GET", "/Invoices", params=params).get("Invoices") or []

    def get_invoice(self, invoice_id: str) -> dict:
        body = self._accounting("GET", f"/Invoices/{invoice_id}", params={"unitdp": "4"})
        invoices = body.get("Invoices") or []
        if not invoices:
            raise RemoteNotFound(provider=NAME)
        return invoices[0]

    def create_invoices(self, invoices: list[dict], idempotency_key: str) -> list[dict]:
        body = self._accounting(
            "PUT", "/Invoices", params={"summarizeErrors": "false", "unitdp": "4"}, json={"Invoices": invoices},
            idempotency_key=idempotency_key,
        )
        return body.get("Invoices") or []

    def save_invoices(self, invoices: list[dict], idempotency_key: str) -> list[dict]:
        body = self._accounting(
            "POST", "/Invoices", params={"summarizeErrors": "false", "unitdp": "4"}, json={"Invoices": invoices},
            idempotency_key=idempotency_key,
        )
        return body.get("Invoices") or []

    def update_invoice(self, invoice_id: str, invoice: dict, idempotency_key: str) -> dict:
        body = self._accounting(
            "POST", f"/Invoices/{invoice_id}", params={"unitdp": "4"}, json={"Invoices": [invoice]},
            idempotency_key=idempotency_key,
        )
        return (body.get("Invoices") or [{}])[0]

    # -- payments ---------------------------------------------------------
    def find_payments(self, reference: str) -> list[dict]:
        params = {"where": f'Reference=="{reference}"'}
        return self._accounting("GET", "/Payments", params=params).get("Payments") or []

    def get_payment(self, payment_id: str) -> dict:
        payments = self._accounting("GET", f"/Payments/{payment_id}").get("Payments") or []
        if not payments:
            raise RemoteNotFound(provider=NAME)
        return payments[0]

    def create_payment(self, payment: dict, idempotency_key: str) -> dict:
        body = self._accounting("PUT", "/Payments", json={"Payments": [payment]}, idempotency_key=idempotency_key)
        return (body.get("Payments") or [{}])[0]

    def delete_payment(self, payment_id: str, idempotency_key: str) -> dict:
        body = self._accounting("POST", f"/Payments/{payment_id}", json={"Status": "DELETED"},
                                idempotency_key=idempotency_key)
        return (body.get("Payments") or [{}])[0]

    # -- transport --------------------------------------------------------
    def _accounting(self, method: str, path: str, **kwargs) -> dict:
        return self._send(method, f"{self.api_url}{ACCOUNTING_PATH}{path}", tenant=True, **kwargs) or {}

    def _send(self, method, url, *, tenant, params=None, json=None, idempotency_key=None, headers=None):
        headers = dict(headers or {})
        if tenant:
            headers["xero-tenant-id"] = self.tenant_id
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = self.call(method, url, params=params, json=json, headers=headers, throttled=tenant)
        if response.status_code in (200, 201):
            return response.json() if response.content else None
        if response.status_code == 204:
            return None
        raise TemporaryFailure(f"Xero answered with an unexpected status ({response.status_code}).",
                               detail=f"{method} {url}", provider=NAME)

    # -- what Xero's answers mean -----------------------------------------
    def check_answer(self, response, shown: str) -> None:
        """Xero tells us what is left; stop early instead of collecting 429s."""
        if self.throttle is None:
            return
        day_left = response.headers.get("X-DayLimit-Remaining")
        if day_left is not None and number_or(day_left, default=1) <= 0:
            self.throttle.block_for(number_or(response.headers.get("Retry-After"), default=3600))
        minute_left = response.headers.get("X-MinLimit-Remaining")
        if minute_left is not None and number_or(minute_left, default=1) <= 0:
            self.throttle.block_for(number_or(response.headers.get("Retry-After"), default=60))

    def forbidden_reason(self, response) -> str:
        body = json_or_none(response) or {}
        return str(body.get("detail") or body.get("Detail") or body.get("title") or response.status_code)

    def rate_limit_problem(self, response) -> str:
        return response.headers.get("X-Rate-Limit-Problem", "")

    def refuse(self, response, record_type: str, shown: str) -> None:
        status = response.status_code
        if status == 400:
            body = json_or_none(response)
            if isinstance(body, dict) and body.get("Type") == "QueryParseException":
                raise QueryRefused([f"Xero could not run PlanMan's search for this record ({body.get('Message') or 'syntax error'})."])
            raise ValidationFailed(validation_messages(body) or ["Xero refused the request."])
        if status == 412:
            raise TemporaryFailure(detail=f"{shown}: {status}", provider=NAME)
