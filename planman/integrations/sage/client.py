"""The only code that speaks HTTP to Sage Accounting (API v3.1).

A thin client (Sage publishes no SDK, REFERENCE.md section 8) on the ledgers'
shared transport (``planman.integrations.http``: bearer token, JSON, timeout,
the shared per-business throttle). Every call about a business sends
``X-Business`` and checks the header Sage echoes: an answer for another
business is a misrouted call and stops the push before anything is recorded
(section 2). Answers come back as bare objects or lists of ``$items``, or as
the typed errors of ``planman.integrations.errors``."""
from __future__ import annotations

from typing import Any

from planman.integrations.errors import IntegrationError, ValidationFailed
from planman.integrations.http import BearerApiClient, json_or_none
from planman.integrations.sage import mapping

ITEMS_PER_PAGE = 200  # the most a list page holds (REFERENCE.md section 4)
MAX_PAGES = 5  # a lookup matching more than 1,000 records is not a lookup


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


class SageClient(BearerApiClient):
    label = "Sage"
    key = "sage"
    default_retry_after = 60.0  # Sage's Retry-After is unconfirmed (REFERENCE.md section 5)

    def __init__(self, *, business_id: str | None, **transport):
        super().__init__(**transport)
        self.business_id = business_id

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

    def _send(self, method: str, path: str, *, record_type: str, params=None, json=None,
              business: bool = True) -> Any:
        headers = {"X-Business": self.business_id} if business else {}
        response = self.call(method, f"{self.api_url}/{path}", record_type=record_type, params=params, json=json,
                             headers=headers, shown=f"{method} /{path}")
        return json_or_none(response)

    # -- what Sage's answers mean -----------------------------------------------------
    def check_answer(self, response, shown: str) -> None:
        """An answer for another business than the call named is misrouted: none of it is used."""
        asked = response.request.headers.get("X-Business") if response.request is not None else None
        echoed = response.headers.get("X-Business")
        if asked and echoed and echoed != asked:
            raise Misrouted(asked, echoed, shown)

    def refresh_helps(self, response) -> bool:
        return not _no_subscription(_errors(response))

    def forbidden_reason(self, response) -> str:
        errors = _errors(response)
        return (errors[0]["message"] if errors else "") or str(response.status_code)

    def refuse(self, response, record_type: str, shown: str) -> None:
        if 400 <= response.status_code < 500:
            raise Refused(record_type, _errors(response), response.status_code)


def _errors(response) -> list[dict]:
    return mapping.error_items(json_or_none(response))


def _no_subscription(errors: list[dict]) -> bool:
    """Sage's 401 for a business whose subscription lapsed: a new token would not help."""
    return any("subscription" in (e.get("message") or "").lower() for e in errors)
