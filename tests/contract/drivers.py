"""How the contract suite reaches each push provider's stand-in.

The suite (``test_push_contract.py``) drives PlanMan only through its pages
and real rq workers; what differs per provider is how to connect through its
stand-in's consent page, how to read what arrived there, and which counters
say that a fault fired. A provider plugs in with one ``PushDriver`` subclass
appended to ``DRIVERS``; the cases then run against it unchanged.

Faults are injected through the control routes every stand-in shares
(``standins/core/control.py``: ``POST /<prefix>/_control/faults`` with
``fail_next``, ``drop_next_writes``, ``rate_limit_next`` + ``retry_after``;
``POST /<prefix>/_control/expire_tokens``), so drivers say nothing about them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Connection
from tests.fixtures.services import Sandbox, sandbox_config
from tests.helpers import post_form
from tests.integration_helpers import choose_settings, form_fields


@dataclass
class RemoteClient:
    """A client as the stand-in holds it, in the suite's words."""

    external_id: str
    name: str
    email: str


@dataclass
class RemoteInvoice:
    external_id: str
    number: str
    is_draft: bool
    total: Decimal
    reference: str


class PushDriver:
    """One push provider's stand-in, as the contract suite needs it."""

    key: str = ""  # the provider's key in PlanMan's registry
    prefix: str = ""  # the stand-in's path prefix under the stand-ins' server
    # Bulk sends of this many records must finish within this many seconds
    # (a bound for the wait, not a timing assertion).
    bulk_timeout: float = 120

    def config(self, standin_url: str) -> dict:
        """PlanMan config (and worker environment) pointing the provider at the stand-in."""
        raise NotImplementedError

    def connect(self, client, standin: Sandbox):
        """Connect the logged-in admin's firm through the real flow (PlanMan's Connect
        button, the stand-in's consent page, PlanMan's callback); return PlanMan's answer."""
        raise NotImplementedError

    def settle(self, firm_id: int) -> None:
        """Wait for what the worker loads after connecting; make the choices invoices need."""
        raise NotImplementedError

    def clients(self, standin: Sandbox) -> list[RemoteClient]:
        raise NotImplementedError

    def invoices(self, standin: Sandbox) -> list[RemoteInvoice]:
        raise NotImplementedError

    def refreshes(self, standin: Sandbox) -> int:
        """Token refreshes the stand-in has answered (each one rotates the refresh token)."""
        raise NotImplementedError

    def rate_limited(self, standin: Sandbox) -> int:
        """Calls the stand-in answered with 429."""
        raise NotImplementedError

    def server_errors(self, standin: Sandbox) -> int:
        """Calls the stand-in answered with an injected 5xx."""
        raise NotImplementedError

    def lost_responses(self, standin: Sandbox) -> int:
        raise NotImplementedError


def consent(start, *, choose: list[str] | None = None, field: str = "tenant"):
    """Follow PlanMan's redirect to a stand-in's consent page and allow access;
    return the callback URL (path and query) PlanMan is sent back to."""
    assert start.status_code == 302, start.get_data(as_text=True)
    consent_url = start.headers["Location"]
    page = requests.get(consent_url, timeout=10)
    assert page.status_code == 200, page.text
    fields = form_fields(page.text)
    if choose is not None:
        fields.pop(field, None)
        fields[field] = choose
    answer = requests.post(consent_url.split("?")[0], data={**fields, "decision": "allow"}, allow_redirects=False,
                           timeout=10)
    assert answer.status_code in (302, 303), answer.text
    back = urlsplit(answer.headers["Location"])
    return f"{back.path}?{back.query}"


class XeroDriver(PushDriver):
    key = "xero"
    prefix = "xero"

    def __init__(self):
        from standins.xero.demo import UK_TENANT_ID

        self.tenant_id = UK_TENANT_ID

    def config(self, standin_url: str) -> dict:
        return sandbox_config(standin_url)

    def connect(self, client, standin: Sandbox):
        start = post_form(client, "/integrations/xero/connect", {}, form_url="/integrations/xero")
        return client.get(consent(start, choose=[self.tenant_id]))

    def settle(self, firm_id: int) -> None:
        choose_settings(firm_id)  # waits for the accounts and tax rates, then picks account 200

    def _organisation(self, standin: Sandbox) -> dict:
        return next(o for o in standin.state()["organisations"] if o["tenantId"] == self.tenant_id)

    def clients(self, standin: Sandbox) -> list[RemoteClient]:
        return [RemoteClient(c["ContactID"], c["Name"], c.get("EmailAddress") or "")
                for c in self._organisation(standin)["contacts"]]

    def invoices(self, standin: Sandbox) -> list[RemoteInvoice]:
        return [RemoteInvoice(i["InvoiceID"], i.get("InvoiceNumber") or "", i["Status"] == "DRAFT",
                              Decimal(str(i["Total"])), i.get("Reference") or "")
                for i in self._organisation(standin)["invoices"]]

    def refreshes(self, standin: Sandbox) -> int:
        return standin.stats()["refreshes"]

    def rate_limited(self, standin: Sandbox) -> int:
        return standin.stats()["rate_limited"]

    def server_errors(self, standin: Sandbox) -> int:
        return standin.stats()["injected_5xx"]

    def lost_responses(self, standin: Sandbox) -> int:
        return standin.stats()["lost_responses"]


class FreshBooksDriver(PushDriver):
    """FreshBooks through its stand-in: the consent page covers every business and
    PlanMan's picker asks which (the UK one); nothing to choose in settings."""

    key = "freshbooks"
    prefix = "freshbooks"

    def __init__(self):
        from standins.freshbooks.demo import UK_ACCOUNT_ID

        self.account_id = UK_ACCOUNT_ID

    def config(self, standin_url: str) -> dict:
        from tests.fixtures.services import freshbooks_config

        # The bulk case sends 120 clients (a lookup and a create each): PlanMan's
        # conservative default budget would take six minutes over it.
        return {**freshbooks_config(standin_url), "FRESHBOOKS_MAX_PER_MINUTE": 600, "FRESHBOOKS_MAX_IN_FLIGHT": 5,
                "FRESHBOOKS_RECORD_URL": f"{standin_url}/accounts/{{account_id}}/{{kind}}s/{{id}}"}

    def connect(self, client, standin: Sandbox):
        standin.control("limits", per_minute=1000)  # the stand-in's guessed limit, raised to match
        start = post_form(client, "/integrations/freshbooks/connect", {}, form_url="/integrations/freshbooks")
        picker = client.get(consent(start))
        assert picker.status_code == 302 and picker.headers["Location"].endswith("/integrations/freshbooks/choose")
        return post_form(client, "/integrations/freshbooks/choose", {"tenant_id": self.account_id})

    def settle(self, firm_id: int) -> None:
        wait_for(lambda: (connection_of(firm_id, self.key).settings or {}).get("details_state") == "loaded",
                 timeout=20, what="FreshBooks' taxes to load")

    def _business(self, standin: Sandbox) -> dict:
        return next(a for a in standin.state()["accounts"] if a["account_id"] == self.account_id)

    def clients(self, standin: Sandbox) -> list[RemoteClient]:
        return [RemoteClient(str(c["id"]), c.get("organization") or "", c.get("email") or "")
                for c in self._business(standin)["clients"] if c.get("vis_state", 0) != 1]

    def invoices(self, standin: Sandbox) -> list[RemoteInvoice]:
        return [RemoteInvoice(str(i["id"]), i.get("invoice_number") or "", i.get("v3_status") == "draft",
                              Decimal(i["amount"]["amount"]), i.get("po_number") or "")
                for i in self._business(standin)["invoices"] if i.get("vis_state", 0) != 1]

    def refreshes(self, standin: Sandbox) -> int:
        return standin.stats()["refreshes"]

    def rate_limited(self, standin: Sandbox) -> int:
        return standin.stats()["rate_limited"]

    def server_errors(self, standin: Sandbox) -> int:
        return standin.stats()["injected_5xx"]

    def lost_responses(self, standin: Sandbox) -> int:
        return standin.stats()["lost_responses"]


class SageDriver(PushDriver):
    """Sage through its stand-in: the consent page picks the lead business, the token
    reaches the user's two (GB and IE), so PlanMan's picker asks which (GB); the
    worker loads income accounts and tax rates, of which the only choice left
    open (several income accounts) is made here."""

    key = "sage"
    prefix = "sage"

    def __init__(self):
        from standins.sage.demo import GB_BUSINESS_ID

        self.business_id = GB_BUSINESS_ID

    def config(self, standin_url: str) -> dict:
        from tests.fixtures.services import sage_config

        # The bulk case sends 120 clients (a lookup and a create each) within PlanMan's budget.
        return {**sage_config(standin_url), "SAGE_MAX_PER_MINUTE": 600, "SAGE_MAX_IN_FLIGHT": 5}

    def connect(self, client, standin: Sandbox):
        standin.control("limits", per_minute=1000)
        start = post_form(client, "/integrations/sage/connect", {}, form_url="/integrations/sage")
        picker = client.get(consent(start, choose=[self.business_id], field="business_id"))
        assert picker.status_code == 302 and picker.headers["Location"].endswith("/integrations/sage/choose")
        return post_form(client, "/integrations/sage/choose", {"tenant_id": self.business_id})

    def settle(self, firm_id: int) -> None:
        from standins.sage.demo import ledger_account_id

        connection = wait_for(lambda: (c := connection_of(firm_id, self.key)) and
                              (c.settings or {}).get("details_state") == "loaded" and c,
                              timeout=20, what="Sage's income accounts and tax rates to load")
        connection.settings = {**connection.settings,
                               "ledger_account_id": ledger_account_id(self.business_id, "4000")}
        db.session.commit()

    def _business(self, standin: Sandbox) -> dict:
        return next(b for b in standin.state()["businesses"] if b["id"] == self.business_id)

    def clients(self, standin: Sandbox) -> list[RemoteClient]:
        return [RemoteClient(c["id"], c.get("name") or "", (c.get("main_contact_person") or {}).get("email") or "")
                for c in self._business(standin)["contacts"]]

    def invoices(self, standin: Sandbox) -> list[RemoteInvoice]:
        return [RemoteInvoice(i["id"], i.get("invoice_number") or "", (i.get("status") or {}).get("id") == "DRAFT",
                              Decimal(str(i["total_amount"])), i.get("reference") or "")
                for i in self._business(standin)["sales_invoices"]]

    def refreshes(self, standin: Sandbox) -> int:
        return standin.stats()["refreshes"]

    def rate_limited(self, standin: Sandbox) -> int:
        return standin.stats()["rate_limited"]

    def server_errors(self, standin: Sandbox) -> int:
        return standin.stats()["injected_5xx"]

    def lost_responses(self, standin: Sandbox) -> int:
        return standin.stats()["lost_responses"]


# Every push provider the suite runs against.
DRIVERS: list[PushDriver] = [XeroDriver(), FreshBooksDriver(), SageDriver()]


def connection_of(firm_id: int, provider_key: str) -> Connection:
    db.session.expire_all()
    return db.session.scalar(sa.select(Connection).where(Connection.firm_id == firm_id,
                                                         Connection.provider == provider_key))


def wait_for(predicate, *, timeout: float, what: str):
    """Poll ``predicate`` (expiring the session first) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
