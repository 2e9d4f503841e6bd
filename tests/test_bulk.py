"""Bulk sends with Xero played by `responses` (every accounting request checked
against the official spec by the `xero_api` fixture).

Tests drive the doors a user does (POST /integrations/bulk, the progress page,
Retry failed) and run the RQ jobs in-process; assertions are on what Xero
received, what PlanMan recorded per record and what the page says."""
from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from planman import jobs
from planman.extensions import db
from planman.integrations import bulk as bulk_engine
from planman.models import BulkPush, ExternalLink, PushJob
from tests.helpers import client, login, make_client, make_invoice, new_client, post_form, signup  # noqa: F401
from tests.test_push_xero import API, TENANT, _connect, run_jobs, run_scheduled_now
from tests.xero_spec import xero_api  # noqa: F401

NAME_TAKEN = "The contact name {} is already assigned to another contact. The contact name must be unique across all active contacts."
LOCKED = "Invoice not of valid status for modification"
C_OURS, C_THEIRS, C_ONE, I_GONE, I_OTHER = (str(uuid.UUID(int=n)) for n in range(1, 6))


class FakeXero:
    """Just enough of Xero's contacts and invoices, with per-element answers
    (summarizeErrors=false), to watch what a bulk send asks for."""

    def __init__(self, mock):
        self.contacts: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.refuse_names: set[str] = set()
        self.fail_writes = 0  # next N writes answer 503
        self.rate_limit_writes = 0  # next N writes answer 429
        self.rate_limit = ("7", "minute")  # their Retry-After and X-Rate-Limit-Problem
        self.headers: dict[str, str] = {}
        self.mock = mock
        for method in ("GET", "PUT", "POST"):
            mock.rsps.add_callback(method, re.compile(rf"{re.escape(API)}/(Contacts|Invoices)(/.*)?(\?.*)?$"),
                                   callback=self._answer)

    # -- what PlanMan sent -------------------------------------------------------
    def calls(self, method=None, resource=None):
        out = []
        for call in self.mock.calls:
            request = call.request
            path = urlsplit(request.url).path
            if (method is None or request.method == method) and (resource is None or path.endswith("/" + resource)):
                out.append(request)
        return out

    def bodies(self, method, resource):
        key = resource
        return [json.loads(r.body)[key] for r in self.calls(method, resource)]

    # -- answers ---------------------------------------------------------------------
    def _answer(self, request):
        url = urlsplit(request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        resource = url.path.rsplit("/api.xro/2.0/", 1)[1].split("/")[0]
        if request.method != "GET":
            if self.rate_limit_writes:
                self.rate_limit_writes -= 1
                return 429, {"Retry-After": self.rate_limit[0], "X-Rate-Limit-Problem": self.rate_limit[1]}, "{}"
            if self.fail_writes:
                self.fail_writes -= 1
                return 503, {}, "Service Unavailable"
        body = json.loads(request.body) if request.body else {}
        handler = getattr(self, f"_{request.method.lower()}_{resource.lower()}")
        return 200, {"Content-Type": "application/json", **self.headers}, json.dumps(handler(query, body))

    def _get_contacts(self, query, body):
        wanted = re.findall(r'(\w+)=="((?:[^"\\]|\\.)*)"', query.get("where", ""))
        found = [c for c in self.contacts.values()
                 if any(c.get(field, "").casefold() == value.casefold() for field, value in wanted)]
        return {"Contacts": found}

    def _put_contacts(self, query, body):
        out = []
        for element in body["Contacts"]:
            name_taken = any(c["Name"] == element["Name"] for c in self.contacts.values())
            if element["Name"] in self.refuse_names or name_taken:
                out.append({**element, "HasValidationErrors": True,
                            "ValidationErrors": [{"Message": NAME_TAKEN.format(element["Name"])}]})
                continue
            contact = {**element, "ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE"}
            self.contacts[contact["ContactID"]] = contact
            out.append(contact)
        return {"Contacts": out}

    def _post_contacts(self, query, body):
        out = []
        for element in body["Contacts"]:
            contact = self.contacts[element["ContactID"]]
            contact.update(element)
            out.append(contact)
        return {"Contacts": out}

    def _get_invoices(self, query, body):
        numbers = set(filter(None, query.get("InvoiceNumbers", "").split(",")))
        ids = set(filter(None, query.get("IDs", "").split(",")))
        return {"Invoices": [i for i in self.invoices.values() if i["InvoiceNumber"] in numbers or i["InvoiceID"] in ids]}

    def _put_invoices(self, query, body):
        out = []
        for element in body["Invoices"]:
            if element["Contact"]["ContactID"] not in self.contacts:
                out.append({**element, "HasErrors": True, "ValidationErrors": [{"Message": "Contact not found"}]})
                continue
            if self.contacts[element["Contact"]["ContactID"]].get("ContactStatus") == "ARCHIVED":
                out.append({**element, "HasErrors": True, "ValidationErrors": [
                    {"Message": "The contact is archived and cannot be used."}]})
                continue
            invoice = {**element, "InvoiceID": str(uuid.uuid4()), "Status": element.get("Status", "DRAFT")}
            self.invoices[invoice["InvoiceID"]] = invoice
            out.append(invoice)
        return {"Invoices": out}

    def _post_invoices(self, query, body):
        out = []
        for element in body["Invoices"]:
            invoice = self.invoices.get(element["InvoiceID"])
            if invoice is None:
                out.append({**element, "HasErrors": True, "ValidationErrors": [
                    {"Message": f"Invoice with InvoiceID {element['InvoiceID']} could not be found."}]})
            elif invoice["Status"] not in ("DRAFT", "SUBMITTED"):
                out.append({**element, "HasErrors": True, "ValidationErrors": [{"Message": LOCKED}]})
            else:
                invoice.update({k: v for k, v in element.items() if k != "Status"})
                out.append(invoice)
        return {"Invoices": out}


@pytest.fixture
def xero(xero_api):
    return FakeXero(xero_api)


@pytest.fixture
def firm(client):
    admin = signup(client)
    return admin, _connect(admin)


def send(client, record_type, mode="selected", ids=()):
    return post_form(client, "/integrations/bulk", {"record_type": record_type, "mode": mode, "ids": list(ids)},
                     form_url="/integrations/bulk")


def only_bulk() -> BulkPush:
    db.session.expire_all()
    return db.session.scalar(sa.select(BulkPush).order_by(BulkPush.id.desc()).limit(1))


def pushes(record_type=None):
    db.session.expire_all()  # jobs ran in their own app context and session
    query = sa.select(PushJob).order_by(PushJob.id)
    if record_type:
        query = query.where(PushJob.record_type == record_type)
    return db.session.scalars(query).all()


def link_of(record_type, record_id):
    return db.session.scalar(sa.select(ExternalLink).where(ExternalLink.record_type == record_type,
                                                           ExternalLink.record_id == record_id))


# --- clients --------------------------------------------------------------------

def test_120_new_clients_go_in_three_batches_with_one_lookup_each(app, client, firm, xero):
    admin, _ = firm
    records = [make_client(admin, name=f"Client {n:03d}") for n in range(120)]

    response = send(client, "client", mode="not_sent")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/integrations/bulk/{only_bulk().id}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<progress" in page and 'hx-trigger="load delay:1s"' in page and ">120<" in page  # remaining
    assert "About 6 seconds left." in page  # before any pace: 3 batches x 2 calls at 60 a minute
    run_jobs(app)

    creates = xero.bodies("PUT", "Contacts")
    assert [len(batch) for batch in creates] == [50, 50, 20]
    assert len(xero.calls("GET", "Contacts")) == 3  # one OR-query per batch, not one per record
    assert len(xero.calls()) == 6
    for request in xero.calls("PUT", "Contacts"):
        assert "summarizeErrors=false" in request.url
        assert re.match(r"planman-bulk-b\d+-client-create-(50|20)-", request.headers["Idempotency-Key"])
    assert len({r.headers["Idempotency-Key"] for r in xero.calls("PUT", "Contacts")}) == 3
    lookup = parse_qs(urlsplit(xero.calls("GET", "Contacts")[0].url).query)["where"][0]
    assert f'ContactNumber=="{records[0].reference}"' in lookup and 'Name=="Client 000"' in lookup
    # Each record ends as a single push would: linked, "created", its own contact.
    sent_numbers = [c["ContactNumber"] for batch in creates for c in batch]
    assert sorted(sent_numbers) == sorted(r.reference for r in records)
    assert {(p.state, p.outcome) for p in pushes()} == {("succeeded", "created")}
    assert len(xero.contacts) == 120
    assert {link_of("client", r.id).external_id for r in records} == set(xero.contacts)

    page = client.get(f"/integrations/bulk/{only_bulk().id}/progress").get_data(as_text=True)
    assert 'class="bulk-sent">120<' in page and 'class="bulk-remaining">0<' in page
    assert "hx-trigger" not in page and "Finished" in page  # stops polling when done
    assert only_bulk().finished_at is not None


def test_one_refused_contact_fails_alone_and_retry_sends_just_it(app, client, firm, xero):
    admin, _ = firm
    good = [make_client(admin, name=f"Good {n}") for n in range(4)]
    bad = make_client(admin, name="Taken Name")
    xero.refuse_names.add("Taken Name")

    send(client, "client", ids=[c.id for c in good + [bad]])
    run_jobs(app)

    assert len(xero.calls("PUT", "Contacts")) == 1
    states = {p.record_id: p for p in pushes()}
    assert all(states[c.id].state == "succeeded" for c in good)
    failed = states[bad.id]
    assert failed.state == "failed" and NAME_TAKEN.format("Taken Name") in failed.error_message
    assert failed.error_fields == {"name": [NAME_TAKEN.format("Taken Name")]}  # as a single push records it
    assert link_of("client", bad.id) is None

    first = only_bulk()
    page = client.get(f"/integrations/bulk/{first.id}").get_data(as_text=True)
    assert 'class="bulk-failed">1<' in page and "Client Taken Name" in page and NAME_TAKEN.format("Taken Name") in page
    assert "Retry failed (1)" in page

    xero.refuse_names.clear()
    retried = post_form(client, f"/integrations/bulk/{first.id}/retry", {}, form_url=f"/integrations/bulk/{first.id}")
    second = only_bulk()
    assert second.id != first.id and retried.headers["Location"].endswith(f"/integrations/bulk/{second.id}")
    assert [p.record_id for p in pushes() if p.bulk_push_id == second.id] == [bad.id]
    run_jobs(app)
    assert xero.bodies("PUT", "Contacts")[-1] == [json.loads(xero.calls("PUT", "Contacts")[-1].body)["Contacts"][0]]
    assert [c["Name"] for c in xero.bodies("PUT", "Contacts")[-1]] == ["Taken Name"]
    assert link_of("client", bad.id) is not None
    assert "Retry failed" not in client.get(f"/integrations/bulk/{second.id}").get_data(as_text=True)


def test_existing_contacts_are_found_by_number_then_name_not_duplicated(app, client, firm, xero):
    admin, _ = firm
    ours = make_client(admin, name="Made Before")
    theirs = make_client(admin, name="Already In Xero")
    fresh = make_client(admin, name="Brand New")
    xero.contacts[C_OURS] = {"ContactID": C_OURS, "Name": "Made Before", "ContactNumber": ours.reference,
                               "ContactStatus": "ACTIVE"}
    xero.contacts[C_THEIRS] = {"ContactID": C_THEIRS, "Name": "Already In Xero", "ContactNumber": "OTHER-1",
                                 "ContactStatus": "ACTIVE"}

    send(client, "client", ids=[ours.id, theirs.id, fresh.id])
    run_jobs(app)

    assert len(xero.calls("GET", "Contacts")) == 1
    [saved] = xero.bodies("POST", "Contacts")
    by_id = {c["ContactID"]: c for c in saved}
    assert by_id[C_OURS]["ContactNumber"] == ours.reference
    assert "ContactNumber" not in by_id[C_THEIRS]  # another system's reference is left alone
    assert [c["Name"] for c in xero.bodies("PUT", "Contacts")[0]] == ["Brand New"]
    outcomes = {p.record_id: p.outcome for p in pushes()}
    # "Made Before" carries our own reference: PlanMan created it (its answer was lost), so "created".
    assert outcomes == {ours.id: "created", theirs.id: "linked", fresh.id: "created"}
    assert not link_of("client", ours.id).linked_existing
    assert link_of("client", theirs.id).linked_existing and link_of("client", theirs.id).external_id == C_THEIRS
    assert len(xero.contacts) == 3


def test_all_changed_since_last_sent_picks_only_changed_records(app, client, firm, xero):
    admin, connection = firm
    same, changed, never = (make_client(admin, name=n) for n in ("Same Co", "Changed Co", "Never Sent"))
    send(client, "client", ids=[same.id, changed.id])
    run_jobs(app)
    changed.email = "new@changed.test"
    changed.revision += 1
    db.session.commit()

    send(client, "client", mode="changed")
    run_jobs(app)

    [update] = xero.bodies("POST", "Contacts")
    assert [c["Name"] for c in update] == ["Changed Co"] and update[0]["EmailAddress"] == "new@changed.test"
    assert [p.record_id for p in pushes() if p.bulk_push_id == only_bulk().id] == [changed.id]
    assert link_of("client", never.id) is None


def test_thousands_of_records_are_queued_in_one_send(app, client, firm, xero):
    admin, _ = firm
    from planman.models import Client

    db.session.execute(sa.insert(Client), [{"firm_id": admin.firm_id, "name": f"Client {n:05d}"} for n in range(2100)])
    db.session.commit()

    send(client, "client", mode="not_sent")

    assert db.session.scalar(sa.select(sa.func.count(PushJob.id)).where(PushJob.state == "queued")) == 2100
    assert (app.push_queue.count, jobs.bulk_queue(app).count) == (0, 1)  # one job chain on the bulk queue
    page = client.get(f"/integrations/bulk/{only_bulk().id}/progress").get_data(as_text=True)
    assert 'class="bulk-remaining">2100<' in page


# --- invoices -------------------------------------------------------------------

def test_invoices_send_missing_clients_first_then_one_lookup_and_one_create_per_batch(app, client, firm, xero):
    admin, _ = firm
    customers = [make_client(admin, name=f"Customer {n}") for n in range(3)]
    invoices = [make_invoice(admin, customers[n % 3], number=f"INV-{n:04d}") for n in range(60)]

    send(client, "invoice", mode="not_sent")
    run_jobs(app)

    order = [(r.method, urlsplit(r.url).path.rsplit("/", 1)[1]) for r in xero.calls()]
    assert order == [("GET", "Contacts"), ("PUT", "Contacts"),
                     ("GET", "Invoices"), ("PUT", "Invoices"), ("GET", "Invoices"), ("PUT", "Invoices")]
    assert [len(b) for b in xero.bodies("PUT", "Invoices")] == [50, 10]
    lookups = [parse_qs(urlsplit(r.url).query)["InvoiceNumbers"][0].split(",") for r in xero.calls("GET", "Invoices")]
    assert [len(numbers) for numbers in lookups] == [50, 10]
    contact_ids = {link_of("client", c.id).external_id for c in customers}
    assert {i["Contact"]["ContactID"] for batch in xero.bodies("PUT", "Invoices") for i in batch} == contact_ids
    assert all(r.headers["Idempotency-Key"].startswith(f"planman-bulk-b{pushes()[0].bulk_push_id}-invoice-create-")
               for r in xero.calls("PUT", "Invoices"))
    assert {(p.record_type, p.state, p.outcome) for p in pushes()} == {("client", "succeeded", "created"),
                                                                        ("invoice", "succeeded", "created")}
    assert len(pushes("client")) == 3 and len(pushes("invoice")) == 60
    assert {link_of("invoice", i.id).remote_status for i in invoices} == {"DRAFT"}
    page = client.get(f"/integrations/bulk/{only_bulk().id}").get_data(as_text=True)
    assert "Clients: 3 sent, 0 failed of 3; Invoices: 60 sent, 0 failed of 60." in page


def test_linked_invoices_are_updated_locked_or_sent_again_each_on_its_own(app, client, firm, xero):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    draft, approved, vanished, numbered_elsewhere = (make_invoice(admin, customer, number=f"INV-{n}") for n in range(4))
    xero.contacts[C_ONE] = {"ContactID": C_ONE, "Name": "Acme Ltd", "ContactNumber": customer.reference,
                            "ContactStatus": "ACTIVE"}
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=customer.id, external_id=C_ONE))
    for invoice, status in ((draft, "DRAFT"), (approved, "AUTHORISED")):
        invoice_id = str(uuid.uuid4())
        xero.invoices[invoice_id] = {"InvoiceID": invoice_id, "InvoiceNumber": invoice.number, "Status": status,
                                     "Url": f"http://planman.test/invoices/{invoice.id}", "Contact": {"ContactID": C_ONE}}
        db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="invoice",
                                    record_id=invoice.id, external_id=invoice_id, remote_status="DRAFT"))
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="invoice",
                                record_id=vanished.id, external_id=I_GONE, remote_status="DRAFT"))
    xero.invoices[I_OTHER] = {"InvoiceID": I_OTHER, "InvoiceNumber": numbered_elsewhere.number, "Status": "DRAFT",
                                "Url": "", "Contact": {"ContactID": C_ONE}}
    db.session.commit()

    send(client, "invoice", ids=[draft.id, approved.id, vanished.id, numbered_elsewhere.id])
    run_jobs(app)

    assert len(xero.calls("GET", "Invoices")) == 2  # one IDs query (linked), one InvoiceNumbers query (the rest)
    assert len(xero.calls("POST", "Invoices")) == 1 and len(xero.calls("PUT", "Invoices")) == 1
    assert all("Status" not in element for element in xero.bodies("POST", "Invoices")[0])  # Xero's status stands
    assert xero.bodies("PUT", "Invoices")[0][0]["Status"] == "DRAFT"  # only a first send sets it
    result = {p.record_id: p for p in pushes("invoice")}
    assert (result[draft.id].state, result[draft.id].outcome) == ("succeeded", "updated")
    assert (result[approved.id].state, result[approved.id].outcome) == ("failed", "locked")
    assert "does not allow changes once it has been approved" in result[approved.id].error_message
    assert link_of("invoice", approved.id).remote_status == "AUTHORISED"
    assert (result[vanished.id].state, result[vanished.id].outcome) == ("succeeded", "created")
    assert link_of("invoice", vanished.id).external_id not in (I_GONE,)
    assert result[numbered_elsewhere.id].state == "failed"
    assert "already has an invoice numbered INV-3" in result[numbered_elsewhere.id].error_message
    assert [i["InvoiceNumber"] for i in xero.bodies("PUT", "Invoices")[0]] == ["INV-2"]
    page = client.get(f"/integrations/bulk/{only_bulk().id}").get_data(as_text=True)
    assert "Retry failed (1)" in page  # the locked one is not retried


def test_invoices_of_an_archived_contact_fail_explained_and_are_not_offered_for_retry(app, client, firm, xero):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    archived, fine = make_invoice(admin, customer, number="INV-50"), make_invoice(admin, make_client(admin, name="Bolt"))
    xero.contacts[C_ONE] = {"ContactID": C_ONE, "Name": "Acme Ltd", "ContactStatus": "ARCHIVED"}
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=customer.id, external_id=C_ONE, remote_status="ACTIVE"))
    db.session.commit()

    send(client, "invoice", ids=[archived.id, fine.id])
    run_jobs(app)

    result = {p.record_id: p for p in pushes("invoice")}
    assert (result[archived.id].state, result[archived.id].outcome) == ("failed", "blocked")
    assert "its contact “Acme Ltd” is archived in Xero" in result[archived.id].error_message
    assert result[fine.id].state == "succeeded"
    assert link_of("client", customer.id).remote_status == "ARCHIVED"
    assert "Retry failed" not in client.get(f"/integrations/bulk/{only_bulk().id}").get_data(as_text=True)


def test_invoice_whose_client_is_refused_fails_with_the_clients_reason(app, client, firm, xero):
    admin, _ = firm
    refused = make_client(admin, name="Taken Name")
    fine = make_client(admin, name="Fine Co")
    bad_invoice = make_invoice(admin, refused, number="INV-B")
    good_invoice = make_invoice(admin, fine, number="INV-G")
    xero.refuse_names.add("Taken Name")

    send(client, "invoice", ids=[bad_invoice.id, good_invoice.id])
    run_jobs(app)

    result = {(p.record_type, p.record_id): p for p in pushes()}
    assert result[("invoice", good_invoice.id)].state == "succeeded"
    failed = result[("invoice", bad_invoice.id)]
    assert failed.state == "failed" and failed.error_message.startswith("Its client could not be sent to Xero:")
    assert failed.error_fields == {"name": [NAME_TAKEN.format("Taken Name")]}
    assert [i["InvoiceNumber"] for i in xero.bodies("PUT", "Invoices")[0]] == ["INV-G"]


def test_one_invoice_whose_client_is_refused_says_so_like_a_bulk_send(app, client, firm, xero):
    from tests.test_push_xero import panel_url
    from tests.test_push_xero import send as press

    admin, _ = firm
    invoice = make_invoice(admin, make_client(admin, name="Taken Name"), number="INV-B")
    xero.refuse_names.add("Taken Name")

    press(client, "invoice", invoice.id)
    run_jobs(app)

    [failed] = pushes("invoice")
    assert failed.state == "failed"
    assert failed.error_message == "Its client could not be sent to Xero: " + NAME_TAKEN.format("Taken Name")
    assert failed.error_fields == {"name": [NAME_TAKEN.format("Taken Name")]}
    assert "Its client could not be sent to Xero" in client.get(panel_url("invoice", invoice.id)).get_data(
        as_text=True)
    assert xero.calls("PUT", "Invoices") == []


# --- rate limits, outages, the daily limit ----------------------------------------

def test_a_rate_limited_batch_is_rescheduled_and_then_completes_without_duplicates(app, client, firm, xero):
    admin, _ = firm
    records = [make_client(admin, name=f"Client {n}") for n in range(3)]
    xero.rate_limit_writes = 1

    send(client, "client", mode="not_sent")
    before = time.time()
    run_jobs(app)

    waiting = pushes()
    assert {(p.state, p.attempts) for p in waiting} == {("retrying", 0)}  # the wait is not an attempt
    assert all(5 <= p.next_attempt_at.timestamp() - before <= 9 for p in waiting)  # about Retry-After
    page = client.get(f"/integrations/bulk/{only_bulk().id}").get_data(as_text=True)
    assert "slow down" in page and 'hx-trigger="load delay:1s"' in page
    assert jobs.bulk_queue(app).count == 0  # rescheduled through the scheduler, nothing slept through

    app.redis.delete(f"throttle:xero:{TENANT}:blocked_until")
    for p in waiting:
        p.next_attempt_at = p.next_attempt_at.replace(year=2000)  # let the clock jump forward
    db.session.commit()
    run_scheduled_now(app)

    assert {p.state for p in pushes()} == {"succeeded"}
    assert len(xero.contacts) == 3 and len(xero.calls("PUT", "Contacts")) == 2
    assert len({link_of("client", r.id).external_id for r in records}) == 3


def test_server_errors_retry_the_batch_with_the_same_key_then_give_up(app, client, firm, xero):
    admin, _ = firm
    make_client(admin, name="Acme Ltd")
    make_client(admin, name="Brightside LLP")
    xero.fail_writes = 3

    send(client, "client", mode="not_sent")
    run_jobs(app)
    for _ in range(2):
        for p in pushes():
            p.next_attempt_at = p.next_attempt_at.replace(year=2000)
        db.session.commit()
        run_scheduled_now(app)

    puts = xero.calls("PUT", "Contacts")
    assert len(puts) == 3 and len({r.headers["Idempotency-Key"] for r in puts}) == 1  # same batch, same key
    assert {(p.state, p.attempts) for p in pushes()} == {("failed", 3)}
    assert all("Gave up after 3 attempts" in p.error_message for p in pushes())
    assert only_bulk().finished_at is not None


def test_a_new_bulk_send_of_the_same_records_is_a_new_write_not_a_replay(app, client, firm, xero):
    admin, _ = firm
    records = [make_client(admin, name=name) for name in ("Acme Ltd", "Brightside LLP")]
    send(client, "client", mode="not_sent")
    run_jobs(app)

    for _ in range(2):  # unchanged, updated again on purpose, twice
        send(client, "client", ids=[r.id for r in records])
        run_jobs(app)

    first, second = xero.calls("POST", "Contacts")
    assert json.loads(first.body) == json.loads(second.body)
    assert first.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]  # Xero would replay the first
    assert [(p.state, p.outcome) for p in pushes()] == [("succeeded", "created")] * 2 + [("succeeded", "updated")] * 4
def resumes_at(paused) -> str:
    """When a paused send resumes, as the page says it: in the firm's zone (a
    new firm's is Europe/London), no longer in UTC (issue 13)."""
    from planman.timezones import describe

    iso, text, full = describe(paused.paused_until, "Europe/London", "time")
    return f'resumes at <time datetime="{iso}" title="{full}">{text}</time>'



def test_near_the_daily_limit_the_send_pauses_and_says_when_it_resumes(app, client, firm, xero):
    admin, _ = firm
    for n in range(60):
        make_client(admin, name=f"Client {n}")
    xero.headers = {"X-DayLimit-Remaining": "40", "X-MinLimit-Remaining": "50"}

    send(client, "client", mode="not_sent")
    run_jobs(app)

    assert len(xero.calls("PUT", "Contacts")) == 1  # the first batch, then it stopped
    paused = only_bulk()
    assert paused.paused_until is not None and paused.finished_at is None
    assert 3500 <= (paused.paused_until - bulk_engine.utcnow()).total_seconds() <= 3700
    assert {p.state for p in pushes()} == {"succeeded", "queued"}  # nothing failed for it
    page = client.get(f"/integrations/bulk/{paused.id}").get_data(as_text=True)
    assert "Paused:" in page and resumes_at(paused) in page


def test_xeros_daily_limit_pauses_the_send_instead_of_failing_records(app, client, firm, xero):
    admin, _ = firm
    make_client(admin, name="Acme Ltd")
    xero.rate_limit_writes, xero.rate_limit = 1, ("5400", "day")

    send(client, "client", mode="not_sent")
    run_jobs(app)

    paused = only_bulk()
    assert 5300 <= (paused.paused_until - bulk_engine.utcnow()).total_seconds() <= 5500
    assert {(p.state, p.attempts) for p in pushes()} == {("retrying", 0)}
    page = client.get(f"/integrations/bulk/{paused.id}/progress").get_data(as_text=True)
    assert 'data-bulk-state="paused"' in page and resumes_at(paused) in page
    assert re.search(r"About 9[01] minutes left\.", page)  # the pause counts towards the time left


def test_the_time_left_after_a_pause_counts_only_the_time_spent_sending(app, client, firm, xero):
    admin, _ = firm
    for n in range(200):
        make_client(admin, name=f"Client {n}")
    xero.headers = {"X-DayLimit-Remaining": "40", "X-MinLimit-Remaining": "50"}
    send(client, "client", mode="not_sent")
    run_jobs(app)  # the first batch of 50, then an hour's pause
    bulk = only_bulk()

    # The hour passes: the pause ended a minute ago (every time of the send moves back).
    shift = bulk.paused_until - bulk_engine.utcnow() + timedelta(minutes=1)
    bulk.created_at -= shift
    bulk.paused_until -= shift
    db.session.commit()
    for p in pushes():
        p.created_at -= shift
        p.started_at = p.started_at and p.started_at - shift
        p.finished_at = p.finished_at and p.finished_at - shift
    db.session.commit()

    def time_left() -> str:
        page = client.get(f"/integrations/bulk/{bulk.id}/progress").get_data(as_text=True)
        assert 'data-bulk-state="sending"' in page
        return re.search(r"About [^.]+ left\.", page).group(0)

    # Nothing sent since: three batches at Xero's 60 calls a minute, not the hour it paused for again.
    assert time_left() == "About 6 seconds left."
    # 50 more in the minute since it resumed: the other 100 take about twice as long.
    sent_since = [p for p in pushes() if p.state == "queued"][:50]
    for p in sent_since:
        p.state, p.started_at, p.finished_at = "succeeded", bulk_engine.utcnow() - timedelta(seconds=50), \
            bulk_engine.utcnow() - timedelta(seconds=30)
    db.session.commit()
    assert time_left() in ("About 2 minutes left.", "About 3 minutes left.")

    # The next batch goes, and Xero's daily limit pauses the send again: 50 left.
    for key in app.redis.scan_iter("throttle:*"):
        app.redis.delete(key)
    run_scheduled_now(app)
    assert [p.state for p in pushes()].count("queued") == 50
    page = client.get(f"/integrations/bulk/{bulk.id}/progress").get_data(as_text=True)
    assert 'data-bulk-state="paused"' in page
    # The hour's pause plus the pace since the first pause ended (100 in about a minute),
    # not a pace that counts the first pause as sending (that read about 80 minutes).
    assert re.search(r"About 6[01] minutes left\.", page), re.search(r"About [^.]+ left", page).group(0)


def test_a_send_whose_job_was_lost_ends_with_a_reason_instead_of_spinning(app, client, firm, xero):
    admin, _ = firm
    make_client(admin, name="Acme Ltd")
    send(client, "client", mode="not_sent")
    app.redis.flushall()  # the queue lost its job (Redis emptied)
    for p in pushes():
        p.created_at = p.created_at.replace(year=2000)
    db.session.commit()

    page = client.get(f"/integrations/bulk/{only_bulk().id}/progress").get_data(as_text=True)

    assert 'data-bulk-state="finished"' in page and "interrupted" in page and "Retry failed (1)" in page
    assert {p.state for p in pushes()} == {"failed"}


# --- joining, isolation, pages ------------------------------------------------------

def test_a_record_already_being_pushed_is_joined_not_sent_twice(app, client, firm, xero):
    admin, connection = firm
    busy = make_client(admin, name="Busy Co")
    idle = make_client(admin, name="Idle Co")
    from planman.integrations import push

    single, _ = push.start_push(connection, "client", busy.id, user_id=admin.id)

    response = send(client, "client", ids=[busy.id, idle.id])
    assert response.status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(PushJob.id))) == 2
    assert db.session.get(PushJob, single.id).bulk_push_id == only_bulk().id  # followed by the bulk page
    run_jobs(app)
    assert len(xero.contacts) == 2
    assert {p.state for p in pushes()} == {"succeeded"}


def test_the_bulk_sends_page_read_while_a_bulk_send_starts_does_not_end_it(app, client, firm, xero, monkeypatch):
    """The bulk and its pushes appear together: a list of bulk sends read in
    between (in another browser) used to find a bulk with nothing left and
    finish it, and nothing was sent."""
    admin, _ = firm
    records = [make_client(admin, name=f"Client {n}") for n in range(3)]
    other_browser = new_client(app)
    assert login(other_browser, admin.email).status_code == 302
    seen_meanwhile = []
    add_pushes = bulk_engine._add_pushes

    def with_the_list_read_meanwhile(*args, **kwargs):
        seen_meanwhile.append(other_browser.get("/integrations/bulk").get_data(as_text=True))
        return add_pushes(*args, **kwargs)

    monkeypatch.setattr(bulk_engine, "_add_pushes", with_the_list_read_meanwhile)
    send(client, "client", mode="not_sent")
    assert seen_meanwhile and "Recent bulk sends" in seen_meanwhile[0]
    run_jobs(app)

    assert len(xero.contacts) == 3 and {p.state for p in pushes()} == {"succeeded"}
    assert {link_of("client", r.id).external_id for r in records} == set(xero.contacts)
    page = client.get(f"/integrations/bulk/{only_bulk().id}/progress").get_data(as_text=True)
    assert 'class="bulk-sent">3<' in page and "Finished" in page


def test_a_click_landing_between_the_check_and_the_insert_is_joined(app, client, firm, xero, monkeypatch):
    """The one-active-push-per-record index settles it: the bulk joins the
    click's push instead of failing, and sends the rest."""
    admin, connection = firm
    clicked = make_client(admin, name="Clicked Co")
    others = [make_client(admin, name=f"Other {n}") for n in range(2)]
    from planman.integrations import push
    real_utcnow = bulk_engine.utcnow
    clicks = []

    def click_first():  # runs after the bulk has looked for pushes under way, before it inserts its own
        if not clicks:
            clicks.append(db.session.execute(sa.insert(PushJob).values(
                firm_id=admin.firm_id, provider="xero", tenant_id=connection.tenant_id, record_type="client",
                record_id=clicked.id, state="queued", requested_by_id=admin.id)).inserted_primary_key[0])
        return real_utcnow()

    monkeypatch.setattr(bulk_engine, "utcnow", click_first)
    send(client, "client", ids=[clicked.id] + [o.id for o in others])
    monkeypatch.undo()

    bulk = only_bulk()
    rows = {p.record_id: p for p in pushes()}
    assert len(rows) == 3 and rows[clicked.id].id == clicks[0]  # one push each, the click's kept
    assert rows[clicked.id].bulk_push_id == bulk.id  # followed by the bulk page
    push.enqueue_push(rows[clicked.id])
    run_jobs(app)
    assert len(xero.contacts) == 3 and {p.state for p in pushes()} == {"succeeded"}
    page = client.get(f"/integrations/bulk/{bulk.id}/progress").get_data(as_text=True)
    assert 'class="bulk-sent">3<' in page and "Finished" in page


def test_another_firms_bulk_send_is_404(app, client, firm, xero):
    admin, _ = firm
    make_client(admin, name="Acme Ltd")
    send(client, "client", mode="not_sent")
    bulk_id = only_bulk().id
    stranger = new_client(app)
    signup(stranger)
    assert stranger.get(f"/integrations/bulk/{bulk_id}").status_code == 404
    assert stranger.get(f"/integrations/bulk/{bulk_id}/progress").status_code == 404
    assert post_form(stranger, f"/integrations/bulk/{bulk_id}/retry", {}, form_url="/integrations/bulk").status_code == 404
    assert f"/integrations/bulk/{bulk_id}" not in stranger.get("/integrations/bulk").get_data(as_text=True)
    # Another firm's ids in a selection are dropped, not sent.
    other = make_client(admin, name="Not Yours")
    post_form(stranger, "/integrations/bulk", {"record_type": "client", "ids": [other.id]}, form_url="/integrations/bulk")
    assert db.session.scalar(sa.select(sa.func.count(BulkPush.id))) == 1


def test_bulk_start_needs_csrf_and_a_connection(app, client):
    signup(client)
    assert client.post("/integrations/bulk", data={"record_type": "client", "mode": "not_sent"}).status_code == 400
    response = send(client, "client", mode="not_sent")
    assert response.status_code == 302
    assert "Connect Xero" in client.get("/integrations/bulk").get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(BulkPush.id))) == 0


def test_recent_bulk_sends_are_listed_with_their_progress(app, client, firm, xero):
    admin, _ = firm
    make_client(admin, name="Acme Ltd")
    send(client, "client", mode="not_sent")
    run_jobs(app)
    page = client.get("/integrations/bulk").get_data(as_text=True)
    assert f'href="/integrations/bulk/{only_bulk().id}"' in page and "1 sent" in page and "<progress" in page
    assert "<script>" not in page and "style=" not in page


def test_recent_bulk_sends_are_linked_from_integrations_and_failed_pushes(app, client, firm):
    for url in ("/integrations/", "/integrations/failed"):
        assert 'href="/integrations/bulk">Recent bulk sends<' in client.get(url).get_data(as_text=True)


# -- the failed-pushes list ------------------------------------------------------------------

def failed_push(admin, record_type, record_id, *, outcome="error", message="Xero did not answer.", **fields):
    from planman.models import utcnow

    row = PushJob(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type=record_type,
                  record_id=record_id, state="failed", outcome=outcome, error_message=message,
                  finished_at=utcnow(), **fields)
    db.session.add(row)
    db.session.commit()
    return row


def test_a_failure_sent_since_by_another_push_leaves_the_failed_list(app, client, firm):
    from planman.models import utcnow

    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    failure = failed_push(admin, "client", customer.id)
    assert f'id="failed-push-{failure.id}"' in client.get("/integrations/failed").get_data(as_text=True)
    # One of its invoices was sent on its own since, and created the client on the way.
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=customer.id, external_id=C_OURS, record_revision=0, pushed_at=utcnow()))
    db.session.commit()
    assert f'id="failed-push-{failure.id}"' not in client.get("/integrations/failed").get_data(as_text=True)


def test_a_push_lost_on_the_way_shows_on_the_failed_list(app, client, firm):
    from datetime import timedelta

    from planman.models import utcnow

    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    lost = PushJob(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                   record_id=customer.id, state="queued", rq_job_id="push-gone",
                   created_at=utcnow() - timedelta(minutes=5))  # its job is not in Redis: lost
    db.session.add(lost)
    db.session.commit()
    page = client.get("/integrations/failed").get_data(as_text=True)
    assert f'id="failed-push-{lost.id}"' in page and "Nothing has failed" not in page


def test_the_failed_list_offers_retry_only_where_a_retry_is_taken_and_says_when_it_is_cut(app, client, firm,
                                                                                          monkeypatch):
    from planman.integrations import panel_views

    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    void = make_invoice(admin, customer, status="void")
    closed = failed_push(admin, "invoice", void.id, outcome="closed", message="This invoice is void in PlanMan.")
    retryable = failed_push(admin, "client", customer.id)
    page = client.get("/integrations/failed").get_data(as_text=True)
    assert f'action="/integrations/pushes/{closed.id}/retry"' not in page  # the route would refuse it
    assert f'action="/integrations/pushes/{retryable.id}/retry"' in page
    monkeypatch.setattr(panel_views, "FAILED_LIST_LIMIT", 1)
    page = " ".join(client.get("/integrations/failed").get_data(as_text=True).split())
    assert "The latest 1 of 2 failed pushes." in page


def test_changed_since_sent_leaves_out_invoices_voided_since(app, client, firm, xero):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    edited, voided = (make_invoice(admin, customer) for _ in range(2))
    for invoice, external in ((edited, I_GONE), (voided, I_OTHER)):
        db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="invoice",
                                    record_id=invoice.id, external_id=external, record_revision=0))
        invoice.revision = 1  # edited since it was sent
    voided.status = "void"  # "Void in Xero" on its page ends it there, not an update
    db.session.commit()
    send(client, "invoice", mode="changed")
    assert [p.record_id for p in pushes() if p.record_type == "invoice"] == [edited.id]


def test_a_second_bulk_send_of_the_same_records_leads_to_the_first(app, client, firm, xero):
    admin, _ = firm
    for name in ("Acme Ltd", "Brightside LLP"):
        make_client(admin, name=name)
    send(client, "client", mode="not_sent")
    first = only_bulk()
    # Clicked again (or by a colleague) before the first has sent anything.
    again = send(client, "client", mode="selected", ids=[p.record_id for p in pushes()])
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/integrations/bulk/{first.id}")
    assert db.session.scalar(sa.select(sa.func.count(BulkPush.id))) == 1  # no "Finished: 0 sent" beside it
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "These are being sent already by the bulk send below" in page
    run_jobs(app)
    assert len(xero.contacts) == 2  # each sent once


def test_a_bulk_failure_sent_since_is_not_retried(app, client, firm):
    from planman.models import utcnow

    admin, _ = firm
    acme, bright = make_client(admin, name="Acme Ltd"), make_client(admin, name="Brightside LLP")
    record = BulkPush(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                      requested_by_id=admin.id, finished_at=utcnow())
    db.session.add(record)
    db.session.commit()
    for customer in (acme, bright):
        failed_push(admin, "client", customer.id, bulk_push_id=record.id)
    page = client.get(f"/integrations/bulk/{record.id}").get_data(as_text=True)
    assert "Retry failed (2)" in page
    # Acme was created since by one of its invoices' pushes.
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=acme.id, external_id=C_OURS, record_revision=0, pushed_at=utcnow()))
    db.session.commit()
    assert "Retry failed (1)" in client.get(f"/integrations/bulk/{record.id}").get_data(as_text=True)


def test_recent_bulk_sends_count_invoices_and_the_clients_they_brought_apart(app, client, firm, xero):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    for _ in range(2):
        make_invoice(admin, customer, status="sent")
    send(client, "invoice", mode="not_sent")
    page = " ".join(client.get("/integrations/bulk").get_data(as_text=True).split())
    assert "<td>2 invoices and 1 client</td>" in page  # not "3 invoices"


def test_a_failure_in_another_organisation_says_so_instead_of_offering_retry(app, client, firm):
    admin, connection = firm
    customer = make_client(admin, name="Acme Ltd")
    failure = failed_push(admin, "client", customer.id)
    connection.tenant_id = "another-organisation"  # the firm connected another organisation since
    db.session.commit()
    page = " ".join(client.get("/integrations/failed").get_data(as_text=True).split())
    assert f'action="/integrations/pushes/{failure.id}/retry"' not in page
    assert "PlanMan is not connected to this organisation now: connect it again to retry." in page
