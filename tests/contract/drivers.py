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


# Every push provider the suite runs against (FreshBooks' driver goes here too).
DRIVERS: list[PushDriver] = [XeroDriver()]


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
