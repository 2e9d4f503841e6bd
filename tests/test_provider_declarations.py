"""The shared layer speaks each provider's words: a ledger that exists only in
this test ("Acme Books", whose tenants are businesses) is connected, picked,
set up and pushed to through PlanMan's own pages, and every page and message
says what it declares. No real provider is involved, so nothing here can lean
on Xero's wording."""
from __future__ import annotations

import time

import pytest
from flask import redirect, request
from flask_wtf import FlaskForm
from rq import SimpleWorker
from wtforms import SelectField
from wtforms.validators import AnyOf

from planman import jobs
from planman.extensions import db
from planman.integrations import registry
from planman.integrations.base import PushResult, RateLimits, Tenant
from planman.integrations.errors import RateLimited
from planman.integrations.links import connection_for
from tests.helpers import htmx_post, make_client, post_form, signup
from tests.webhook_provider import OfflineProvider


class AcmeSettingsForm(FlaskForm):
    ledger = SelectField("Ledger invoices go to", validate_choice=False)


class AcmeBooks(OfflineProvider):
    key = "acme"
    label = "Acme Books"
    summary = "Send clients and invoices to Acme Books."
    tenant_word, tenant_words = "business", "businesses"
    details_noun = "ledgers"
    revoke_hint = "Apps > PlanMan in Acme Books"
    tenant_detail_keys = ("acme_ledgers",)
    choice_keys = ("ledger",)

    def __init__(self):
        self.exports = []
        self.rate_limit_next = 0

    def authorize_redirect(self, redirect_uri):
        return redirect(f"{redirect_uri}?code=approved")  # its consent page approves at once

    def complete_authorization(self):
        assert request.args["code"] == "approved"
        token = {"access_token": "acme-access", "refresh_token": "acme-refresh", "expires_at": time.time() + 3600}
        return token, [Tenant("biz-1", "Corner Shop", kind="business"), Tenant("biz-2", "Market Stall",
                                                                              kind="business")]

    def load_tenant_details(self, connection):
        connection.settings = {**(connection.settings or {}), "acme_ledgers": ["Sales", "Services"]}

    def settings_ready(self, connection):
        return (connection.settings or {}).get("acme_ledgers") is not None

    def settings_form(self, connection, tax_rates, **kwargs):
        ledgers = (connection.settings or {}).get("acme_ledgers") or []
        form = AcmeSettingsForm(data={"ledger": (connection.settings or {}).get("ledger", "")}, **kwargs)
        form.ledger.choices = [(name, name) for name in ledgers]
        form.ledger.validators = [AnyOf(ledgers, message="Choose one of your Acme Books ledgers.")]
        return form

    def save_settings(self, connection, form):
        connection.settings = {**connection.settings, "ledger": form.ledger.data}
        db.session.commit()

    def initial_settings(self):
        return {"ledger": ""}

    def default_choices(self, settings, tax_rates):
        settings["ledger"] = settings.get("ledger") or settings["acme_ledgers"][0]
        return settings

    def rate_limits(self, config):
        return RateLimits(in_flight=2, per_minute=10, per_day=1000)

    def export(self, connection, record_type, record, *, user_id, intent):
        if self.rate_limit_next:
            self.rate_limit_next -= 1
            raise RateLimited(30, provider=self.label)
        self.exports.append((record_type, record.id))
        return PushResult(external_id=f"acme-{record.id}", outcome="created", fingerprint="f")


@pytest.fixture
def acme(monkeypatch):
    provider = AcmeBooks()
    monkeypatch.setitem(registry.PROVIDERS, provider.key, provider)
    return provider


def run_jobs(app):
    SimpleWorker(jobs.queues(app), connection=app.redis).work(burst=True)


def page(client, url="/integrations/acme") -> str:
    return client.get(url).get_data(as_text=True)


def test_connect_pick_a_business_and_choose_settings_in_the_providers_words(app, client, acme):
    admin = signup(client)
    before = page(client)
    assert '>Connect to Acme Books</button>' in before
    assert "choose the business this firm uses" in before

    start = post_form(client, "/integrations/acme/connect", {}, form_url="/integrations/acme")
    back = client.get(start.headers["Location"].replace("http://planman.test", ""))
    assert back.status_code == 302 and back.headers["Location"].endswith("/integrations/acme/choose")
    picker = page(client, "/integrations/acme/choose")
    assert f"Which Acme Books business does {admin.firm.name} use?" in picker
    assert "<legend>Business</legend>" in picker and "Corner Shop" in picker and "Market Stall" in picker
    assert "Choose a business" in page(client, "/integrations/")

    wrong = post_form(client, "/integrations/acme/choose", {"tenant_id": "biz-9"},
                      form_url="/integrations/acme/choose")
    assert wrong.status_code == 422
    assert "Choose one of the businesses you gave PlanMan access to." in wrong.get_data(as_text=True)
    chosen = post_form(client, "/integrations/acme/choose", {"tenant_id": "biz-2"},
                       form_url="/integrations/acme/choose", follow_redirects=True)
    assert "Connected to Market Stall." in chosen.get_data(as_text=True)
    assert "Loading from Acme Books…" in page(client)

    run_jobs(app)  # the details job: the provider's lists, then its default choices
    loaded = page(client)
    assert 'id="save-settings"' in loaded and "Ledger invoices go to" in loaded
    assert connection_for(admin.firm_id, "acme").settings["ledger"] == "Sales"
    refused = post_form(client, "/integrations/acme/settings", {"ledger": "Nope"}, form_url="/integrations/acme")
    assert refused.status_code == 422 and "Choose one of your Acme Books ledgers." in refused.get_data(as_text=True)
    saved = post_form(client, "/integrations/acme/settings", {"ledger": "Services"}, form_url="/integrations/acme",
                      follow_redirects=True)
    assert "Acme Books settings saved." in saved.get_data(as_text=True)
    assert connection_for(admin.firm_id, "acme").settings["ledger"] == "Services"

    gone = post_form(client, "/integrations/acme/disconnect", {}, form_url="/integrations/acme",
                     follow_redirects=True).get_data(as_text=True)
    assert "their links come back if you connect the same business again" in gone


def test_a_429_reads_in_the_providers_name_and_the_push_ends_sent(app, client, acme):
    admin = signup(client)
    post_form(client, "/integrations/acme/connect", {}, form_url="/integrations/acme")
    client.get("/integrations/acme/callback?code=approved")
    post_form(client, "/integrations/acme/choose", {"tenant_id": "biz-1"}, form_url="/integrations/acme/choose")
    customer = make_client(admin, name="Acme Customer")
    acme.rate_limit_next = 1

    htmx_post(client, f"/integrations/acme/client/{customer.id}/panel", {})
    run_jobs(app)
    waiting = page(client, f"/integrations/acme/client/{customer.id}/panel")
    assert "Acme Books asked us to slow down; the push will continue automatically." in waiting

    from rq.registry import ScheduledJobRegistry

    scheduled = ScheduledJobRegistry(queue=app.push_queue)
    for job_id in scheduled.get_job_ids():  # the scheduler's part, done now
        scheduled.remove(job_id)
        app.push_queue.enqueue_job(app.push_queue.fetch_job(job_id))
    run_jobs(app)
    assert acme.exports == [("client", customer.id)]
    assert ">Update<" in page(client, f"/integrations/acme/client/{customer.id}/panel")
