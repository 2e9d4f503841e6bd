"""FreshBooks end to end: real Redis, real `rq worker --with-scheduler` processes and
the FreshBooks stand-in, driven through PlanMan's own pages and its consent page."""
from __future__ import annotations

import time
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Connection, ExternalLink, Invoice, PushJob
from standins.freshbooks.demo import UK_ACCOUNT_ID, UK_NAME, US_NAME
from tests.fixtures.services import freshbooks_config
from tests.helpers import htmx_post, make_client, make_invoice, post_form, signup, tax_rate
from tests.integration_helpers import form_fields, wait_for_pushes

pytestmark = pytest.mark.integration


@pytest.fixture
def config_overrides(freshbooks_url):
    return {"PUBLIC_BASE_URL": "http://127.0.0.1:5999", **freshbooks_config(freshbooks_url),
            "FRESHBOOKS_RECORD_URL": f"{freshbooks_url}/accounts/{{account_id}}/{{kind}}s/{{id}}"}


@pytest.fixture
def app(integration_app):
    return integration_app


def connect_freshbooks(client, *, business=UK_ACCOUNT_ID):
    """PlanMan's Connect button, the stand-in's consent page (Allow), PlanMan's callback, the business picker."""
    start = post_form(client, "/integrations/freshbooks/connect", {}, form_url="/integrations/freshbooks")
    assert start.status_code == 302, start.get_data(as_text=True)
    consent = requests.get(start.headers["Location"], timeout=10)
    assert consent.status_code == 200 and UK_NAME in consent.text and US_NAME in consent.text
    answer = requests.post(start.headers["Location"].split("?")[0],
                           data={**form_fields(consent.text), "decision": "allow"}, allow_redirects=False, timeout=10)
    back = urlsplit(answer.headers["Location"])
    picker = client.get(f"{back.path}?{back.query}")
    assert picker.status_code == 302 and picker.headers["Location"].endswith("/integrations/freshbooks/choose")
    choose = client.get("/integrations/freshbooks/choose").get_data(as_text=True)
    assert UK_NAME in choose and US_NAME in choose
    done = post_form(client, "/integrations/freshbooks/choose", {"tenant_id": business})
    assert done.status_code == 302
    return done


def wait_for_details(firm_id, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == firm_id))
        if (connection.settings or {}).get("details_state") == "loaded":
            return connection
        assert time.monotonic() < deadline, connection.settings
        time.sleep(0.1)


@pytest.fixture
def connected(client, freshbooks_standin, rq_workers):
    rq_workers.start(2)
    admin = signup(client)
    connect_freshbooks(client)
    wait_for_details(admin.firm_id)
    return admin


def business(standin, account_id=UK_ACCOUNT_ID):
    return next(a for a in standin.state()["accounts"] if a["account_id"] == account_id)


def panel(client, record_type, record_id):
    return client.get(f"/integrations/freshbooks/{record_type}/{record_id}/panel").get_data(as_text=True)


def press(client, record_type, record_id, **form):
    return htmx_post(client, f"/integrations/freshbooks/{record_type}/{record_id}/panel", form)


def test_connect_picks_the_business_and_loads_its_taxes(client, connected, freshbooks_standin):
    connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == connected.firm_id))
    assert (connection.state, connection.tenant_id, connection.tenant_name) == ("connected", UK_ACCOUNT_ID, UK_NAME)
    page = client.get("/integrations/freshbooks").get_data(as_text=True)
    assert "VAT · 20%" in page and "VAT Reduced · 5%" in page


def test_send_then_edit_and_update_the_same_draft_invoice(client, connected, freshbooks_standin):
    customer = make_client(connected, name="Brightside LLP", email="ap@brightside.test")
    vat = tax_rate(connected, "VAT 20%")
    invoice = make_invoice(connected, customer, number="INV-0100",
                           lines=((3, "33.33", vat), (1, "0.05", vat), (2, "19.99", None)))
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)

    held = business(freshbooks_standin)
    assert [(c["organization"], c["email"]) for c in held["clients"]] == [("Brightside LLP", "ap@brightside.test")]
    [remote] = held["invoices"]
    assert (remote["invoice_number"], remote["v3_status"]) == ("INV-0100", "draft")
    assert Decimal(remote["amount"]["amount"]) == db.session.get(Invoice, invoice.id).totals.total
    page = panel(client, "invoice", invoice.id)
    assert "Draft" in page and ">Update<" in page and f"/accounts/{UK_ACCOUNT_ID}/invoices/{remote['id']}" in page

    edit = client.get(f"/invoices/{invoice.id}/edit").get_data(as_text=True)
    fields = form_fields(edit, f"/invoices/{invoice.id}/edit")
    fields["reference"] = "PO-991"
    saved = client.post(f"/invoices/{invoice.id}/edit", data=fields)
    assert saved.status_code == 302
    assert "Changed since last sent" in panel(client, "invoice", invoice.id)
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=2)

    [updated] = business(freshbooks_standin)["invoices"]
    assert updated["id"] == remote["id"] and updated["po_number"] == "PO-991"
    assert "Changed since last sent" not in panel(client, "invoice", invoice.id)


def test_a_lost_answer_leaves_exactly_one_invoice_and_one_client(client, connected, freshbooks_standin):
    customer = make_client(connected, name="Acme Ltd", email="ap@acme.test")
    invoice = make_invoice(connected, customer, number="INV-0200")
    freshbooks_standin.control("faults", drop_next_writes=2)  # the client's create and the invoice's

    press(client, "invoice", invoice.id)
    [push] = wait_for_pushes(expected=1)

    held = business(freshbooks_standin)
    assert len(held["clients"]) == 1 and len(held["invoices"]) == 1
    assert (push.state, push.outcome) == ("succeeded", "created")
    assert freshbooks_standin.stats()["lost_responses"] == 2
    assert ">Update<" in panel(client, "invoice", invoice.id)


def test_a_429_is_waited_out_and_the_push_ends_sent(client, connected, freshbooks_standin):
    customer = make_client(connected, name="Acme Ltd")
    freshbooks_standin.control("faults", rate_limit_next=1, retry_after=1)

    press(client, "client", customer.id)
    [push] = wait_for_pushes(expected=1)

    assert push.state == "succeeded" and freshbooks_standin.stats()["rate_limited"] == 1
    assert len(business(freshbooks_standin)["clients"]) == 1


def test_a_5xx_is_retried_and_ends_sent(client, connected, freshbooks_standin):
    customer = make_client(connected, name="Acme Ltd")
    freshbooks_standin.control("faults", fail_next=1, fail_status=503)

    press(client, "client", customer.id)
    [push] = wait_for_pushes(expected=1)

    assert (push.state, push.attempts) == ("succeeded", 2)
    assert len(business(freshbooks_standin)["clients"]) == 1


def test_two_workers_refreshing_at_once_rotate_the_single_use_token_once(client, connected, freshbooks_standin):
    customers = [make_client(connected, name=f"Client {n}") for n in range(4)]
    freshbooks_standin.control("expire_tokens")
    before = freshbooks_standin.stats()

    for customer in customers:
        press(client, "client", customer.id)
    pushes = wait_for_pushes(expected=4)

    after = freshbooks_standin.stats()
    assert [p.state for p in pushes] == ["succeeded"] * 4
    assert after["rotations"] - before["rotations"] == 1 and after["invalid_grants"] == before["invalid_grants"]
    connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == connected.firm_id))
    assert connection.state == "connected"


def test_an_invoice_sent_to_the_customer_in_freshbooks_is_updated_only_once_confirmed(client, connected,
                                                                                    freshbooks_standin):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-0300")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [remote] = business(freshbooks_standin)["invoices"]
    freshbooks_standin.control(f"invoices/{remote['id']}/status", status="sent")
    link = db.session.scalar(sa.select(ExternalLink).where(ExternalLink.record_type == "invoice"))
    link.status_checked_at = None  # as if five minutes had passed: the panel asks a worker to look
    db.session.commit()
    deadline = time.monotonic() + 20
    while "checking" in (page := panel(client, "invoice", invoice.id)) or "Sent" not in page:
        assert time.monotonic() < deadline, page
        time.sleep(0.2)
    assert "the customer may have seen it" in page

    press(client, "invoice", invoice.id)  # no confirmation: nothing is sent
    assert db.session.scalar(sa.select(sa.func.count(PushJob.id))) == 1

    press(client, "invoice", invoice.id, confirmed="sent")
    wait_for_pushes(expected=2)
    pushes = db.session.scalars(sa.select(PushJob).order_by(PushJob.id)).all()
    assert (pushes[-1].state, pushes[-1].outcome) == ("succeeded", "updated")
    [still] = business(freshbooks_standin)["invoices"]
    assert still["id"] == remote["id"] and still["v3_status"] == "sent"


def test_an_invoice_deleted_in_freshbooks_is_sent_again_as_a_new_draft(client, connected, freshbooks_standin):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-0400")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [remote] = business(freshbooks_standin)["invoices"]
    connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == connected.firm_id))
    from planman.integrations.tokens import load_token

    token = load_token(connection)["access_token"]
    deleted = requests.put(f"{freshbooks_standin.url}/accounting/account/{UK_ACCOUNT_ID}/invoices/invoices/{remote['id']}",
                           json={"invoice": {"vis_state": 1}}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert deleted.status_code == 200

    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=2)
    assert "Send again as a new draft" in panel(client, "invoice", invoice.id)
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=3)

    invoices = business(freshbooks_standin)["invoices"]
    assert [(i["invoice_number"], i["vis_state"]) for i in invoices] == [("INV-0400", 1), ("INV-0400", 0)]
    assert ">Update<" in panel(client, "invoice", invoice.id)


def wait_for_bulk(client, bulk_id, timeout=60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        page = client.get(f"/integrations/bulk/{bulk_id}/progress").get_data(as_text=True)
        if 'data-bulk-state="finished"' in page:
            return page
        assert time.monotonic() < deadline, page
        time.sleep(0.2)


def test_bulk_send_of_invoices_brings_their_clients_once_each_despite_a_lost_answer(client, connected,
                                                                                  freshbooks_standin):
    from planman.models import BulkPush

    customers = [make_client(connected, name=f"Customer {n}", email=f"c{n}@example.test") for n in range(3)]
    for n in range(6):
        make_invoice(connected, customers[n % 3], number=f"INV-{n:04d}")
    freshbooks_standin.control("faults", drop_next_writes=1)

    started = post_form(client, "/integrations/bulk", {"record_type": "invoice", "mode": "not_sent",
                                                       "provider": "freshbooks"}, form_url="/integrations/bulk")
    assert started.status_code == 302
    page = wait_for_bulk(client, db.session.scalar(sa.select(BulkPush.id)))

    assert 'class="bulk-sent">9<' in page and 'class="bulk-failed">0<' in page
    held = business(freshbooks_standin)
    assert sorted(c["organization"] for c in held["clients"]) == [f"Customer {n}" for n in range(3)]
    assert sorted(i["invoice_number"] for i in held["invoices"]) == [f"INV-{n:04d}" for n in range(6)]
    assert {i["v3_status"] for i in held["invoices"]} == {"draft"}


def test_a_failed_push_is_listed_and_retried_from_the_list(client, connected, freshbooks_standin):
    customer = make_client(connected, name="Acme Ltd", email="not-an-email@")  # the stand-in refuses it
    press(client, "client", customer.id)
    [failed] = wait_for_pushes(expected=1)
    assert failed.state == "failed" and failed.error_fields == {"email": ["Invalid email address."]}
    listed = client.get("/integrations/failed").get_data(as_text=True)
    assert "Acme Ltd" in listed and "Invalid email address." in listed

    customer = db.session.get(type(customer), customer.id)
    customer.email = "ap@acme.test"
    customer.revision += 1
    db.session.commit()
    retried = post_form(client, f"/integrations/pushes/{failed.id}/retry", {}, form_url="/integrations/failed")
    assert retried.status_code == 302
    pushes = wait_for_pushes(expected=2)
    assert pushes[-1].state == "succeeded"
    assert [c["email"] for c in business(freshbooks_standin)["clients"]] == ["ap@acme.test"]


def test_a_lost_refresh_answer_asks_for_a_reconnect_which_keeps_the_links(client, connected, freshbooks_standin):
    """FreshBooks spends a refresh token whatever becomes of its answer (no grace):
    nothing can recover a pair nobody received, so PlanMan says to reconnect, plainly."""
    customer = make_client(connected, name="Acme Ltd")
    press(client, "client", customer.id)
    wait_for_pushes(expected=1)
    freshbooks_standin.control("expire_tokens")
    freshbooks_standin.control("faults", drop_next_token_answers=1)

    press(client, "client", customer.id)
    pushes = wait_for_pushes(expected=2)

    assert pushes[-1].state == "failed" and "reconnect" in pushes[-1].error_message.lower()
    connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == connected.firm_id))
    assert connection.state == "needs_reconnect"
    assert "Reconnect" in panel(client, "client", customer.id)
    stats = freshbooks_standin.stats()
    assert stats["lost_responses"] == 1 and stats["invalid_grants"] >= 1

    connect_freshbooks(client)  # the same business again: its links come back
    page = panel(client, "client", customer.id)
    assert ">Retry<" in page and "View in FreshBooks" in page
    press(client, "client", customer.id)
    pushes = wait_for_pushes(expected=3)
    assert (pushes[-1].state, pushes[-1].outcome) == ("succeeded", "updated")
    assert len(business(freshbooks_standin)["clients"]) == 1


def test_bulk_sends_leave_invoices_the_customer_may_have_seen_for_a_person_to_confirm(client, connected,
                                                                                    freshbooks_standin):
    from planman.models import BulkPush

    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-0500")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [remote] = business(freshbooks_standin)["invoices"]
    freshbooks_standin.control(f"invoices/{remote['id']}/status", status="viewed")
    edit = client.get(f"/invoices/{invoice.id}/edit").get_data(as_text=True)
    fields = form_fields(edit, f"/invoices/{invoice.id}/edit")
    fields["reference"] = "PO-2"
    assert client.post(f"/invoices/{invoice.id}/edit", data=fields).status_code == 302

    post_form(client, "/integrations/bulk", {"record_type": "invoice", "mode": "changed", "provider": "freshbooks"},
              form_url="/integrations/bulk")
    page = wait_for_bulk(client, db.session.scalar(sa.select(BulkPush.id)))

    assert 'class="bulk-failed">1<' in page and "bulk sends do not change it" in page
    [still] = business(freshbooks_standin)["invoices"]
    assert still["po_number"] in (None, "") and still["v3_status"] == "viewed"
    html = panel(client, "invoice", invoice.id)
    assert "Viewed" in html and "the customer may have seen it" in html and "anyway" in html
