"""Bulk send end to end: real Redis, real `rq worker --with-scheduler`
processes and the Xero stand-in with Xero's limits, driven through PlanMan's pages."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations import push
from planman.models import BulkPush, ExternalLink, PushJob
from tests.e2e_fixtures import app, config_overrides, connected  # noqa: F401
from tests.helpers import make_client, make_invoice, post_form
from standins.xero.demo import UK_TENANT_ID

pytestmark = pytest.mark.integration


def calls(sandbox) -> int:
    return sandbox.stats()["calls_per_tenant"].get(UK_TENANT_ID, 0)


def wait_for_bulk(client, bulk_id, timeout=60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        page = client.get(f"/integrations/bulk/{bulk_id}/progress").get_data(as_text=True)
        if 'data-bulk-state="finished"' in page:
            return page
        assert time.monotonic() < deadline, page
        time.sleep(0.2)


def organisation(sandbox):
    return next(o for o in sandbox.state()["organisations"] if o["tenantId"] == UK_TENANT_ID)


def test_120_clients_arrive_in_three_batches_once_each(client, connected, sandbox):
    records = [make_client(connected, name=f"Client {n:03d}", email=f"c{n}@example.test") for n in range(120)]
    before = calls(sandbox)

    started = post_form(client, "/integrations/bulk", {"record_type": "client", "mode": "not_sent"},
                        form_url="/integrations/bulk")
    assert started.status_code == 302
    bulk_id = db.session.scalar(sa.select(BulkPush.id))
    page = wait_for_bulk(client, bulk_id)

    assert 'class="bulk-sent">120<' in page and 'class="bulk-failed">0<' in page
    assert calls(sandbox) - before == 6  # per batch of 50: one lookup and one create
    contacts = organisation(sandbox)["contacts"]
    assert sorted(c["ContactNumber"] for c in contacts) == sorted(r.reference for r in records)  # none twice
    links = {l.record_id: l.external_id for l in db.session.scalars(sa.select(ExternalLink))}
    assert links == {r.id: next(c["ContactID"] for c in contacts if c["ContactNumber"] == r.reference)
                     for r in records}
    assert sandbox.stats()["rate_limited"] == 0 and sandbox.violations() == []


def test_invoices_bring_their_clients_and_a_lost_answer_still_leaves_one_of_each(client, connected, sandbox):
    customers = [make_client(connected, name=f"Customer {n}") for n in range(4)]
    for n in range(12):
        make_invoice(connected, customers[n % 4], number=f"INV-{n:04d}")
    sandbox.control("faults", drop_next_writes=2)  # the contacts' create, then the save that finds them

    post_form(client, "/integrations/bulk", {"record_type": "invoice", "mode": "not_sent"},
              form_url="/integrations/bulk")
    bulk_id = db.session.scalar(sa.select(BulkPush.id))
    page = wait_for_bulk(client, bulk_id)

    assert 'class="bulk-sent">16<' in page and 'class="bulk-failed">0<' in page
    org = organisation(sandbox)
    assert len(org["contacts"]) == 4
    assert sorted(i["InvoiceNumber"] for i in org["invoices"]) == [f"INV-{n:04d}" for n in range(12)]
    assert {i["Status"] for i in org["invoices"]} == {"DRAFT"}
    assert sandbox.violations() == []


def test_a_429_mid_send_is_waited_out_and_nothing_is_sent_twice(client, connected, sandbox):
    records = [make_client(connected, name=f"Client {n:03d}") for n in range(60)]
    sandbox.control("faults", rate_limit_next=1, retry_after=2)

    post_form(client, "/integrations/bulk", {"record_type": "client", "mode": "not_sent"}, form_url="/integrations/bulk")
    page = wait_for_bulk(client, db.session.scalar(sa.select(BulkPush.id)))

    assert 'class="bulk-sent">60<' in page
    assert sandbox.stats()["rate_limited"] == 1
    contacts = organisation(sandbox)["contacts"]
    assert sorted(c["ContactNumber"] for c in contacts) == sorted(r.reference for r in records)


def test_a_name_with_quotes_goes_in_its_batch_with_the_others(client, connected, sandbox):
    records = [make_client(connected, name=f"Client {n}") for n in range(5)] + \
        [make_client(connected, name='Quote "Three" Ltd')]

    started = post_form(client, "/integrations/bulk", {"record_type": "client", "mode": "not_sent"},
                        form_url="/integrations/bulk")
    assert started.status_code == 302
    page = wait_for_bulk(client, db.session.scalar(sa.select(BulkPush.id)))

    assert 'class="bulk-sent">6<' in page and 'class="bulk-failed">0<' in page
    assert sorted(c["Name"] for c in organisation(sandbox)["contacts"]) == sorted(r.name for r in records)
    assert sandbox.violations() == []


def test_a_bulk_send_watched_closely_is_never_called_interrupted_between_steps(client, connected, sandbox,
                                                                               monkeypatch):
    # Every poll checks the job each push names, and with no grace at all any
    # moment where that job is not in Redis (a step handing over to the next)
    # would fail the waiting pushes as "interrupted".
    monkeypatch.setattr(push, "LOST_AFTER", timedelta(0))
    for n in range(400):
        make_client(connected, name=f"Client {n:03d}")

    post_form(client, "/integrations/bulk", {"record_type": "client", "mode": "not_sent"}, form_url="/integrations/bulk")
    bulk_id = db.session.scalar(sa.select(BulkPush.id))
    deadline = time.monotonic() + 60
    while True:
        page = client.get(f"/integrations/bulk/{bulk_id}/progress").get_data(as_text=True)
        if 'data-bulk-state="finished"' in page:
            break
        assert time.monotonic() < deadline, page

    db.session.expire_all()
    assert db.session.execute(sa.select(PushJob.record_id, PushJob.error_message).where(
        PushJob.state != "succeeded")).all() == []
    assert 'class="bulk-sent">400<' in page and 'class="bulk-failed">0<' in page
    assert len(organisation(sandbox)["contacts"]) == 400
