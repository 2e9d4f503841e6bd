"""FreshBooks Send / Update / connect through PlanMan's own doors, with FreshBooks played by `responses`.

Requests are captured as FreshBooks would receive them; RQ jobs run in-process."""
from __future__ import annotations

import json
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import sqlalchemy as sa
from rq import SimpleWorker

from planman import jobs
from planman.extensions import db
from planman.integrations.tokens import load_token, store_token
from planman.models import Connection, ExternalLink, PushJob
from tests.helpers import client, htmx_post, make_client, make_invoice, new_client, post_form, signup, tax_rate  # noqa: F401

API = "https://api.freshbooks.com"
AUTH = "https://auth.freshbooks.com"
ACCOUNT = "bK9pQ2"
ACCOUNTING = f"{API}/accounting/account/{ACCOUNT}"


@pytest.fixture
def config_overrides():
    return {"FRESHBOOKS_CLIENT_ID": "fb-client", "FRESHBOOKS_CLIENT_SECRET": "fb-secret",
            "FRESHBOOKS_AUTH_URL": AUTH, "FRESHBOOKS_API_URL": API, "FRESHBOOKS_APP_URL": "https://my.freshbooks.com",
            "FRESHBOOKS_RECORD_URL": "https://fb.test/{account_id}/{kind}/{id}"}


@pytest.fixture
def fb():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def connect(user, *, expires_in=43200):
    connection = Connection(firm_id=user.firm_id, provider="freshbooks", state="connected", tenant_id=ACCOUNT,
                            tenant_name="Demo Bookkeeping Ltd (UK)", remote_connection_id="1001", settings={})
    store_token(connection, {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": expires_in})
    db.session.add(connection)
    db.session.commit()
    return connection


@pytest.fixture
def firm(client):
    admin = signup(client)
    return admin, connect(admin)


def press(client, record_type, record_id, **form):
    return htmx_post(client, f"/integrations/freshbooks/{record_type}/{record_id}/panel", form)


def panel(client, record_type, record_id):
    return client.get(f"/integrations/freshbooks/{record_type}/{record_id}/panel").get_data(as_text=True)


def run_jobs(app):
    SimpleWorker(jobs.queues(app), connection=app.redis).work(burst=True)


def result(**body):
    return {"response": {"result": body}}


def page(plural, items):
    return result(**{plural: items, "page": 1, "pages": 1, "per_page": 100, "total": len(items)})


def sent(mock, method, pattern):
    return [json.loads(c.request.body) for c in mock.calls if c.request.method == method and re.search(pattern, c.request.url)]


def fb_client(client_id=41, **fields):
    return {"id": client_id, "userid": client_id, "vis_state": 0, "organization": "", "email": "", **fields}


def fb_invoice(invoice_id=77, status="draft", number="INV-1", customerid=41, amount="120.00"):
    return {"id": invoice_id, "invoiceid": invoice_id, "invoice_number": number, "customerid": customerid,
            "v3_status": status, "vis_state": 0, "amount": {"amount": amount, "code": "GBP"}}


# --- clients --------------------------------------------------------------------

def test_send_a_client_looks_up_then_creates_with_what_freshbooks_expects(app, client, firm, fb):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd", email="ap@acme.test", first_name="Ann", city="Leeds")
    fb.get(f"{ACCOUNTING}/users/clients", json=page("clients", []))
    fb.post(f"{ACCOUNTING}/users/clients", json=result(client=fb_client(organization="Acme Ltd")))

    press(client, "client", customer.id)
    run_jobs(app)

    lookup = next(c.request for c in fb.calls if c.request.method == "GET")
    assert parse_qs(urlsplit(lookup.url).query)["search[organization]"] == ["Acme Ltd"]
    assert lookup.headers["Authorization"] == "Bearer access-1"
    [body] = sent(fb, "POST", "/users/clients$")
    assert body == {"client": {"organization": "Acme Ltd", "fname": "Ann", "lname": "", "email": "ap@acme.test",
                               "bus_phone": "", "p_street": "", "p_street2": "", "p_city": "Leeds",
                               "p_province": "", "p_code": "", "p_country": "", "vat_number": ""}}
    page_html = panel(client, "client", customer.id)
    assert ">Update<" in page_html and "https://fb.test/bK9pQ2/client/41" in page_html


def test_a_client_found_by_organisation_and_email_is_linked_not_created(app, client, firm, fb):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd", email="ap@acme.test")
    fb.get(f"{ACCOUNTING}/users/clients", json=page("clients", [
        fb_client(40, organization="Acme Ltd", email="someone@else.test"),  # same name, another customer
        fb_client(41, organization="ACME LTD", email="ap@acme.test", p_city="York")]))
    fb.put(f"{ACCOUNTING}/users/clients/41", json=result(client=fb_client(41, organization="Acme Ltd")))

    press(client, "client", customer.id)
    run_jobs(app)

    assert sent(fb, "POST", "/users/clients") == []
    [update] = sent(fb, "PUT", "/users/clients/41")
    assert update == {"client": {"organization": "Acme Ltd", "email": "ap@acme.test"}}  # York is left alone
    link = db.session.scalar(sa.select(ExternalLink).where(ExternalLink.record_id == customer.id))
    assert (link.external_id, link.linked_existing) == ("41", True)


INVALID_EMAIL = {"errno": 1004, "field": "email", "message": "Invalid email address.", "object": "client", "value": "x"}


def a_client_refused_for_its_email(app, client, admin, fb, status=400):
    """Send a client that FreshBooks does not hold and refuses for its e-mail
    address (``status``: the answer's); the client and its push."""
    customer = make_client(admin, name="Acme Ltd", email="ap@acme.test")
    fb.get(f"{ACCOUNTING}/users/clients", json=page("clients", []))
    fb.post(f"{ACCOUNTING}/users/clients", status=status, json={"response": {"errors": [INVALID_EMAIL]}})
    press(client, "client", customer.id)
    run_jobs(app)
    return customer, db.session.scalar(sa.select(PushJob))


def test_refusal_envelope_is_shown_beside_the_field_it_names(app, client, firm, fb):
    admin, _ = firm
    customer, push = a_client_refused_for_its_email(app, client, admin, fb)

    assert push.state == "failed" and push.error_fields == {"email": ["Invalid email address."]}
    html = panel(client, "client", customer.id)
    assert "Invalid email address." in html and ">Retry<" in html


# --- invoices -------------------------------------------------------------------

def test_send_an_invoice_brings_its_client_and_sends_money_as_strings_with_taxes_per_line(app, client, firm, fb):
    admin, _ = firm
    customer = make_client(admin, name="Brightside LLP")
    invoice = make_invoice(admin, customer, number="INV-1", lines=((3, "33.33", tax_rate(admin, "VAT 20%")),
                                                                  (1, "20.00", None)))
    fb.get(f"{ACCOUNTING}/users/clients", json=page("clients", []))
    fb.post(f"{ACCOUNTING}/users/clients", json=result(client=fb_client(41, organization="Brightside LLP")))
    fb.get(f"{ACCOUNTING}/invoices/invoices", json=page("invoices", []))
    fb.post(f"{ACCOUNTING}/invoices/invoices", json=result(invoice=fb_invoice(amount="139.99")))

    press(client, "invoice", invoice.id)
    run_jobs(app)

    lookup = [c.request for c in fb.calls if c.request.method == "GET" and "invoices" in c.request.url][0]
    assert parse_qs(urlsplit(lookup.url).query)["search[invoice_number]"] == ["INV-1"]
    [body] = sent(fb, "POST", "/invoices/invoices")
    assert body["invoice"]["customerid"] == 41 and body["invoice"]["invoice_number"] == "INV-1"
    assert body["invoice"]["lines"] == [
        {"type": 0, "name": "Line 1", "description": "", "qty": "3.00", "unit_cost": {"amount": "33.33", "code": "GBP"},
         "taxName1": "VAT 20%", "taxAmount1": "20.00"},
        {"type": 0, "name": "Line 2", "description": "", "qty": "1.00", "unit_cost": {"amount": "20.00", "code": "GBP"}}]
    html = panel(client, "invoice", invoice.id)
    assert "Draft" in html and ">Update<" in html


def test_a_total_freshbooks_works_out_differently_is_shown_without_opening_the_tab(app, client, firm, fb):
    admin, _ = firm
    customer = make_client(admin, name="Brightside LLP")
    invoice = make_invoice(admin, customer, number="INV-1", lines=((3, "33.33", tax_rate(admin, "VAT 20%")),))
    fb.get(f"{ACCOUNTING}/users/clients", json=page("clients", []))
    fb.post(f"{ACCOUNTING}/users/clients", json=result(client=fb_client(41, organization="Brightside LLP")))
    fb.get(f"{ACCOUNTING}/invoices/invoices", json=page("invoices", []))
    # Tax on the subtotal rather than per line: 99.99 + 20.00 in PlanMan, 119.98 there (say).
    fb.post(f"{ACCOUNTING}/invoices/invoices", json=result(invoice=fb_invoice(amount="119.98")))
    press(client, "invoice", invoice.id)
    run_jobs(app)

    invoice_page = " ".join(unescape(client.get(f"/invoices/{invoice.id}").get_data(as_text=True)).split())
    assert "Totals differ" in invoice_page
    assert ("FreshBooks's total for this invoice is 119.98 GBP, but PlanMan's is 119.99. FreshBooks works out tax "
            "or rounding differently for this invoice, so Update would not change it") in invoice_page


def linked(admin, customer, invoice, status):
    for record_type, record_id, external in (("client", customer.id, "41"), ("invoice", invoice.id, "77")):
        db.session.add(ExternalLink(firm_id=admin.firm_id, provider="freshbooks", tenant_id=ACCOUNT,
                                    record_type=record_type, record_id=record_id, external_id=external,
                                    remote_status=status if record_type == "invoice" else "active",
                                    record_revision=0))
    db.session.commit()


def test_update_of_a_draft_edits_the_same_invoice(app, client, firm, fb):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-1")
    linked(admin, customer, invoice, "draft")
    fb.get(f"{ACCOUNTING}/invoices/invoices/77", json=result(invoice=fb_invoice()))
    fb.put(f"{ACCOUNTING}/invoices/invoices/77", json=result(invoice=fb_invoice()))

    press(client, "invoice", invoice.id)
    run_jobs(app)

    [update] = sent(fb, "PUT", "/invoices/invoices/77")
    assert update["invoice"]["invoice_number"] == "INV-1" and sent(fb, "POST", "invoices") == []
    assert db.session.scalar(sa.select(PushJob)).outcome == "updated"


def test_an_invoice_deleted_in_freshbooks_is_offered_again_as_a_new_draft(app, client, firm, fb):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-1")
    linked(admin, customer, invoice, "draft")
    fb.get(f"{ACCOUNTING}/invoices/invoices/77", json=result(invoice={**fb_invoice(), "vis_state": 1}))

    press(client, "invoice", invoice.id)
    run_jobs(app)
    assert sent(fb, "PUT", "invoices") == []  # a deleted invoice is not edited
    assert "Send again as a new draft" in panel(client, "invoice", invoice.id)

    fb.get(f"{ACCOUNTING}/invoices/invoices", json=page("invoices", []))  # deleted ones are not listed
    fb.post(f"{ACCOUNTING}/invoices/invoices", json=result(invoice=fb_invoice(invoice_id=78)))
    press(client, "invoice", invoice.id)
    run_jobs(app)
    assert len(sent(fb, "POST", "/invoices/invoices$")) == 1
    assert db.session.scalar(sa.select(ExternalLink).where(ExternalLink.record_type == "invoice")).external_id == "78"


def test_an_invoice_number_used_for_another_client_is_refused_beside_the_number(app, client, firm, fb):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-1")
    fb.get(f"{ACCOUNTING}/users/clients", json=page("clients", []))
    fb.post(f"{ACCOUNTING}/users/clients", json=result(client=fb_client(41)))
    fb.get(f"{ACCOUNTING}/invoices/invoices", json=page("invoices", [fb_invoice(customerid=99)]))

    press(client, "invoice", invoice.id)
    run_jobs(app)

    push = db.session.scalar(sa.select(PushJob).where(PushJob.record_type == "invoice"))
    assert push.state == "failed" and "number" in push.error_fields
    assert sent(fb, "POST", "/invoices/invoices") == [] and sent(fb, "PUT", "/invoices/invoices") == []


def test_a_lost_create_answer_is_found_by_number_on_the_retry_and_not_created_twice(app, client, firm, fb):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-1")
    linked(admin, customer, invoice, "draft")
    db.session.execute(sa.delete(ExternalLink).where(ExternalLink.record_type == "invoice"))
    db.session.commit()
    searches = iter([page("invoices", []), page("invoices", [fb_invoice()])])
    fb.add_callback("GET", f"{ACCOUNTING}/invoices/invoices",
                    callback=lambda request: (200, {}, json.dumps(next(searches))))
    fb.post(f"{ACCOUNTING}/invoices/invoices", body=requests.ConnectionError("connection reset"))
    fb.put(f"{ACCOUNTING}/invoices/invoices/77", json=result(invoice=fb_invoice()))

    press(client, "invoice", invoice.id)
    run_jobs(app)  # the POST's answer is lost: retried with backoff
    from rq.registry import ScheduledJobRegistry

    scheduled = ScheduledJobRegistry(queue=app.push_queue)
    for job_id in scheduled.get_job_ids():
        scheduled.remove(job_id)
        app.push_queue.enqueue_job(app.push_queue.fetch_job(job_id))
    run_jobs(app)

    assert len(sent(fb, "POST", "/invoices/invoices$")) == 1
    push = db.session.scalar(sa.select(PushJob))
    assert (push.state, push.outcome) == ("succeeded", "created")  # ours, not someone else's


def test_429_waits_for_retry_after_instead_of_calling_again(app, client, firm, fb):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    fb.get(f"{ACCOUNTING}/users/clients", status=429, headers={"Retry-After": "42"},
           json={"response": {"errors": [{"errno": 429, "message": "Too many requests"}]}})

    press(client, "client", customer.id)
    run_jobs(app)

    push = db.session.scalar(sa.select(PushJob))
    assert push.state == "retrying" and "slow down" in push.error_message.lower() or "rate" in push.error_message.lower()
    wait = (push.next_attempt_at - push.started_at).total_seconds()
    assert 40 <= wait <= 45
    assert len(fb.calls) == 1


# --- tokens ------------------------------------------------------------------------

def test_an_expiring_token_is_refreshed_with_the_client_secret_and_the_new_pair_saved_before_use(app, client, firm, fb):
    admin, connection = firm
    store_token(connection, {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": 30})
    db.session.commit()
    customer = make_client(admin, name="Acme Ltd")
    saved_before_use = []

    def token(request):
        return 200, {}, json.dumps({"access_token": "access-2", "refresh_token": "refresh-2", "expires_in": 43200,
                                    "created_at": 1767225600, "token_type": "Bearer", "scope": "user:profile:read"})

    def lookup(request):
        db.session.expire_all()
        saved_before_use.append(load_token(db.session.get(Connection, connection.id))["refresh_token"])
        return 200, {}, json.dumps(page("clients", []))

    fb.add_callback("POST", f"{API}/auth/oauth/token", callback=token)
    fb.add_callback("GET", f"{ACCOUNTING}/users/clients", callback=lookup)
    fb.post(f"{ACCOUNTING}/users/clients", json=result(client=fb_client()))

    press(client, "client", customer.id)
    run_jobs(app)

    refresh = parse_qs(next(c.request for c in fb.calls if "oauth/token" in c.request.url).body)
    assert refresh["grant_type"] == ["refresh_token"] and refresh["refresh_token"] == ["refresh-1"]
    assert refresh["client_id"] == ["fb-client"] and refresh["client_secret"] == ["fb-secret"]
    assert saved_before_use == ["refresh-2"]
    assert fb.calls[1].request.headers["Authorization"] == "Bearer access-2"


def test_a_refused_refresh_marks_the_connection_for_reconnecting(app, client, firm, fb):
    admin, connection = firm
    store_token(connection, {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": 30})
    db.session.commit()
    customer = make_client(admin, name="Acme Ltd")
    fb.post(f"{API}/auth/oauth/token", status=400, json={"error": "invalid_grant"})

    press(client, "client", customer.id)
    run_jobs(app)

    assert db.session.get(Connection, connection.id).state == "needs_reconnect"
    assert "Reconnect" in panel(client, "client", customer.id)


# --- connect --------------------------------------------------------------------------

def test_connect_sends_no_pkce_and_offers_the_businesses_of_the_approval(app, client, fb):
    admin = signup(client)
    page_html = client.get("/integrations/freshbooks").get_data(as_text=True)
    assert "Connect to FreshBooks" in page_html
    start = post_form(client, "/integrations/freshbooks/connect", {}, form_url="/integrations/freshbooks")
    consent = urlsplit(start.headers["Location"])
    query = parse_qs(consent.query)
    assert f"{consent.scheme}://{consent.netloc}{consent.path}" == f"{AUTH}/oauth/authorize"
    assert "code_challenge" not in query and query["client_id"] == ["fb-client"]
    assert query["redirect_uri"] == ["http://planman.test/integrations/freshbooks/callback"]

    fb.post(f"{API}/auth/oauth/token", json={"access_token": "a-1", "refresh_token": "r-1", "expires_in": 43200,
                                             "created_at": 1767225600, "token_type": "Bearer", "scope": "x"})
    fb.get(f"{API}/auth/api/v1/users/me", json={"response": {"id": 7001, "business_memberships": [
        {"id": 501, "role": "owner", "business": {"id": 1001, "name": "Demo UK", "account_id": "bK9pQ2"}},
        {"id": 502, "role": "owner", "business": {"id": 1002, "name": "Demo US", "account_id": "zT4mW7"}}]}})
    back = client.get(f"/integrations/freshbooks/callback?code=c-1&state={query['state'][0]}")
    assert back.status_code == 302 and back.headers["Location"].endswith("/integrations/freshbooks/choose")
    choose = client.get("/integrations/freshbooks/choose").get_data(as_text=True)
    assert "Demo UK" in choose and "Demo US" in choose
    exchange = parse_qs(next(c.request for c in fb.calls if "oauth/token" in c.request.url).body)
    assert exchange["grant_type"] == ["authorization_code"] and exchange["client_secret"] == ["fb-secret"]

    post_form(client, "/integrations/freshbooks/choose", {"tenant_id": "zT4mW7"})
    connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == admin.firm_id))
    assert (connection.state, connection.tenant_id, connection.tenant_name, connection.remote_connection_id) == \
        ("connected", "zT4mW7", "Demo US", "1002")
    # Not the short token itself: Fernet's URL-safe base64 can contain "a-1" by chance.
    assert connection.token_ciphertext and "access_token" not in connection.token_ciphertext
    assert load_token(connection)["refresh_token"] == "r-1"


def test_another_firms_records_are_404_on_freshbooks_panels(app, client, firm, fb):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer)
    intruder = new_client(app)
    signup(intruder)
    for record_type, record_id in (("client", customer.id), ("invoice", invoice.id)):
        assert intruder.get(f"/integrations/freshbooks/{record_type}/{record_id}/panel").status_code == 404
        assert htmx_post(intruder, f"/integrations/freshbooks/{record_type}/{record_id}/panel", {}).status_code == 404
    assert db.session.scalar(sa.select(sa.func.count(PushJob.id))) == 0 and len(fb.calls) == 0


def test_a_401_refreshes_once_and_retries_the_same_call(app, client, firm, fb):
    admin, connection = firm
    customer = make_client(admin, name="Acme Ltd")
    answers = iter([(401, {}, json.dumps({"error": "unauthenticated"})), (200, {}, json.dumps(page("clients", [])))])
    fb.add_callback("GET", f"{ACCOUNTING}/users/clients", callback=lambda request: next(answers))
    fb.post(f"{API}/auth/oauth/token", json={"access_token": "access-2", "refresh_token": "refresh-2",
                                             "expires_in": 43200, "token_type": "Bearer"})
    fb.post(f"{ACCOUNTING}/users/clients", json=result(client=fb_client()))

    press(client, "client", customer.id)
    run_jobs(app)

    lookups = [c.request for c in fb.calls if c.request.method == "GET"]
    assert [r.headers["Authorization"] for r in lookups] == ["Bearer access-1", "Bearer access-2"]
    assert db.session.scalar(sa.select(PushJob)).state == "succeeded"
    assert load_token(db.session.get(Connection, connection.id))["refresh_token"] == "refresh-2"


def test_access_denied_to_the_business_marks_the_connection_for_reconnecting(app, client, firm, fb):
    admin, connection = firm
    customer = make_client(admin, name="Acme Ltd")
    fb.get(f"{ACCOUNTING}/users/clients", status=403, json={"response": {"errors": [
        {"errno": 1003, "field": None, "message": "The server could not verify that you are authorized."}]}})

    press(client, "client", customer.id)
    run_jobs(app)

    assert db.session.get(Connection, connection.id).state == "needs_reconnect"
    push = db.session.scalar(sa.select(PushJob))
    assert push.state == "failed" and "FreshBooks needs reconnecting" in push.error_message


def test_disconnect_revokes_the_refresh_token_and_keeps_the_links(app, client, firm, fb):
    admin, connection = firm
    customer = make_client(admin, name="Acme Ltd")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="freshbooks", tenant_id=ACCOUNT, record_type="client",
                                record_id=customer.id, external_id="41"))
    db.session.commit()
    fb.post(f"{API}/auth/oauth/revoke", json={})

    post_form(client, "/integrations/freshbooks/disconnect", {}, form_url="/integrations/freshbooks")

    revoke = parse_qs(fb.calls[0].request.body)
    assert revoke["token"] == ["refresh-1"] and revoke["client_secret"] == ["fb-secret"]
    assert db.session.get(Connection, connection.id).state == "disconnected"
    assert db.session.scalar(sa.select(sa.func.count(ExternalLink.id))) == 1


def test_disconnect_says_so_when_freshbooks_refuses_the_revocation(app, client, firm, fb):
    admin, connection = firm
    fb.post(f"{API}/auth/oauth/revoke", status=500, json={"error": "server_error"})
    html = post_form(client, "/integrations/freshbooks/disconnect", {}, form_url="/integrations/freshbooks",
                     follow_redirects=True).get_data(as_text=True)
    assert "FreshBooks did not confirm that PlanMan&#39;s access was revoked (it answered 500)" in html
    assert db.session.get(Connection, connection.id).token_ciphertext is None


def test_an_invoice_the_customer_has_seen_is_not_retried_from_the_failed_list_without_the_question(app, client,
                                                                                                  firm, fb):
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, number="INV-1")
    linked(admin, customer, invoice, "draft")
    fb.get(f"{ACCOUNTING}/invoices/invoices/77", json=result(invoice=fb_invoice(status="paid")))
    press(client, "invoice", invoice.id)
    run_jobs(app)
    failed = db.session.scalar(sa.select(PushJob))
    assert failed.state == "failed" and "became “Paid”" in failed.error_message
    assert sent(fb, "PUT", "invoices") == []

    answer = post_form(client, f"/integrations/pushes/{failed.id}/retry", {}, form_url="/integrations/failed")
    assert answer.status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(PushJob.id))) == 1
    html = panel(client, "invoice", invoice.id)
    assert "the customer has paid it" in html and 'name="confirmed" value="paid"' in html
    press(client, "invoice", invoice.id, confirmed="sent")  # an answer to another question
    assert db.session.scalar(sa.select(sa.func.count(PushJob.id))) == 1

    fb.put(f"{ACCOUNTING}/invoices/invoices/77", json=result(invoice=fb_invoice(status="paid")))
    press(client, "invoice", invoice.id, confirmed="paid")
    run_jobs(app)
    assert len(sent(fb, "PUT", "/invoices/invoices/77")) == 1
    assert db.session.scalars(sa.select(PushJob).order_by(PushJob.id)).all()[-1].outcome == "updated"


def test_a_create_answered_without_an_id_is_not_sent_and_is_tried_again(app, client, firm, fb):
    """FreshBooks' 200 that names no client is no success: nothing is linked,
    the panel says what happened, and the retry looks the client up first."""
    admin, _ = firm
    customer = make_client(admin, name="Acme Ltd", email="ap@acme.test")
    fb.get(f"{ACCOUNTING}/users/clients", json=page("clients", []))
    fb.post(f"{ACCOUNTING}/users/clients", json=result())  # 200, no client in it

    press(client, "client", customer.id)
    run_jobs(app)

    push = db.session.scalar(sa.select(PushJob))
    assert push.state == "retrying" and "without saying which record it saved" in push.error_message
    assert db.session.scalar(sa.select(ExternalLink)) is None
    html = panel(client, "client", customer.id)
    assert "without saying which record it saved" in html and ">Update<" not in html


def test_a_refusal_inside_a_200_envelope_is_shown_beside_its_field(app, client, firm, fb):
    admin, _ = firm
    customer, push = a_client_refused_for_its_email(app, client, admin, fb, status=200)

    assert push.state == "failed" and push.error_fields == {"email": ["Invalid email address."]}
    assert db.session.scalar(sa.select(ExternalLink)) is None
    assert "Invalid email address." in panel(client, "client", customer.id)


def test_retry_from_the_failed_list_says_so_when_the_queue_cannot_take_it(app, client, firm, fb, monkeypatch):
    admin, _ = firm
    _, failed = a_client_refused_for_its_email(app, client, admin, fb)

    monkeypatch.setattr(jobs, "enqueue", lambda *args, **kwargs: False)  # Redis down
    answer = post_form(client, f"/integrations/pushes/{failed.id}/retry", {}, form_url="/integrations/failed")
    listing = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert jobs.QUEUE_UNAVAILABLE in listing and "the push has been queued" not in listing
