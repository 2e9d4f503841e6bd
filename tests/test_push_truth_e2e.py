"""What the panel says is what Xero holds (issue 11): end to end with real
`rq worker` processes and the Xero stand-in, driven through PlanMan's pages."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from planman.extensions import db
from planman.models import ExternalLink, PushJob
from tests.e2e_fixtures import app, config_overrides, connected  # noqa: F401
from tests.helpers import make_client, make_invoice, post_form, signup
from tests.test_push_e2e import organisation, panel, press
from tests.integration_helpers import choose_settings, connect_xero, form_fields, wait_for_pushes

pytestmark = pytest.mark.integration


def remote_invoices(sandbox):
    return organisation(sandbox)["invoices"]


def edit_reference(client, invoice_id, reference):
    edit_invoice(client, invoice_id, reference=reference)


def edit_invoice(client, invoice_id, **changes):
    """Change the invoice through its edit form, as a person does."""
    fields = form_fields(client.get(f"/invoices/{invoice_id}/edit").get_data(as_text=True), f"/invoices/{invoice_id}/edit")
    fields.update(changes)
    saved = client.post(f"/invoices/{invoice_id}/edit", data=fields)
    assert saved.status_code == 302, saved.get_data(as_text=True)


def test_send_again_as_a_new_draft_really_creates_a_new_draft(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-1100")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [first] = remote_invoices(sandbox)
    sandbox.control(f"invoices/{first['InvoiceID']}/status", status="DELETED")
    press(client, "invoice", invoice.id)  # Update: Xero refuses, the panel learns it was deleted
    wait_for_pushes(expected=2)
    assert ">Send again as a new draft<" in panel(client, "invoice", invoice.id)

    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=3)

    statuses = {i["InvoiceID"]: i["Status"] for i in remote_invoices(sandbox)}
    assert len(statuses) == 2 and statuses[first["InvoiceID"]] == "DELETED"
    [new_id] = [invoice_id for invoice_id, status in statuses.items() if status == "DRAFT"]
    db.session.expire_all()
    assert db.session.query(ExternalLink).filter_by(record_type="invoice").one().external_id == new_id
    page = panel(client, "invoice", invoice.id)
    assert "Draft" in page and ">Update<" in page
    assert sandbox.violations() == []


def test_update_after_approval_in_xero_within_minutes_says_approved_not_updated(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-1200")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    press(client, "invoice", invoice.id)  # an Update of the unchanged invoice
    wait_for_pushes(expected=2)
    [remote] = remote_invoices(sandbox)
    sandbox.control(f"invoices/{remote['InvoiceID']}/status", status="AUTHORISED")  # a bookkeeper approves it
    assert ">Update<" in panel(client, "invoice", invoice.id)  # PlanMan checked its status moments ago

    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=3)

    page = panel(client, "invoice", invoice.id)
    assert "Awaiting payment" in page and "does not allow changes once it has been approved" in page
    assert "Updated in Xero" not in page and ">Update<" not in page and ">Retry<" not in page
    assert remote_invoices(sandbox)[0]["Status"] == "AUTHORISED"


def test_update_leaves_the_status_a_bookkeeper_set_in_xero(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-1300")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [remote] = remote_invoices(sandbox)
    sandbox.control(f"invoices/{remote['InvoiceID']}/status", status="SUBMITTED")
    edit_reference(client, invoice.id, "PO-77")

    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=2)

    [remote] = remote_invoices(sandbox)
    assert remote["Status"] == "SUBMITTED" and remote["Reference"] == "PO-77"
    page = panel(client, "invoice", invoice.id)
    assert "Awaiting approval" in page and "Updated in Xero." in page
    assert sandbox.violations() == []


def test_a_recovered_lost_response_says_sent_not_linked_to_an_existing_record(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-1400")
    sandbox.control("faults", drop_next_writes=1)  # the contact is created, its answer lost
    press(client, "client", customer.id)
    [client_push] = wait_for_pushes(expected=1)
    sandbox.control("faults", drop_next_writes=1)  # the same for the invoice
    press(client, "invoice", invoice.id)
    [_, invoice_push] = wait_for_pushes(expected=2)

    assert sandbox.stats()["lost_responses"] == 2
    assert len(remote_invoices(sandbox)) == 1 and len(organisation(sandbox)["contacts"]) == 1
    for record_type, record_id, done in (("client", customer.id, client_push), ("invoice", invoice.id, invoice_push)):
        assert done.state == "succeeded" and done.attempts == 2, done.error_message
        page = panel(client, record_type, record_id)
        assert "Sent to Xero." in page and "Linked to an existing" not in page and "Updated in" not in page



def test_an_edit_while_the_push_runs_is_either_sent_or_shown_as_changed_never_both(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-1500")
    sandbox.control("faults", latency_ms=1500)  # each call to Xero takes a while: its client goes first
    press(client, "invoice", invoice.id)
    deadline = time.monotonic() + 30
    while (push := latest_push()) is None or push.state != "running":
        assert time.monotonic() < deadline, "the push never started"
        time.sleep(0.05)

    edit_reference(client, invoice.id, "PO-2")  # committed while the push is under way
    [done] = wait_for_pushes(expected=1)

    assert done.state == "succeeded", done.error_message
    [remote] = remote_invoices(sandbox)
    changed = "Changed since last sent" in panel(client, "invoice", invoice.id)
    if remote.get("Reference") == "PO-2":
        assert not changed, "the edit is in Xero, yet the panel says it changed since it was sent"
    else:
        assert not remote.get("Reference") and changed, "the edit is not in Xero, yet the panel shows no change"


def latest_push():
    db.session.expire_all()
    return db.session.query(PushJob).order_by(PushJob.id.desc()).first()

def _children(pid: int) -> list[int]:
    """The processes ``pid`` forked (an rq worker's work-horse runs in a group of its own)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_a_push_whose_whole_worker_was_killed_reads_interrupted_with_retry(client, sandbox, rq_workers):
    [worker] = rq_workers.start(1)
    admin = signup(client)
    connect_xero(client, sandbox)
    choose_settings(admin.firm_id)
    customer = make_client(admin, name="Acme Ltd")
    sandbox.control("faults", latency_ms=15000)  # Xero holds the push's first call
    press(client, "client", customer.id)
    deadline = time.monotonic() + 30
    # The work-horse is running the push (the worker's first child may be its scheduler,
    # and a worker killed before it took the job leaves the push rightly queued).
    while not (_children(worker.pid) and latest_push() is not None and latest_push().state == "running"):
        assert time.monotonic() < deadline, rq_workers.logs()
        time.sleep(0.1)

    for pid in [worker.pid, *_children(worker.pid)]:  # the whole worker dies at once (OOM killer, lost machine)
        os.kill(pid, signal.SIGKILL)
    sandbox.control("faults/clear")

    deadline = time.monotonic() + 120  # a bound for a slow machine; it takes about half a minute
    while ">Retry<" not in (page := panel(client, "client", customer.id)):
        assert "Sending to Xero" in page
        assert time.monotonic() < deadline, "the panel never stopped saying 'Sending…'"
        time.sleep(1)
    assert "interrupted" in page

    rq_workers.start(1)
    press(client, "client", customer.id)
    wait_for_pushes(expected=2)
    assert ">Update<" in panel(client, "client", customer.id)
    assert [c["Name"] for c in organisation(sandbox)["contacts"]] == ["Acme Ltd"]


def test_an_archived_contact_is_explained_and_its_invoices_offer_no_retry_that_cannot_help(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    invoice = make_invoice(connected, customer, number="INV-1600")
    press(client, "invoice", invoice.id)
    wait_for_pushes(expected=1)
    [contact] = organisation(sandbox)["contacts"]
    sandbox.control(f"contacts/{contact['ContactID']}/archive")  # a bookkeeper archives it in Xero

    press(client, "client", customer.id)
    wait_for_pushes(expected=2)
    page = panel(client, "client", customer.id)
    assert "archived in Xero" in page and "Restore" in page and "Updated in Xero" not in page

    edit_reference(client, invoice.id, "PO-9")
    press(client, "invoice", invoice.id)
    [*_, refused] = wait_for_pushes(expected=3)

    assert refused.state == "failed"
    page = panel(client, "invoice", invoice.id)
    assert "its contact “Acme Ltd” is archived in Xero" in page and "Restore the contact in Xero" in page
    assert ">Retry<" not in page and ">Update<" not in page


def bulk_send(client, record_type, mode="selected", ids=()):
    return post_form(client, "/integrations/bulk", {"record_type": record_type, "mode": mode, "ids": list(ids)},
                     form_url="/integrations/bulk")


def test_void_invoices_are_never_sent_as_new_and_paid_ones_are_sent_as_usual(client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    void = make_invoice(connected, customer, number="INV-1700", status="void")
    paid = make_invoice(connected, customer, number="INV-1701", status="paid")
    page = panel(client, "invoice", void.id)
    assert "void in PlanMan, so it is not sent to Xero" in page and ">Send<" not in page

    bulk_send(client, "invoice", mode="not_sent")  # "Send all not yet sent"
    wait_for_pushes()
    bulk_send(client, "invoice", ids=[void.id])  # chosen by hand: refused, with why
    [*_, refused] = wait_for_pushes()

    assert [i["InvoiceNumber"] for i in remote_invoices(sandbox)] == ["INV-1701"]
    assert refused.record_id == void.id and refused.state == "failed"
    assert "void in PlanMan, so it is not sent to Xero" in client.get(
        f"/integrations/bulk/{refused.bulk_push_id}").get_data(as_text=True)
    assert ">Retry<" not in panel(client, "invoice", void.id)
    page = panel(client, "invoice", paid.id)
    assert ">Update<" in page and "Marked paid in PlanMan" in page and "record the payment in Xero" in page


def test_voiding_a_sent_invoice_offers_void_in_xero_deleting_drafts_voiding_approved_refusing_paid(
        client, connected, sandbox):
    customer = make_client(connected, name="Acme Ltd")
    invoices = {status: make_invoice(connected, customer, number=f"INV-18{n}") for n, status in
                enumerate(("DRAFT", "AUTHORISED", "PAID"))}
    for invoice in invoices.values():
        press(client, "invoice", invoice.id)
    wait_for_pushes(expected=3)
    remote_id = {i["InvoiceNumber"]: i["InvoiceID"] for i in remote_invoices(sandbox)}
    for status, invoice in invoices.items():
        if status != "DRAFT":
            sandbox.control(f"invoices/{remote_id[invoice.number]}/status", status=status)
        edit_invoice(client, invoice.id, status="void")  # voided in PlanMan
        assert ">Void in Xero<" in panel(client, "invoice", invoice.id)
        press(client, "invoice", invoice.id)
    wait_for_pushes(expected=6)

    now = {i["InvoiceNumber"]: i for i in remote_invoices(sandbox)}
    assert now["INV-180"]["Status"] == "DELETED" and now["INV-181"]["Status"] == "VOIDED"
    assert now["INV-182"]["Status"] == "PAID"
    assert "void in PlanMan and deleted in Xero" in panel(client, "invoice", invoices["DRAFT"].id)
    assert "void in PlanMan and voided in Xero" in panel(client, "invoice", invoices["AUTHORISED"].id)
    page = panel(client, "invoice", invoices["PAID"].id)
    assert "Xero does not void an invoice with payments" in page and "Remove the payments in Xero first" in page
    for invoice in invoices.values():
        page = panel(client, "invoice", invoice.id)
        assert ">Void in Xero<" not in page and ">Update<" not in page and ">Send" not in page
    assert sandbox.violations() == []


def test_invoices_of_a_new_client_sent_at_once_by_two_workers_make_one_contact(client, connected, sandbox):
    """Each invoice push first creates its client at the provider when it is not
    there yet; pushed side by side they take turns at that step, so the second
    finds the contact the first made instead of creating it again (Xero refuses a
    second contact of the same name, which used to fail one of the invoices)."""
    customer = make_client(connected, name="Side By Side Ltd")
    invoices = [make_invoice(connected, customer, number=f"INV-SBS{n}") for n in range(4)]
    sandbox.control("faults", latency_ms=400)  # every call takes a while: the workers' lookups overlap
    for invoice in invoices:
        press(client, "invoice", invoice.id)
    pushes = wait_for_pushes(expected=4)

    assert [(p.state, p.error_message or "") for p in pushes] == [("succeeded", "")] * 4
    contacts = [c for c in organisation(sandbox)["contacts"] if c["Name"] == "Side By Side Ltd"]
    assert len(contacts) == 1
    assert sorted(i["InvoiceNumber"] for i in remote_invoices(sandbox)
                  if i["Contact"]["ContactID"] == contacts[0]["ContactID"]) == [f"INV-SBS{n}" for n in range(4)]
