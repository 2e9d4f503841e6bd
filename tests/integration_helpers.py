"""Helpers for tests that run against the Xero stand-in with real workers:
connect a firm through the real OAuth flow, read and re-post HTML forms, and
wait for pushes to end."""
from __future__ import annotations

import time
from html.parser import HTMLParser
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Connection, PushJob, TaxRate
from tests.helpers import post_form
from standins.xero.demo import UK_TENANT_ID


class _FormParser(HTMLParser):
    """Collects the fields of every <form> as a browser would submit them."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._select = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
        if not self.forms:
            return
        fields = self.forms[-1]["fields"]
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    fields[name] = a.get("value", "on")
            elif kind not in ("submit", "button"):
                fields[name] = a.get("value", "")
        elif tag == "select" and name:
            self._select = name
            fields.setdefault(name, None)
        elif tag == "option" and self._select:
            if fields.get(self._select) is None or "selected" in a:
                fields[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            fields[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea and self.forms:
            self.forms[-1]["fields"][self._textarea] += data


def form_fields(html: str, action_contains: str = "") -> dict:
    """The fields a browser would submit from the first form whose action matches."""
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        if action_contains in form["action"]:
            return {k: ("" if v is None else v) for k, v in form["fields"].items()}
    raise AssertionError(f"no form with action containing {action_contains!r}")


def connect_xero(client, sandbox, *, tenants=(UK_TENANT_ID,)):
    """Connect the logged-in admin's firm through the real flow: PlanMan's
    Connect button, the stand-in's consent page, PlanMan's callback."""
    start = post_form(client, "/integrations/xero/connect", {}, form_url="/integrations/xero")
    assert start.status_code == 302, start.get_data(as_text=True)
    consent_url = start.headers["Location"]
    consent = requests.get(consent_url, timeout=10)
    assert consent.status_code == 200, consent.text
    fields = form_fields(consent.text)
    fields.pop("tenant", None)
    answer = requests.post(consent_url.split("?")[0], data={**fields, "tenant": list(tenants), "decision": "allow"},
                           allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text
    back = urlsplit(answer.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def choose_settings(firm_id: int, *, timeout: float = 20, **settings) -> Connection:
    """Wait for the organisation details the worker loads after connecting,
    then settle the push settings (sales account 200, tax types by rate)."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == firm_id))
        if connection and (connection.settings or {}).get("xero_accounts"):
            break
        assert time.monotonic() < deadline, "organisation details never arrived from the stand-in"
        time.sleep(0.1)
    by_percent = {"20.0000": "OUTPUT2", "5.0000": "RROUTPUT", "0.0000": "ZERORATEDOUTPUT"}
    rates = db.session.scalars(sa.select(TaxRate).where(TaxRate.firm_id == firm_id))
    merged = dict(connection.settings)
    merged.update({
        "sales_account_code": "200",
        "tax_types": {str(r.id): by_percent.get(f"{r.percent:.4f}", "NONE") for r in rates},
        "no_tax_type": "NONE",
        "invoice_status": "DRAFT",
        **settings,
    })
    connection.settings = merged
    db.session.commit()
    return connection


def wait_for_pushes(*, timeout: float = 60, expected: int | None = None) -> list[PushJob]:
    """Wait until every push is final (succeeded or failed); return them all."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        pushes = db.session.scalars(sa.select(PushJob).order_by(PushJob.id)).all()
        done = all(p.state in ("succeeded", "failed") for p in pushes)
        if pushes and done and (expected is None or len(pushes) >= expected):
            return pushes
        if time.monotonic() > deadline:
            raise AssertionError(f"pushes still running: {[(p.id, p.state, p.error_message) for p in pushes]}")
        time.sleep(0.1)
