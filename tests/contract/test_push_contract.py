"""The contract every push provider keeps (issue 14), run against each one's
stand-in (``drivers.DRIVERS``) through PlanMan's own pages, with real Redis and
real rq workers: connect, Send then Update, a lost answer, a 5xx, a 429,
concurrent token refreshes, disconnect and reconnect, another firm, a bulk send.

The cases share one connected firm per provider (``conftest.connected``) and
each uses records of its own, so they read the stand-in by name or number."""
from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations.registry import get_provider
from planman.models import BulkPush, PushJob
from tests.contract.drivers import connection_of, wait_for
from tests.helpers import htmx_post, make_client, make_invoice, post_form, signup
from tests.integration_helpers import form_fields

pytestmark = pytest.mark.integration

_names = iter(range(1, 10_000))


def unique(prefix: str) -> str:
    return f"{prefix} {next(_names):04d}"


def panel(client, key, record_type, record_id):
    return client.get(f"/integrations/{key}/{record_type}/{record_id}/panel")


def press(client, key, record_type, record_id):
    """The panel's one button (Send, Update, Retry), as HTMX posts it."""
    return htmx_post(client, f"/integrations/{key}/{record_type}/{record_id}/panel", {})


def pushes_of(record_type, record_id) -> list[PushJob]:
    return db.session.scalars(sa.select(PushJob).where(PushJob.record_type == record_type,
                                                       PushJob.record_id == record_id).order_by(PushJob.id)).all()


def pushed(record_type, record_id, *, count: int = 1, timeout: float = 60) -> PushJob:
    """Wait until the record has ``count`` pushes, all final; return the latest."""
    def done():
        found = pushes_of(record_type, record_id)
        return found[-1] if len(found) >= count and all(p.state in ("succeeded", "failed") for p in found) else None
    return wait_for(done, timeout=timeout, what=f"{record_type} {record_id}'s push {count} to end")


def named(records, name):
    return [r for r in records if r.name == name]


def numbered(records, number):
    return [r for r in records if r.number == number]


def edit(client, path: str, **changes):
    page = client.get(f"{path}/edit").get_data(as_text=True)
    fields = form_fields(page, f"{path}/edit")
    for key, value in changes.items():
        name = next(n for n in fields if n == key or n.endswith(key))
        fields[name] = value
    saved = client.post(f"{path}/edit", data=fields)
    assert saved.status_code == 302, saved.get_data(as_text=True)


def test_connect_through_the_consent_page(admin_client, connected, driver):
    provider = get_provider(driver.key)
    connection = connection_of(connected.firm_id, driver.key)
    assert connection.state == "connected" and connection.tenant_id
    page = admin_client.get(f"/integrations/{driver.key}").get_data(as_text=True)
    assert f"Connected to <strong>{connection.tenant_name}</strong>" in page
    assert provider.connect_label not in page and f'id="disconnect-{driver.key}"' in page
    assert 'id="settings-error"' not in page


def test_send_then_update_a_client(admin_client, connected, driver, standin):
    name = unique("Acme Trading")
    customer = make_client(connected, name=name, email="accounts@acme.example.com")
    assert ">Send<" in panel(admin_client, driver.key, "client", customer.id).get_data(as_text=True)

    press(admin_client, driver.key, "client", customer.id)
    assert pushed("client", customer.id).state == "succeeded"
    assert ">Update<" in panel(admin_client, driver.key, "client", customer.id).get_data(as_text=True)
    [remote] = named(driver.clients(standin), name)
    assert remote.email == "accounts@acme.example.com"

    edit(admin_client, f"/clients/{customer.id}", email="billing@acme.example.com")
    assert "Changed since last sent" in panel(admin_client, driver.key, "client", customer.id).get_data(as_text=True)
    press(admin_client, driver.key, "client", customer.id)
    assert pushed("client", customer.id, count=2).state == "succeeded"

    [after] = named(driver.clients(standin), name)
    assert (after.external_id, after.email) == (remote.external_id, "billing@acme.example.com")
    assert "Changed since last sent" not in panel(admin_client, driver.key, "client",
                                                  customer.id).get_data(as_text=True)


def test_send_then_update_an_invoice_which_stays_a_draft(admin_client, connected, driver, standin):
    customer = make_client(connected, name=unique("Brightside"))
    number = unique("INV").replace(" ", "-")
    invoice = make_invoice(connected, customer, number=number, lines=((1, "100.00", None),))

    press(admin_client, driver.key, "invoice", invoice.id)
    assert pushed("invoice", invoice.id).state == "succeeded"
    [remote] = numbered(driver.invoices(standin), number)
    assert remote.is_draft and remote.total == Decimal("100.00")
    assert len(named(driver.clients(standin), customer.name)) == 1  # the invoice brought its client
    assert ">Update<" in panel(admin_client, driver.key, "invoice", invoice.id).get_data(as_text=True)

    edit(admin_client, f"/invoices/{invoice.id}", reference="PO-991", quantity="4")
    press(admin_client, driver.key, "invoice", invoice.id)
    assert pushed("invoice", invoice.id, count=2).state == "succeeded"

    [after] = numbered(driver.invoices(standin), number)
    assert after.external_id == remote.external_id and after.is_draft
    assert (after.reference, after.total) == ("PO-991", Decimal("400.00"))


def test_a_lost_answer_still_leaves_exactly_one_record_of_each(admin_client, connected, driver, standin):
    customer = make_client(connected, name=unique("Lost Answer"))
    number = unique("LOST").replace(" ", "-")
    invoice = make_invoice(connected, customer, number=number)
    lost = driver.lost_responses(standin)
    standin.control("faults", drop_next_writes=2)  # the client's create, then the invoice's

    press(admin_client, driver.key, "invoice", invoice.id)
    done = pushed("invoice", invoice.id)

    assert done.state == "succeeded", done.error_message
    assert driver.lost_responses(standin) - lost == 2
    assert len(named(driver.clients(standin), customer.name)) == 1
    assert len(numbered(driver.invoices(standin), number)) == 1
    assert ">Update<" in panel(admin_client, driver.key, "invoice", invoice.id).get_data(as_text=True)


def test_a_server_error_is_retried(admin_client, connected, driver, standin):
    customer = make_client(connected, name=unique("Retried"))
    errors = driver.server_errors(standin)
    standin.control("faults", fail_next=1, fail_status=503)

    press(admin_client, driver.key, "client", customer.id)
    done = pushed("client", customer.id)

    assert done.state == "succeeded", done.error_message
    assert done.attempts == 2 and driver.server_errors(standin) - errors == 1
    assert len(named(driver.clients(standin), customer.name)) == 1


def test_a_429_is_waited_out(admin_client, connected, driver, standin):
    customer = make_client(connected, name=unique("Waited"))
    limited = driver.rate_limited(standin)
    standin.control("faults", rate_limit_next=1, retry_after=2)

    press(admin_client, driver.key, "client", customer.id)
    done = pushed("client", customer.id)

    assert done.state == "succeeded", done.error_message
    assert driver.rate_limited(standin) - limited == 1
    assert len(named(driver.clients(standin), customer.name)) == 1


def test_workers_refreshing_at_once_rotate_the_token_once_and_keep_the_connection(admin_client, connected, driver,
                                                                                   standin):
    customers = [make_client(connected, name=unique("Refresh")) for _ in range(4)]
    refreshes = driver.refreshes(standin)
    standin.control("expire_tokens")  # every access token PlanMan holds now gets 401

    for customer in customers:  # two workers take them at once
        press(admin_client, driver.key, "client", customer.id)
    ends = [pushed("client", customer.id) for customer in customers]

    assert [p.state for p in ends] == ["succeeded"] * 4, [p.error_message for p in ends]
    assert driver.refreshes(standin) - refreshes == 1
    assert connection_of(connected.firm_id, driver.key).state == "connected"
    for customer in customers:
        assert len(named(driver.clients(standin), customer.name)) == 1


def test_disconnect_and_reconnect_keeps_the_links(admin_client, connected, driver, standin):
    customer = make_client(connected, name=unique("Kept Link"))
    press(admin_client, driver.key, "client", customer.id)
    assert pushed("client", customer.id).state == "succeeded"
    [remote] = named(driver.clients(standin), customer.name)

    gone = post_form(admin_client, f"/integrations/{driver.key}/disconnect", {},
                     form_url=f"/integrations/{driver.key}")
    assert gone.status_code == 302
    assert connection_of(connected.firm_id, driver.key).state == "disconnected"
    assert ">Update<" not in panel(admin_client, driver.key, "client", customer.id).get_data(as_text=True)

    assert driver.connect(admin_client, standin).status_code in (200, 302)
    driver.settle(connected.firm_id)
    assert ">Update<" in panel(admin_client, driver.key, "client", customer.id).get_data(as_text=True)

    edit(admin_client, f"/clients/{customer.id}", email="after@reconnect.example.com")
    press(admin_client, driver.key, "client", customer.id)
    assert pushed("client", customer.id, count=2).state == "succeeded"
    [after] = named(driver.clients(standin), customer.name)
    assert (after.external_id, after.email) == (remote.external_id, "after@reconnect.example.com")


@pytest.mark.slow
def test_a_bulk_send_of_120_clients_arrives_once_each(admin_client, connected, driver, standin):
    customers = [make_client(connected, name=unique("Bulk"), email=f"bulk{n}@example.com") for n in range(120)]
    started = post_form(admin_client, "/integrations/bulk",
                        {"provider": driver.key, "record_type": "client", "mode": "selected",
                         "ids": [c.id for c in customers]}, form_url="/integrations/bulk")
    assert started.status_code == 302, started.get_data(as_text=True)
    bulk_id = db.session.scalar(sa.select(sa.func.max(BulkPush.id)))

    def finished():
        page = admin_client.get(f"/integrations/bulk/{bulk_id}/progress").get_data(as_text=True)
        return page if 'data-bulk-state="finished"' in page else None
    page = wait_for(finished, timeout=driver.bulk_timeout, what="the bulk send to finish")

    db.session.expire_all()
    failed = db.session.execute(sa.select(PushJob.record_id, PushJob.error_message).where(
        PushJob.bulk_push_id == bulk_id, PushJob.state != "succeeded")).all()
    assert failed == []
    assert 'class="bulk-sent">120<' in page and 'class="bulk-failed">0<' in page
    remote = driver.clients(standin)
    assert all(len(named(remote, c.name)) == 1 for c in customers)


def test_another_firm_gets_404_for_this_firms_records(app, connected, driver, standin):
    from tests.helpers import IsolatedClient

    customer = make_client(connected, name=unique("Private"))
    unsent = make_client(connected, name=unique("Owner's"))
    app.test_client_class = IsolatedClient
    other = app.test_client()
    signup(other)
    bulk_id = db.session.scalar(sa.select(sa.func.max(BulkPush.id)))

    assert panel(other, driver.key, "client", customer.id).status_code == 404
    assert press(other, driver.key, "client", unsent.id).status_code == 404
    if bulk_id is not None:
        assert other.get(f"/integrations/bulk/{bulk_id}").status_code == 404
    assert pushes_of("client", unsent.id) == []
    assert named(driver.clients(standin), unsent.name) == []
