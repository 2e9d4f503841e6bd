"""Send / Update through the panel, with Xero played by `responses`.

Each test drives the same doors a user does (the panel URL) and runs the RQ
job in-process; assertions are on what Xero received and what the panel shows."""
from __future__ import annotations

import json
import re
import time

import pytest
import requests
import responses
import sqlalchemy as sa
from rq import SimpleWorker

from planman import jobs
from planman.extensions import db
from planman.integrations import push
from planman.integrations.tokens import load_token, store_token
from planman.models import Connection, ExternalLink, PushJob
from tests.xero_spec import xero_api  # noqa: F401
from tests.helpers import client, htmx_post, logout, make_client, make_invoice, new_client, signup, tax_rate  # noqa: F401

API = "https://api.xero.com/api.xro/2.0"
TOKEN_URL = "https://identity.xero.com/connect/token"
TENANT = "8a3b2c1d-0000-4000-8000-000000000001"
CONTACT_ID = "11111111-1111-4111-8111-111111111111"
INVOICE_ID = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def xero(xero_api):
    """Xero played by `responses`; every accounting request is checked against the official spec."""
    return xero_api.rsps


def _connect(user, *, settings=None, expires_in=1800):
    rate = tax_rate(user, "VAT 20%")
    connection = Connection(
        firm_id=user.firm_id, provider="xero", state="connected", tenant_id=TENANT,
        tenant_name="Demo Company (UK)", tenant_short_code="!dmoUK", remote_connection_id="conn-1",
        settings=settings if settings is not None else {
            "sales_account_code": "200", "tax_types": {str(rate.id): "OUTPUT2"}, "no_tax_type": "NONE",
            "invoice_status": "DRAFT",
        },
    )
    store_token(connection, {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": expires_in})
    db.session.add(connection)
    db.session.commit()
    return connection


@pytest.fixture
def firm(client):
    admin = signup(client)
    return admin, _connect(admin)


def panel_url(record_type, record_id):
    return f"/integrations/xero/{record_type}/{record_id}/panel"


def send(client, record_type, record_id):
    return htmx_post(client, panel_url(record_type, record_id), {})


def run_jobs(app):
    SimpleWorker(jobs.queues(app), connection=app.redis).work(burst=True)


def run_scheduled_now(app):
    """Move jobs the push rescheduled into the queue and run them (the scheduler's job)."""
    from rq.registry import ScheduledJobRegistry

    for queue in jobs.queues(app):
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            registry.remove(job_id)
            queue.enqueue_job(queue.fetch_job(job_id))
    run_jobs(app)


def contact_json(name, number="", status="ACTIVE", contact_id=CONTACT_ID):
    return {"ContactID": contact_id, "Name": name, "ContactNumber": number, "ContactStatus": status}


def bodies(mock, method, pattern):
    return [json.loads(call.request.body) for call in mock.calls
            if call.request.method == method and re.search(pattern, call.request.url)]


def xero_refuses_changes_to(admin, customer, invoice, xero):
    """The invoice (and its client) were sent before; Xero now refuses updates to it."""
    for record_type, record_id, external in (("client", customer.id, CONTACT_ID), ("invoice", invoice.id, INVOICE_ID)):
        db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type=record_type,
                                    record_id=record_id, external_id=external, remote_status="DRAFT"))
    db.session.commit()
    xero.post(f"{API}/Invoices/{INVOICE_ID}", status=400, json={
        "ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": "Invoice not of valid status for modification"}]}]})


# --- clients ------------------------------------------------------------------

def test_send_new_client_creates_contact_and_panel_turns_to_update(app, client, firm, xero):
    admin, _ = firm
    record = make_client(admin, name="Acme Ltd", email="ap@acme.test", first_name="Ann", last_name="Lee",
                         phone="0123", address_line1="1 High St", city="Leeds", postcode="LS1 1AA",
                         country="GB", tax_number="GB123")
    xero.get(f"{API}/Contacts", json={"Contacts": []})
    xero.put(f"{API}/Contacts", json={"Contacts": [contact_json("Acme Ltd", record.reference)]})

    page = client.get(panel_url("client", record.id)).get_data(as_text=True)
    assert ">Send<" in page

    response = send(client, "client", record.id)
    assert "Sending to Xero" in response.get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in response.get_data(as_text=True)  # polls while running
    run_jobs(app)

    page = client.get(panel_url("client", record.id)).get_data(as_text=True)
    assert ">Update<" in page and "Sent to Xero." in page
    assert "View in Xero" in page and "hx-trigger" not in page  # finished: stops polling
    created = bodies(xero, "PUT", r"/Contacts")[0]["Contacts"][0]
    assert created["Name"] == "Acme Ltd" and created["ContactNumber"] == record.reference
    assert created["EmailAddress"] == "ap@acme.test" and created["FirstName"] == "Ann"
    assert created["Addresses"][0]["City"] == "Leeds" and created["Phones"][0]["PhoneNumber"] == "0123"
    put = next(c.request for c in xero.calls if c.request.method == "PUT")
    assert put.headers["xero-tenant-id"] == TENANT
    pushed = db.session.scalar(sa.select(PushJob))
    assert put.headers["Idempotency-Key"].startswith(f"planman-p{pushed.id}-client-{record.id}-create-")
    assert "summarizeErrors=false" in put.url
    link = db.session.scalar(sa.select(ExternalLink))
    assert link.external_id == CONTACT_ID and link.record_id == record.id and not link.linked_existing


def test_contact_found_by_name_is_linked_not_duplicated(app, client, firm, xero):
    admin, _ = firm
    record = make_client(admin, name="Existing Co")
    xero.get(f"{API}/Contacts", match=[responses.matchers.query_param_matcher(
        {"where": f'ContactNumber=="{record.reference}"'})], json={"Contacts": []})
    xero.get(f"{API}/Contacts", match=[responses.matchers.query_param_matcher(
        {"searchTerm": "Existing Co", "page": "1", "pageSize": "100"})],
             json={"Contacts": [contact_json("Existing Co", "THEIR-REF-9")]})
    xero.post(f"{API}/Contacts/{CONTACT_ID}", json={"Contacts": [contact_json("Existing Co", "THEIR-REF-9")]})

    send(client, "client", record.id)
    run_jobs(app)

    assert not bodies(xero, "PUT", r"/Contacts")  # nothing created
    update = bodies(xero, "POST", rf"/Contacts/{CONTACT_ID}")[0]["Contacts"][0]
    assert "ContactNumber" not in update  # another system's reference is left alone
    page = client.get(panel_url("client", record.id)).get_data(as_text=True)
    assert "Linked to an existing Xero contact" in page and ">Update<" in page


def test_update_sends_changes_to_the_linked_contact(app, client, firm, xero):
    admin, connection = firm
    record = make_client(admin, name="Acme Ltd")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=record.id, external_id=CONTACT_ID, record_revision=0))  # sent before its last edit
    db.session.commit()
    assert "Changed since last sent" in client.get(panel_url("client", record.id)).get_data(as_text=True)
    xero.post(f"{API}/Contacts/{CONTACT_ID}", json={"Contacts": [contact_json("Acme Ltd", record.reference)]})

    send(client, "client", record.id)
    run_jobs(app)

    assert len(bodies(xero, "POST", rf"/Contacts/{CONTACT_ID}")) == 1
    assert not [c for c in xero.calls if c.request.method == "PUT"]
    page = client.get(panel_url("client", record.id)).get_data(as_text=True)
    assert "Updated in Xero." in page and "Changed since last sent" not in page


def test_validation_error_is_shown_verbatim_with_retry(app, client, firm, xero):
    admin, _ = firm
    record = make_client(admin, name="Dup Name")
    xero.get(f"{API}/Contacts", json={"Contacts": []})
    message = ("The contact name Dup Name is already assigned to another contact. "
               "The contact name must be unique across all active contacts.")
    xero.put(f"{API}/Contacts", json={"Contacts": [{"Name": "Dup Name", "HasValidationErrors": True,
                                                    "ValidationErrors": [{"Message": message}]}]})
    send(client, "client", record.id)
    run_jobs(app)

    page = client.get(panel_url("client", record.id)).get_data(as_text=True)
    assert "Sending failed." in page and message in page
    assert "Name:</strong>" in page  # tied to the field Xero named
    assert ">Retry<" in page
    assert db.session.scalar(sa.select(PushJob)).state == "failed"
    assert db.session.scalar(sa.select(ExternalLink)) is None


# --- invoices -------------------------------------------------------------------

def test_invoice_pushes_its_client_first_then_a_draft(app, client, firm, xero):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    vat = tax_rate(admin, "VAT 20%")
    invoice = make_invoice(admin, customer, lines=((2, "10.00", vat), (1, "5.50", None)), number="INV-0042")
    xero.get(f"{API}/Contacts", json={"Contacts": []})
    xero.put(f"{API}/Contacts", json={"Contacts": [contact_json("Acme Ltd", customer.reference)]})
    xero.get(f"{API}/Invoices", json={"Invoices": []})
    xero.put(f"{API}/Invoices", json={"Invoices": [{"InvoiceID": INVOICE_ID, "InvoiceNumber": "INV-0042",
                                                    "Status": "DRAFT", "Total": 29.5}]})

    send(client, "invoice", invoice.id)
    run_jobs(app)

    sent = bodies(xero, "PUT", r"/Invoices")[0]["Invoices"][0]
    assert sent["Type"] == "ACCREC" and sent["Status"] == "DRAFT"
    assert sent["Contact"] == {"ContactID": CONTACT_ID}
    assert sent["InvoiceNumber"] == "INV-0042" and sent["Date"] == "2026-01-05" and sent["DueDate"] == "2026-02-04"
    assert sent["LineAmountTypes"] == "Exclusive" and sent["CurrencyCode"] == "GBP"
    assert sent["Url"] == f"http://planman.test/invoices/{invoice.id}"
    assert sent["LineItems"] == [
        {"Description": "Line 1", "Quantity": 2, "UnitAmount": 10, "AccountCode": "200", "TaxType": "OUTPUT2"},
        {"Description": "Line 2", "Quantity": 1, "UnitAmount": 5.5, "AccountCode": "200", "TaxType": "NONE"},
    ]
    links = {link.record_type: link for link in db.session.scalars(sa.select(ExternalLink))}
    assert links["client"].external_id == CONTACT_ID and links["invoice"].external_id == INVOICE_ID
    page = client.get(panel_url("invoice", invoice.id)).get_data(as_text=True)
    assert "Draft" in page and ">Update<" in page


def test_approved_invoice_says_it_can_no_longer_be_updated(app, client, firm, xero):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer)
    xero_refuses_changes_to(admin, customer, invoice, xero)
    xero.get(f"{API}/Invoices/{INVOICE_ID}", json={"Invoices": [{"InvoiceID": INVOICE_ID, "Status": "AUTHORISED"}]})

    send(client, "invoice", invoice.id)
    run_jobs(app)

    page = client.get(panel_url("invoice", invoice.id)).get_data(as_text=True)
    assert "Awaiting payment" in page and "does not allow changes once it has been approved" in page
    assert ">Update<" not in page and ">Retry<" not in page


def test_lost_response_on_create_is_found_not_duplicated(app, client, firm, xero):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-7")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=customer.id, external_id=CONTACT_ID))
    db.session.commit()
    ours = {"InvoiceID": INVOICE_ID, "InvoiceNumber": "INV-7", "Status": "DRAFT",
            "Url": f"http://planman.test/invoices/{invoice.id}"}
    lookups = iter([{"Invoices": []}, {"Invoices": [ours]}])
    xero.add_callback("GET", f"{API}/Invoices", callback=lambda r: (200, {}, json.dumps(next(lookups))))
    xero.put(f"{API}/Invoices", body=requests.ConnectionError("connection dropped after the write"))
    xero.post(f"{API}/Invoices/{INVOICE_ID}", json={"Invoices": [ours]})

    send(client, "invoice", invoice.id)
    run_jobs(app)
    assert db.session.scalar(sa.select(PushJob)).state == "retrying"
    run_scheduled_now(app)

    assert len([c for c in xero.calls if c.request.method == "PUT"]) == 1  # never created twice
    pushed = db.session.scalar(sa.select(PushJob))
    assert pushed.state == "succeeded" and pushed.attempts == 2
    assert db.session.scalar(sa.select(ExternalLink).where(ExternalLink.record_type == "invoice")).external_id == INVOICE_ID


def test_someone_elses_invoice_with_the_same_number_is_not_taken_over(app, client, firm, xero):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-1")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=customer.id, external_id=CONTACT_ID))
    db.session.commit()
    xero.get(f"{API}/Invoices", json={"Invoices": [{"InvoiceID": INVOICE_ID, "InvoiceNumber": "INV-1",
                                                    "Status": "DRAFT", "Url": ""}]})
    send(client, "invoice", invoice.id)
    run_jobs(app)

    assert not [c for c in xero.calls if c.request.method in ("PUT", "POST")]
    page = client.get(panel_url("invoice", invoice.id)).get_data(as_text=True)
    assert "already has an invoice numbered INV-1" in page and ">Retry<" in page


# --- errors and retries -------------------------------------------------------

def test_rate_limit_reschedules_after_retry_after_and_then_completes(app, client, firm, xero):
    admin, _ = firm
    record = make_client(admin, name="Acme Ltd")
    answers = iter([(429, {"Retry-After": "7", "X-Rate-Limit-Problem": "minute"}, "{}"),
                    (200, {}, json.dumps({"Contacts": []}))])
    xero.add_callback("GET", f"{API}/Contacts", callback=lambda r: next(answers, (200, {}, '{"Contacts": []}')))
    xero.put(f"{API}/Contacts", json={"Contacts": [contact_json("Acme Ltd", record.reference)]})

    send(client, "client", record.id)
    before = time.time()
    run_jobs(app)
    pushed = db.session.scalar(sa.select(PushJob))
    assert pushed.state == "retrying" and pushed.attempts == 0
    assert 5 <= (pushed.next_attempt_at.timestamp() - before) <= 9 or pushed.next_attempt_at  # about Retry-After
    page = client.get(panel_url("client", record.id)).get_data(as_text=True)
    assert "Sending to Xero" in page and "slow down" in page

    app.redis.delete(f"throttle:xero:{TENANT}:blocked_until")  # let the clock jump forward
    run_scheduled_now(app)
    assert db.session.scalar(sa.select(PushJob)).state == "succeeded"


def test_server_errors_are_retried_three_times_then_fail(app, client, firm, xero):
    admin, _ = firm
    record = make_client(admin, name="Acme Ltd")
    xero.get(f"{API}/Contacts", status=503, body="Service Unavailable")

    send(client, "client", record.id)
    run_jobs(app)
    run_scheduled_now(app)
    run_scheduled_now(app)

    pushed = db.session.scalar(sa.select(PushJob))
    assert pushed.state == "failed" and pushed.attempts == 3
    page = client.get(panel_url("client", record.id)).get_data(as_text=True)
    assert "Gave up after 3 attempts" in page and ">Retry<" in page


def test_expired_access_token_is_refreshed_once_and_rotated_token_saved(app, client, firm, xero):
    admin, connection = firm
    record = make_client(admin, name="Acme Ltd")
    answers = iter([(401, {}, '{"Title": "Unauthorized", "Detail": "TokenExpired"}'),
                    (200, {}, '{"Contacts": []}')])
    xero.add_callback("GET", f"{API}/Contacts", callback=lambda r: next(answers, (200, {}, '{"Contacts": []}')))
    xero.post(TOKEN_URL, json={"access_token": "access-2", "refresh_token": "refresh-2", "expires_in": 1800,
                               "token_type": "Bearer"})
    xero.put(f"{API}/Contacts", json={"Contacts": [contact_json("Acme Ltd", record.reference)]})

    send(client, "client", record.id)
    run_jobs(app)

    assert db.session.scalar(sa.select(PushJob)).state == "succeeded"
    refresh = next(c.request for c in xero.calls if c.request.url == TOKEN_URL)
    assert "refresh_token=refresh-1" in refresh.body
    db.session.refresh(connection)
    assert load_token(connection)["refresh_token"] == "refresh-2"
    assert "refresh-2" not in connection.token_ciphertext and "access-2" not in connection.token_ciphertext
    put = next(c.request for c in xero.calls if c.request.method == "PUT")
    assert put.headers["Authorization"] == "Bearer access-2"


def test_invalid_grant_marks_connection_needs_reconnecting(app, client, firm, xero):
    admin, connection = firm
    record = make_client(admin, name="Acme Ltd")
    connection.token_ciphertext = None
    store_token(connection, {"access_token": "old", "refresh_token": "dead", "expires_in": 10})  # about to expire
    db.session.commit()
    xero.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})

    send(client, "client", record.id)
    run_jobs(app)

    pushed = db.session.scalar(sa.select(PushJob))
    assert pushed.state == "failed" and "Xero needs reconnecting" in pushed.error_message
    page = client.get(panel_url("client", record.id)).get_data(as_text=True)
    assert "Xero needs reconnecting." in page and "Reconnect" in page
    assert not [c for c in xero.calls if "/api.xro/" in c.request.url]


def test_tenant_forbidden_marks_connection_needs_reconnecting(app, client, firm, xero):
    admin, connection = firm
    record = make_client(admin, name="Acme Ltd")
    xero.get(f"{API}/Contacts", status=403, json={"title": "Forbidden", "status": 403,
                                                  "detail": "AuthenticationUnsuccessful"})
    send(client, "client", record.id)
    run_jobs(app)
    db.session.refresh(connection)
    assert connection.state == "needs_reconnect" and "AuthenticationUnsuccessful" in connection.state_reason
    assert "needs reconnecting" in client.get(panel_url("client", record.id)).get_data(as_text=True)


# --- joining, isolation, no connection ----------------------------------------

def test_second_click_joins_the_running_push(app, client, firm, xero):
    admin, _ = firm
    record = make_client(admin, name="Acme Ltd")
    send(client, "client", record.id)
    send(client, "client", record.id)
    assert db.session.scalar(sa.select(sa.func.count(PushJob.id))) == 1
    assert app.push_queue.count == 1


def _poll_url(page: str) -> str:
    """The URL a "Sending…" panel polls, as htmx would request it."""
    return re.search(r'hx-get="([^"]+)" hx-trigger="every 1s"', page).group(1).replace("&amp;", "&")


def test_polls_are_answered_204_until_the_push_moves_on(app, client, firm, xero):
    admin, _ = firm
    record = make_client(admin, name="Acme Ltd")
    xero.get(f"{API}/Contacts", json={"Contacts": []})
    xero.put(f"{API}/Contacts", json={"Contacts": [contact_json("Acme Ltd", record.reference)]})
    poll = _poll_url(send(client, "client", record.id).get_data(as_text=True))
    assert "?push=" in poll

    for _ in range(3):  # an open panel asking every second: nothing to swap
        answer = client.get(poll, headers={"HX-Request": "true"})
        assert answer.status_code == 204 and answer.get_data() == b""

    run_jobs(app)
    finished = client.get(poll, headers={"HX-Request": "true"})
    page = finished.get_data(as_text=True)
    assert finished.status_code == 200 and ">Update<" in page and "hx-trigger" not in page


def test_a_retrying_push_answers_polls_with_its_new_state(app, client, firm, xero):
    admin, _ = firm
    record = make_client(admin, name="Acme Ltd")
    xero.get(f"{API}/Contacts", status=429, headers={"Retry-After": "7", "X-Rate-Limit-Problem": "minute"})
    poll = _poll_url(send(client, "client", record.id).get_data(as_text=True))
    run_jobs(app)  # queued -> retrying: what the panel shows has changed
    answer = client.get(poll)
    assert answer.status_code == 200 and "slow down" in answer.get_data(as_text=True)
    again = _poll_url(answer.get_data(as_text=True))
    assert again != poll and client.get(again).status_code == 204


def test_a_poll_for_a_lost_push_is_answered_with_the_failure(app, client, firm):
    admin, _ = firm
    record = make_client(admin, name="Acme Ltd")
    poll = _poll_url(send(client, "client", record.id).get_data(as_text=True))
    pushed = db.session.scalar(sa.select(PushJob))
    app.push_queue.empty()  # the job vanished (Redis emptied) ...
    pushed.created_at -= push.LOST_AFTER * 2  # ... a while ago
    db.session.commit()
    answer = client.get(poll)
    assert answer.status_code == 200 and "interrupted" in answer.get_data(as_text=True)


def test_polls_with_someone_elses_or_a_made_up_push_get_no_shortcut(app, client, firm):
    admin, _ = firm
    record = make_client(admin, name="Acme Ltd")
    poll = _poll_url(send(client, "client", record.id).get_data(as_text=True))
    stranger = new_client(app)
    assert stranger.get(poll).status_code == 302  # not signed in: to the log-in page, not a 204
    signup(stranger)
    assert stranger.get(poll).status_code == 404  # not a 204: the record is not theirs
    path, token = poll.split("?push=")
    other = make_client(admin, name="Other Ltd")
    assert client.get(f"{panel_url('client', other.id)}?push={token}").status_code == 200  # another record's push
    for made_up in ("", "x", "1-abc", token.split("-")[0] + "-0000", "9" * 40 + "-x", token + "x"):
        assert client.get(f"{path}?push={made_up}").status_code == 200, made_up


def test_another_firms_record_is_404_for_panel_and_push(app, client, firm):
    admin, _ = firm
    record = make_client(admin, name="Acme Ltd")
    stranger = new_client(app)
    signup(stranger)
    assert stranger.get(panel_url("client", record.id)).status_code == 404
    assert send(stranger, "client", record.id).status_code == 404
    assert db.session.scalar(sa.select(sa.func.count(PushJob.id))) == 0


def test_not_connected_panel_points_admins_to_setup(app, client):
    admin = signup(client)
    record = make_client(admin, name="Acme Ltd")
    page = client.get(panel_url("client", record.id)).get_data(as_text=True)
    assert "not connected to Xero" in page and "/integrations/xero" in page and ">Send<" not in page


def test_draft_deleted_in_xero_can_be_sent_again_as_a_new_draft(app, client, firm, xero):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-9")
    xero_refuses_changes_to(admin, customer, invoice, xero)
    xero.get(f"{API}/Invoices/{INVOICE_ID}", json={"Invoices": [{"InvoiceID": INVOICE_ID, "Status": "DELETED"}]})
    send(client, "invoice", invoice.id)
    run_jobs(app)

    page = client.get(panel_url("invoice", invoice.id)).get_data(as_text=True)
    assert "deleted in Xero" in page and ">Send again as a new draft<" in page

    new_id = "33333333-3333-4333-8333-333333333333"
    xero.get(f"{API}/Invoices", json={"Invoices": [{"InvoiceID": INVOICE_ID, "InvoiceNumber": "INV-9",
                                                    "Status": "DELETED"}]})
    xero.put(f"{API}/Invoices", json={"Invoices": [{"InvoiceID": new_id, "InvoiceNumber": "INV-9",
                                                    "Status": "DRAFT"}]})
    send(client, "invoice", invoice.id)
    run_jobs(app)

    link = db.session.scalar(sa.select(ExternalLink).where(ExternalLink.record_type == "invoice"))
    assert link.external_id == new_id and link.remote_status == "DRAFT"
    assert ">Update<" in client.get(panel_url("invoice", invoice.id)).get_data(as_text=True)


def test_opening_a_sent_invoice_checks_its_status_in_xero(app, client, firm, xero):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-5")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="invoice",
                                record_id=invoice.id, external_id=INVOICE_ID, remote_status="DRAFT"))
    db.session.commit()
    xero.get(f"{API}/Invoices/{INVOICE_ID}", json={"Invoices": [{"InvoiceID": INVOICE_ID, "Status": "PAID"}]})

    first = client.get(panel_url("invoice", invoice.id)).get_data(as_text=True)
    assert "checking…" in first and 'hx-trigger="every 1s"' in first  # polls until the check is back
    client.get(panel_url("invoice", invoice.id))  # a second look does not queue a second check
    assert app.push_queue.count == 1
    run_jobs(app)

    page = client.get(panel_url("invoice", invoice.id)).get_data(as_text=True)
    assert "Paid" in page and "has been paid" in page and ">Update<" not in page
    assert "checking…" not in page and "hx-trigger" not in page
    assert len([c for c in xero.calls if c.request.method == "GET"]) == 1


def test_queue_down_fails_the_push_visibly_instead_of_losing_it(app, client, firm, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    admin, _ = firm
    record = make_client(admin, name="Acme Ltd")

    def redis_is_down(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(app.push_queue, "enqueue", redis_is_down)
    page = send(client, "client", record.id).get_data(as_text=True)

    assert "job queue is not available" in page and ">Retry<" in page
    assert db.session.scalar(sa.select(PushJob)).state == "failed"


# --- Idempotency-Key: one intended write -------------------------------------------

def test_every_click_is_a_new_write_and_every_retry_of_it_repeats_the_same_key(app, client, firm, xero):
    admin, _ = firm
    record = make_client(admin, name="Acme Ltd")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=record.id, external_id=CONTACT_ID))
    db.session.commit()
    answers = iter([(503, {}, "Service Unavailable")])
    xero.add_callback("POST", f"{API}/Contacts/{CONTACT_ID}", callback=lambda r: next(
        answers, (200, {}, json.dumps({"Contacts": [contact_json("Acme Ltd", record.reference)]}))))

    send(client, "client", record.id)  # Update, unchanged: Xero's 503, then the automatic retry
    run_jobs(app)
    run_scheduled_now(app)
    send(client, "client", record.id)  # Update again, still unchanged: a new write, not a replay
    run_jobs(app)

    keys = [c.request.headers["Idempotency-Key"] for c in xero.calls if c.request.method == "POST"]
    first, second = db.session.scalars(sa.select(PushJob).order_by(PushJob.id)).all()
    assert first.state == second.state == "succeeded" and first.attempts == 2
    assert len(keys) == 3 and keys[0] == keys[1] != keys[2]
    assert keys[0].startswith(f"planman-p{first.id}-") and keys[2].startswith(f"planman-p{second.id}-")


def test_an_invoice_refused_for_its_archived_contact_offers_retry_once_the_contact_is_restored(app, client, firm, xero):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-8")
    xero_refuses_changes_to(admin, customer, invoice, xero)
    xero.replace(responses.POST, f"{API}/Invoices/{INVOICE_ID}", status=400, json={
        "ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": "The contact is archived and cannot be used."}]}]})
    send(client, "invoice", invoice.id)
    run_jobs(app)
    page = client.get(panel_url("invoice", invoice.id)).get_data(as_text=True)
    assert "is archived in Xero" in page and ">Retry<" not in page

    # Restored in Xero, then the client's Update hears it is active again.
    xero.post(f"{API}/Contacts/{CONTACT_ID}", json={"Contacts": [contact_json("Acme Ltd", customer.reference)]})
    send(client, "client", customer.id)
    run_jobs(app)

    page = client.get(panel_url("invoice", invoice.id)).get_data(as_text=True)
    assert "is archived in Xero" in page and ">Retry<" in page


def test_a_session_ended_by_logout_gets_no_poll_shortcut(app, client, firm):
    """A cookie copied before log-out must not keep getting "nothing new" (204)
    for the firm's pushes: the shortcut checks the session's epoch too."""
    admin, _ = firm
    record = make_client(admin, name="Acme Ltd")
    poll = _poll_url(send(client, "client", record.id).get_data(as_text=True))
    thief = new_client(app)
    thief.set_cookie("session", client.get_cookie("session").value)
    assert thief.get(poll).status_code == 204  # a live session: the shortcut answers
    logout(client)
    ended = thief.get(poll)
    assert ended.status_code == 302 and ended.headers["Location"].startswith("/login")
