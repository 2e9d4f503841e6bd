"""GoCardless as PlanMan's Direct Debit provider, through HTTP, with `responses`
playing GoCardless as REFERENCE.md documents it (the official gocardless-pro
SDK sends the API requests; assertions are on what it really sent).

Connect with GoCardless (partner OAuth), mandates from the hosted Billing
Request Flow, collections against them (exactly once, whatever happens to an
answer), and GoCardless's webhooks: the signature on the raw body first, then
events processed by the intake's worker function, in any order, any number of times."""
from __future__ import annotations

import json
import re
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations.gocardless import jobs as gc_jobs
from planman.integrations.gocardless.models import GoCardlessCollection, GoCardlessMandate
from planman.models import Connection, Invoice, Payment, PaymentLedgerLink, WebhookEvent, utcnow
from tests.conftest import csrf_token_from
from tests.gocardless_helpers import (API, CONNECT, ORG, TOKEN, FakeGoCardless, active_mandate, connect, deliver,
                                      event, mandate, payment, process_all, sign)
from tests.helpers import (committed_rows, make_client, make_invoice, new_client, post_form,
                           signup, tax_rate)
from tests.test_payments_page import make_link
from tests.xero_spec import xero_api  # noqa: F401


@pytest.fixture
def user(client):
    return signup(client, firm_name="Reid & Co Accountants")


@pytest.fixture
def acme(user):
    return make_client(user, name="Acme Ltd", first_name="Ann", last_name="Acme", email="ann@acme.test")


@pytest.fixture
def invoice(user, acme):
    return make_invoice(user, acme, lines=((2, "50.00", tax_rate(user, "VAT 20%")),), status="sent")


@pytest.fixture
def gc():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeGoCardless(mock)


def page(client, url) -> str:
    return client.get(url).get_data(as_text=True)


def form(request) -> dict:
    body = request.body if isinstance(request.body, str) else request.body.decode()
    return {key: values[0] for key, values in parse_qs(body).items()}


def collect(client, invoice, **kwargs):
    return post_form(client, f"/invoices/{invoice.id}/direct-debit", {}, form_url=f"/invoices/{invoice.id}", **kwargs)


# -- Connect with GoCardless -------------------------------------------------------------------------

class TestConnect:
    def test_the_walk_stores_the_organisation_and_says_money_waits_for_verification(self, app, client, user, gc):
        index = page(client, "/integrations/")
        assert 'href="/integrations/gocardless">GoCardless</a>' in index
        html = page(client, "/integrations/gocardless")
        assert ">Connect with GoCardless</button>" in html
        started = post_form(client, "/integrations/gocardless/connect", {}, form_url="/integrations/gocardless")
        assert started.status_code == 302
        authorize = urlsplit(started.headers["Location"])
        query = {key: values[0] for key, values in parse_qs(authorize.query).items()}
        assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{CONNECT}/oauth/authorize"
        assert query["client_id"] == "gc_test_planman" and query["response_type"] == "code"
        assert query["scope"] == "read_write" and len(query["state"]) >= 32
        assert query["redirect_uri"] == "http://planman.test/integrations/gocardless/callback"

        gc.rsps.post(f"{CONNECT}/oauth/access_token", json={
            "access_token": TOKEN, "token_type": "bearer", "scope": "read_write", "organisation_id": ORG,
            "email": "ada@reid.test"})
        gc.add("GET", "/creditors", json_body={"creditors": [{"id": "CR1", "name": "Reid & Co Accountants Ltd",
                                                              "verification_status": "action_required"}],
                                               "meta": {"cursors": {"before": None, "after": None}, "limit": 50}})
        back = client.get(f"/integrations/gocardless/callback?code=code_1&state={query['state']}")
        assert back.status_code == 302
        token_call = gc.rsps.calls[0].request
        assert form(token_call) == {"grant_type": "authorization_code", "code": "code_1",
                                    "redirect_uri": "http://planman.test/integrations/gocardless/callback",
                                    "client_id": "gc_test_planman", "client_secret": "gc_test_planman_secret"}
        connection = db.session.scalar(sa.select(Connection).where(Connection.provider == "gocardless"))
        assert connection.state == "connected" and connection.tenant_id == ORG
        assert TOKEN not in (connection.token_ciphertext or "")

        from planman.integrations.connections import refresh_tenant_details
        assert refresh_tenant_details(connection.id) == "loaded"
        [creditors] = gc.requests_to("GET", "/creditors")
        assert creditors.headers["Authorization"] == f"Bearer {TOKEN}"
        assert creditors.headers["GoCardless-Version"] == "2015-07-06"
        html = page(client, "/integrations/gocardless")
        assert "Reid &amp; Co Accountants Ltd" in html and ORG in html
        assert "No money moves until verification is done" in html
        assert TOKEN not in html

    def test_a_forged_state_changes_nothing(self, app, client, user, gc):
        post_form(client, "/integrations/gocardless/connect", {}, form_url="/integrations/gocardless")
        back = client.get("/integrations/gocardless/callback?code=c&state=forged", follow_redirects=True)
        assert "already used or did not start here" in back.get_data(as_text=True)
        assert not gc.rsps.calls and db.session.scalar(sa.select(Connection)) is None

    def test_a_refused_code_is_explained(self, app, client, user, gc):
        started = post_form(client, "/integrations/gocardless/connect", {}, form_url="/integrations/gocardless")
        state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
        gc.rsps.post(f"{CONNECT}/oauth/access_token", status=400, json={"error": "invalid_grant"})
        back = client.get(f"/integrations/gocardless/callback?code=old&state={state}", follow_redirects=True)
        assert "GoCardless did not accept that sign-in" in back.get_data(as_text=True)
        assert db.session.scalar(sa.select(Connection)) is None

    def test_disconnect_revokes_the_token(self, app, client, user, gc):
        connect(user)
        gc.rsps.post(f"{CONNECT}/oauth/revoke", json={})
        done = post_form(client, "/integrations/gocardless/disconnect", {}, form_url="/integrations/gocardless",
                         follow_redirects=True)
        assert "Disconnected from" in done.get_data(as_text=True)
        assert form(gc.rsps.calls[0].request) == {"token": TOKEN, "client_id": "gc_test_planman",
                                                  "client_secret": "gc_test_planman_secret"}
        db.session.expire_all()
        connection = db.session.scalar(sa.select(Connection))
        assert connection.state == "disconnected" and connection.token_ciphertext is None


# -- mandates -------------------------------------------------------------------------------------------

def billing_request(status="pending", invoice_id=None, client_id=None, mandate_id=None):
    metadata = {"planman_client_id": str(client_id)}
    if invoice_id:
        metadata["planman_invoice_id"] = str(invoice_id)
    links = {"customer": "CU000A"}
    if mandate_id:
        links["mandate_request_mandate"] = mandate_id
    return {"billing_requests": {"id": "BRQ000A", "status": status, "metadata": metadata, "links": links,
                                 "mandate_request": {"scheme": "bacs", "currency": "GBP"}}}


FLOW_URL = "https://pay-sandbox.gocardless.com/billing/static/flow?id=BRF000A"


def flow():
    return {"billing_request_flows": {"id": "BRF000A", "authorisation_url": FLOW_URL,
                                      "expires_at": "2099-12-08T10:00:00.000Z",
                                      "links": {"billing_request": "BRQ000A"}}}


class TestMandates:
    def test_ask_gives_a_link_and_the_mandate_follows_webhooks_only(self, app, client, user, acme, gc):
        connect(user)
        html = page(client, f"/clients/{acme.id}")
        assert "No Direct Debit set up." in html and ">Ask to set up Direct Debit</button>" in html
        gc.add("POST", "/billing_requests", json_body=billing_request(client_id=acme.id))
        gc.add("POST", "/billing_request_flows", json_body=flow())
        asked = post_form(client, f"/clients/{acme.id}/direct-debit", {}, form_url=f"/clients/{acme.id}")
        assert asked.status_code == 302
        [created] = gc.requests_to("POST", "/billing_requests")
        assert json.loads(created.body) == {"billing_requests": {
            "mandate_request": {"scheme": "bacs", "currency": "GBP"},
            "metadata": {"planman_client_id": str(acme.id)}}}
        assert created.headers["Authorization"] == f"Bearer {TOKEN}" and created.headers["Idempotency-Key"]
        sent_flow = gc.sent("POST", "/billing_request_flows")["billing_request_flows"]
        assert sent_flow["links"] == {"billing_request": "BRQ000A"}
        assert sent_flow["redirect_uri"] == "http://planman.test/direct-debit/set-up"
        assert sent_flow["prefilled_customer"] == {"given_name": "Ann", "family_name": "Acme",
                                                   "email": "ann@acme.test", "company_name": "Acme Ltd"}
        html = page(client, f"/clients/{acme.id}")
        assert f'value="{FLOW_URL}"' in html and "has not finished setting it up yet" in html

        # The client completes the hosted flow; GoCardless says so by webhook (several events, one delivery).
        gc.add("GET", "/billing_requests/BRQ000A",
               json_body=billing_request("fulfilled", client_id=acme.id, mandate_id="MD000A"))
        gc.add("GET", "/mandates/MD000A", json_body=mandate(status="pending_submission"))
        assert deliver(client, event("EV1", "billing_requests", "fulfilled", {"billing_request": "BRQ000A"}),
                       event("EV2", "mandates", "created", {"mandate": "MD000A"})).status_code == 200
        assert process_all() == {"EV1": "processed", "EV2": "processed"}
        assert "waiting for the client, then for their bank" in page(client, f"/clients/{acme.id}")

        gc.rsps.replace("GET", f"{API}/mandates/MD000A", json=mandate(status="active"))
        deliver(client, event("EV3", "mandates", "active", {"mandate": "MD000A"}))
        process_all()
        html = page(client, f"/clients/{acme.id}")
        assert "Direct Debit active: invoices can be collected." in html
        assert ">Ask to set up Direct Debit</button>" not in html
        row = db.session.scalar(sa.select(GoCardlessMandate))
        assert (row.mandate_id, row.customer_id, row.status) == ("MD000A", "CU000A", "active")

    def test_two_asks_at_the_same_moment_share_the_clients_mandate_row(self, app, client, user, acme, gc,
                                                                        monkeypatch):
        from planman.integrations.gocardless import services

        connect(user)
        gc.add("POST", "/billing_requests", json_body=billing_request(client_id=acme.id))
        gc.add("POST", "/billing_request_flows", json_body=flow())
        # The other click's row is made after this one looked for it (as a second request would see it).
        db.session.add(GoCardlessMandate(firm_id=user.firm_id, client_id=acme.id, organisation_id=ORG,
                                         requests_made=1, status=""))
        db.session.commit()
        token = csrf_token_from(page(client, f"/clients/{acme.id}"))
        real_mandate_for = services.mandate_for
        calls = []
        monkeypatch.setattr(services, "mandate_for",
                            lambda row: None if len(calls) == 0 and not calls.append(row) else real_mandate_for(row))
        asked = client.post(f"/clients/{acme.id}/direct-debit", data={"csrf_token": token})
        assert asked.status_code == 302  # not a 500
        [row] = db.session.scalars(sa.select(GoCardlessMandate))
        assert (row.requests_made, row.status) == (2, "requested")

    def test_a_failed_mandate_says_so_and_can_be_asked_for_again(self, app, client, user, acme, gc):
        connect(user)
        active_mandate(user, acme, status="pending_submission")
        gc.add("GET", "/mandates/MD000A", json_body=mandate(status="failed"))
        deliver(client, event("EV1", "mandates", "failed", {"mandate": "MD000A"},
                              details={"origin": "bank", "cause": "bank_account_closed",
                                       "description": "The bank account has been closed."}))
        with committed_rows(GoCardlessMandate.status, GoCardlessMandate.status_detail) as commits:
            process_all()
        html = page(client, f"/clients/{acme.id}")
        assert "Direct Debit failed" in html and "the bank account is closed" in html
        # Never "failed" without why, even for a page read between two commits.
        assert [status for rows in commits for status, detail in rows if not detail] == ["pending_submission"]
        assert ">Ask to set up Direct Debit</button>" in html

    def test_make_a_new_link_asks_gocardless_again(self, app, client, user, acme, gc):
        connect(user)
        gc.add("POST", "/billing_requests", json_body=billing_request(client_id=acme.id))
        gc.add("POST", "/billing_request_flows", json_body=flow())
        post_form(client, f"/clients/{acme.id}/direct-debit", {}, form_url=f"/clients/{acme.id}")
        assert ">Make a new link</button>" in page(client, f"/clients/{acme.id}")
        post_form(client, f"/clients/{acme.id}/direct-debit", {}, form_url=f"/clients/{acme.id}")
        keys = [r.headers["Idempotency-Key"] for r in gc.requests_to("POST", "/billing_requests")]
        assert len(keys) == 2 and keys[0] != keys[1]

    def test_a_request_gocardless_did_not_take_says_nothing_was_requested(self, app, client, user, acme, gc):
        connect(user)
        gc.add("POST", "/billing_requests", body=requests.ConnectionError("connection reset"))
        with committed_rows(GoCardlessMandate.status, GoCardlessMandate.flow_url) as commits:
            post_form(client, f"/clients/{acme.id}/direct-debit", {}, form_url=f"/clients/{acme.id}")
        assert ("requested", "") not in {row for rows in commits for row in rows}  # "requested", with no link
        html = page(client, f"/clients/{acme.id}")
        assert "No Direct Debit set up." in html and ">Ask to set up Direct Debit</button>" in html

        gc.rsps.replace("POST", f"{API}/billing_requests", json=billing_request(client_id=acme.id))
        gc.add("POST", "/billing_request_flows", json_body=flow())
        post_form(client, f"/clients/{acme.id}/direct-debit", {}, form_url=f"/clients/{acme.id}")
        assert f'value="{FLOW_URL}"' in page(client, f"/clients/{acme.id}")

    def test_another_firms_client_is_a_404(self, app, client, user, acme, gc):
        connect(user)
        other = new_client(app)
        connect(signup(other), organisation="OR000OTHER")
        response = post_form(other, f"/clients/{acme.id}/direct-debit", {}, form_url="/clients/")
        assert response.status_code == 404 and not gc.rsps.calls


# -- collections -----------------------------------------------------------------------------------------

class TestCollections:
    def test_collect_creates_one_payment_in_minor_units_with_the_invoice(self, app, client, user, acme, invoice, gc):
        connect(user)
        active_mandate(user, acme, next_date=date.today() + timedelta(days=3))
        html = page(client, f"/invoices/{invoice.id}")
        assert ">Collect by Direct Debit</button>" in html
        expected = date.today() + timedelta(days=3)
        assert f"GBP 120.00 will be charged on {expected.day} {expected.strftime('%b')}" in html
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        assert collect(client, invoice).status_code == 302
        [create] = gc.requests_to("POST", "/payments")
        assert json.loads(create.body) == {"payments": {
            "amount": 12000, "currency": "GBP", "description": f"Invoice {invoice.number}",
            "metadata": {"planman_invoice_id": str(invoice.id)}, "retry_if_possible": False,
            "links": {"mandate": "MD000A"}}}
        row = db.session.scalar(sa.select(GoCardlessCollection))
        assert create.headers["Idempotency-Key"] == row.idempotency_key
        html = page(client, f"/invoices/{invoice.id}")
        assert "Collecting — charged on 5 Dec" in html and ">Collect by Direct Debit</button>" not in html
        [paid] = db.session.scalars(sa.select(Payment))
        assert (paid.state, paid.method, paid.amount, paid.provider_payment_id) == ("pending", "direct_debit", 120,
                                                                                    "PM000A")
        # A second click: nothing new is asked of GoCardless.
        collect(client, invoice)
        assert len(gc.requests_to("POST", "/payments")) == 1

    def test_a_lost_answer_on_create_ends_as_exactly_one_payment(self, app, client, user, acme, invoice, gc,
                                                                monkeypatch):
        import time
        monkeypatch.setattr(time, "sleep", lambda _: None)  # the SDK's pause between its retries
        connect(user)
        active_mandate(user, acme)
        # GoCardless makes the payment but the answer never arrives (three times: the SDK's retries).
        for _ in range(3):
            gc.add("POST", "/payments", body=requests.ConnectionError("connection reset"))
        done = collect(client, invoice, follow_redirects=True).get_data(as_text=True)
        assert "Try again: it will not collect twice." in done
        assert ">Try again</button>" in done
        assert db.session.scalar(sa.select(Payment)) is None
        # Try again: the same key, so GoCardless answers 409 with the payment it made; the SDK fetches it.
        gc.rsps.replace("POST", f"{API}/payments", status=409, json={"error": {
            "type": "invalid_state", "code": 409, "message": "A resource has already been created with this "
            "idempotency key", "documentation_url": "https://developer.gocardless.com/api-reference#idempotent_creation_conflict",
            "request_id": "RQ1", "errors": [{"reason": "idempotent_creation_conflict", "message": "A resource has "
                                             "already been created with this idempotency key",
                                             "links": {"conflicting_resource_id": "PM000A"}}]}})
        gc.add("GET", "/payments/PM000A", json_body=payment(invoice_id=invoice.id))
        collect(client, invoice)
        keys = {r.headers["Idempotency-Key"] for r in gc.requests_to("POST", "/payments")}
        assert len(gc.requests_to("POST", "/payments")) == 4 and len(keys) == 1
        assert [(p.provider_payment_id, p.state) for p in db.session.scalars(sa.select(Payment))] == \
            [("PM000A", "pending")]
        assert "Collecting — charged on 5 Dec" in page(client, f"/invoices/{invoice.id}")

    def test_a_failed_payment_says_why_and_retry_collects_it(self, app, client, user, acme, invoice, gc):
        connect(user)
        active_mandate(user, acme)
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        collect(client, invoice)
        gc.add("GET", "/payments/PM000A", json_body=payment(status="failed", invoice_id=invoice.id))
        deliver(client, event("EV1", "payments", "failed", {"payment": "PM000A"},
                              details={"origin": "bank", "cause": "insufficient_funds", "scheme": "bacs",
                                       "reason_code": "ARUDD-0", "description": "The customer's account had "
                                       "insufficient funds.", "will_attempt_retry": False}))
        with committed_rows(Payment.state, Payment.note) as commits:
            assert process_all() == {"EV1": "processed"}
        html = page(client, f"/invoices/{invoice.id}")
        assert "Failed: insufficient funds" in html and ">Retry collection</button>" in html
        # Never "Failed" without why, even for a page read between two commits.
        assert [state for rows in commits for state, note in rows if not note] == ["pending"]
        assert db.session.scalar(sa.select(Payment)).state == "failed"

        gc.add("POST", "/payments/PM000A/actions/retry", json_body=payment(status="pending_submission",
                                                                           charge_date="2026-12-09",
                                                                           invoice_id=invoice.id))
        collection = db.session.scalar(sa.select(GoCardlessCollection))
        post_form(client, f"/invoices/{invoice.id}/direct-debit/{collection.id}/retry", {},
                  form_url=f"/invoices/{invoice.id}")
        assert len(gc.requests_to("POST", "/payments/PM000A/actions/retry")) == 1
        assert "Collecting — charged on 9 Dec" in page(client, f"/invoices/{invoice.id}")

        gc.rsps.replace("GET", f"{API}/payments/PM000A", json=payment(status="confirmed", invoice_id=invoice.id))
        deliver(client, event("EV2", "payments", "confirmed", {"payment": "PM000A"}))
        process_all()
        html = page(client, f"/invoices/{invoice.id}")
        assert 'id="collection-state" data-status="confirmed"><strong>Paid</strong>' in html
        assert db.session.get(Invoice, invoice.id).status == "paid"
        assert len(gc.requests_to("POST", "/payments")) == 1  # retried, never created twice

    def test_a_remainder_after_a_paid_collection_is_collected_anew(self, app, client, user, acme, invoice, gc):
        from planman.models import InvoiceLine
        from planman.payments import services as payments

        connect(user)
        active_mandate(user, acme)
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        collect(client, invoice)
        gc.add("GET", "/payments/PM000A", json_body=payment(status="confirmed", invoice_id=invoice.id))
        deliver(client, event("EV1", "payments", "confirmed", {"payment": "PM000A"}))
        process_all()
        assert db.session.get(Invoice, invoice.id).status == "paid"
        # The firm adds a line afterwards: 20.00 more is due.
        invoice = db.session.get(Invoice, invoice.id)
        invoice.lines.append(InvoiceLine(position=1, description="Extra", quantity=1, unit_price=20))
        invoice.revision += 1
        db.session.flush()
        payments.sync_status(invoice)
        db.session.commit()
        assert ">Collect by Direct Debit</button>" in page(client, f"/invoices/{invoice.id}")

        gc.rsps.replace("POST", f"{API}/payments", json=payment("PM000B", amount=2000, invoice_id=invoice.id))
        assert collect(client, invoice).status_code == 302
        second = json.loads(gc.requests_to("POST", "/payments")[-1].body)["payments"]
        assert second["amount"] == 2000  # the remainder, not the paid collection again
        assert [(c.payment_id, c.amount) for c in db.session.scalars(
            sa.select(GoCardlessCollection).order_by(GoCardlessCollection.id))] == [("PM000A", 120), ("PM000B", 20)]

    def test_a_cancelled_mandate_with_an_invoice_due_collects_nothing(self, app, client, user, acme, invoice, gc):
        connect(user, auto_collect=True)
        active_mandate(user, acme)
        gc.add("GET", "/mandates/MD000A", json_body=mandate(status="cancelled"))
        deliver(client, event("EV1", "mandates", "cancelled", {"mandate": "MD000A"},
                              details={"origin": "customer", "cause": "mandate_cancelled",
                                       "description": "The customer cancelled the mandate."}))
        process_all()
        assert "Direct Debit cancelled" in page(client, f"/clients/{acme.id}")
        html = page(client, f"/invoices/{invoice.id}")
        assert ">Collect by Direct Debit</button>" not in html and "Direct Debit cancelled" in html
        invoice.due_date = date.today()
        db.session.commit()
        assert gc_jobs.collect_due_now() == 0 and not gc.requests_to("POST", "/payments")
        response = collect(client, invoice, follow_redirects=True)
        assert "has no active Direct Debit, so nothing was collected" in response.get_data(as_text=True)
        assert not gc.requests_to("POST", "/payments")

    def test_automatic_collection_charges_on_the_due_date(self, app, client, user, acme, invoice, gc):
        connect(user)
        active_mandate(user, acme, next_date=date.today() + timedelta(days=3))
        html = page(client, "/integrations/gocardless")
        assert 'id="auto-collect"' in html
        post_form(client, "/integrations/gocardless/automatic-collection", {"auto_collect": "on"},
                  form_url="/integrations/gocardless")
        assert "checked" in page(client, "/integrations/gocardless").split('id="auto-collect"')[1][:20]
        assert any(job.id.startswith(gc_jobs.SWEEP_JOB_ID) for job in app.push_queue.get_jobs())
        due = date.today() + timedelta(days=5)
        invoice.due_date = due
        later = make_invoice(user, acme, lines=((1, "10.00", None),), status="sent")
        later.due_date = date.today() + timedelta(days=40)
        db.session.commit()
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id, charge_date=due.isoformat()))
        assert gc_jobs.collect_due_now() == 1
        assert gc.sent("POST", "/payments")["payments"]["charge_date"] == due.isoformat()
        assert gc_jobs.collect_due_now() == 0  # collected once
        assert f"Collecting — charged on {due.day} {due.strftime('%b')}" in page(client, f"/invoices/{invoice.id}")

    def test_another_firms_invoice_is_a_404(self, app, client, user, acme, invoice, gc):
        connect(user)
        active_mandate(user, acme)
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        collect(client, invoice)
        collection = db.session.scalar(sa.select(GoCardlessCollection))
        other = new_client(app)
        connect(signup(other), organisation="OR000OTHER")
        assert post_form(other, f"/invoices/{invoice.id}/direct-debit", {}, form_url="/clients/").status_code == 404
        assert post_form(other, f"/invoices/{invoice.id}/direct-debit/{collection.id}/retry", {},
                         form_url="/clients/").status_code == 404
        assert len(gc.requests_to("POST", "/payments")) == 1

    def test_a_revoked_token_asks_for_reconnecting(self, app, client, user, acme, invoice, gc):
        connect(user)
        active_mandate(user, acme)
        gc.add("POST", "/payments", status=401, json_body={"error": {
            "type": "invalid_api_usage", "code": 401, "message": "Invalid token", "request_id": "RQ1",
            "documentation_url": "https://developer.gocardless.com/api-reference#access_token_not_found",
            "errors": [{"reason": "access_token_not_found", "message": "Invalid token"}]}})
        done = collect(client, invoice, follow_redirects=True).get_data(as_text=True)
        assert "GoCardless no longer accepts PlanMan&#39;s access to this account: reconnect it" in done
        db.session.expire_all()
        assert db.session.scalar(sa.select(Connection)).state == "needs_reconnect"
        assert db.session.scalar(sa.select(Payment)) is None

    def test_retry_is_refused_while_another_collection_is_under_way(self, app, client, user, acme, invoice, gc):
        connect(user)
        active_mandate(user, acme)
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        collect(client, invoice)
        first = db.session.scalar(sa.select(GoCardlessCollection))
        first.status = "failed"
        db.session.commit()
        gc.rsps.replace("POST", f"{API}/payments", json=payment("PM000B", invoice_id=invoice.id))
        collect(client, invoice)  # collected anew rather than retried
        done = post_form(client, f"/invoices/{invoice.id}/direct-debit/{first.id}/retry", {},
                         form_url=f"/invoices/{invoice.id}", follow_redirects=True).get_data(as_text=True)
        assert "This invoice is already being collected." in done
        assert not gc.requests_to("POST", "/payments/PM000A/actions/retry")

    def test_the_collect_post_needs_its_csrf_token(self, app, client, user, acme, invoice, gc):
        connect(user)
        active_mandate(user, acme)
        assert client.post(f"/invoices/{invoice.id}/direct-debit").status_code == 400
        assert not gc.rsps.calls


# -- the client payment page ---------------------------------------------------------------------------------

class TestPayPage:
    def test_set_up_direct_debit_and_pay_collects_once_the_mandate_exists(self, app, client, user, acme, invoice, gc):
        connect(user)
        url = make_link(client, invoice)
        browser = new_client(app)
        path = url.removeprefix(app.config["PUBLIC_BASE_URL"])
        html = page(browser, path)
        assert ">Set up Direct Debit and pay</button>" in html
        gc.add("POST", "/billing_requests", json_body=billing_request(client_id=acme.id, invoice_id=invoice.id))
        gc.add("POST", "/billing_request_flows", json_body=flow())
        attempt = re.search(r'name="attempt" value="([0-9a-f]{32})"', html).group(1)
        response = browser.post(f"{path}/gocardless", data={"csrf_token": csrf_token_from(html), "attempt": attempt})
        assert response.status_code == 303 and response.headers["Location"] == FLOW_URL
        assert gc.sent("POST", "/billing_requests")["billing_requests"]["metadata"] == {
            "planman_client_id": str(acme.id), "planman_invoice_id": str(invoice.id)}
        assert gc.sent("POST", "/billing_request_flows")["billing_request_flows"]["redirect_uri"] == \
            f"http://planman.test{path}?returned=gocardless"
        assert "being confirmed by GoCardless" in page(browser, f"{path}?returned=gocardless")

        gc.add("GET", "/billing_requests/BRQ000A", json_body=billing_request(
            "fulfilled", client_id=acme.id, invoice_id=invoice.id, mandate_id="MD000A"))
        gc.add("GET", "/mandates/MD000A", json_body=mandate(status="pending_submission"))
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        deliver(client, event("EV1", "billing_requests", "fulfilled", {"billing_request": "BRQ000A"}))
        deliver(client, event("EV1", "billing_requests", "fulfilled", {"billing_request": "BRQ000A"}))  # again
        assert process_all() == {"EV1": "processed"}
        assert gc.sent("POST", "/payments")["payments"]["links"] == {"mandate": "MD000A"}
        assert len(gc.requests_to("POST", "/payments")) == 1
        assert "Collecting — charged on 5 Dec" in page(client, f"/invoices/{invoice.id}")


    def test_a_set_up_applied_days_later_leaves_collecting_to_the_firm(self, app, client, user, acme, invoice, gc):
        connect(user)
        gc.add("GET", "/billing_requests/BRQ000A", json_body=billing_request(
            "fulfilled", client_id=acme.id, invoice_id=invoice.id, mandate_id="MD000A"))
        gc.add("GET", "/mandates/MD000A", json_body=mandate(status="active"))
        # Fulfilled three days ago; the event waited (for a reconnect, say) until now.
        fulfilled = (utcnow() - timedelta(days=3)).isoformat(timespec="milliseconds") + "Z"
        deliver(client, event("EV1", "billing_requests", "fulfilled", {"billing_request": "BRQ000A"},
                              created_at=fulfilled))
        assert process_all() == {"EV1": "processed"}
        assert db.session.scalar(sa.select(GoCardlessMandate)).mandate_id == "MD000A"
        assert not gc.requests_to("POST", "/payments")  # the client may have paid otherwise since
        assert ">Collect by Direct Debit</button>" in page(client, f"/invoices/{invoice.id}")

    def test_a_collection_under_way_is_not_paid_for_again(self, app, client, user, acme, invoice, gc):
        connect(user)
        active_mandate(user, acme)
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        collect(client, invoice)  # the firm collects; GoCardless has not taken the money yet
        url = make_link(client, invoice)
        html = " ".join(page(new_client(app), url.removeprefix(app.config["PUBLIC_BASE_URL"])).split())
        assert ">Set up Direct Debit and pay</button>" not in html
        assert "A payment of GBP 120.00 is on its way</strong> (being confirmed or collected). You do not need to " \
               "pay again" in html

    def test_the_pay_button_collects_only_what_is_left_after_a_payment_on_its_way(self, app, client, user, acme,
                                                                                   invoice, gc):
        connect(user)
        active_mandate(user, acme)
        db.session.add(Payment(firm_id=user.firm_id, invoice_id=invoice.id, amount=20, currency="GBP",
                               paid_on=date.today(), method="card", state="pending", provider="stripe",
                               provider_payment_id="pi_0"))  # a card payment still being confirmed
        db.session.commit()
        url = make_link(client, invoice)
        browser = new_client(app)
        path = url.removeprefix(app.config["PUBLIC_BASE_URL"])
        html = page(browser, path)
        gc.add("POST", "/payments", json_body=payment(amount=10000, invoice_id=invoice.id))
        browser.post(f"{path}/gocardless", data={"csrf_token": csrf_token_from(html),
                                                 "attempt": re.search(r'name="attempt" value="([0-9a-f]{32})"',
                                                                      html).group(1)})
        assert gc.sent("POST", "/payments")["payments"]["amount"] == 10000  # 120 due, 20 on its way

    def test_with_an_active_mandate_the_pay_button_collects_at_once(self, app, client, user, acme, invoice, gc):
        connect(user)
        active_mandate(user, acme)
        url = make_link(client, invoice)
        browser = new_client(app)
        path = url.removeprefix(app.config["PUBLIC_BASE_URL"])
        html = page(browser, path)
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        attempt = re.search(r'name="attempt" value="([0-9a-f]{32})"', html).group(1)
        response = browser.post(f"{path}/gocardless", data={"csrf_token": csrf_token_from(html), "attempt": attempt})
        assert response.status_code == 303 and response.headers["Location"] == f"http://planman.test{path}?returned=gocardless"
        assert len(gc.requests_to("POST", "/payments")) == 1 and not gc.requests_to("POST", "/billing_requests")


# -- webhooks -------------------------------------------------------------------------------------------------

class TestWebhooks:
    @pytest.mark.parametrize("how", ["unsigned", "other secret", "body changed"])
    def test_a_forged_delivery_is_refused_before_it_is_read(self, app, client, user, gc, how):
        connect(user)
        raw = json.dumps({"events": [event("EV1", "payments", "confirmed", {"payment": "PM000A"})]}).encode()
        if how == "unsigned":
            response = client.post("/webhooks/gocardless", data=raw, content_type="application/json")
            assert response.status_code == 400
        elif how == "other secret":
            assert deliver(client, raw=raw, secret="guessed").status_code == 498
        else:
            response = client.post("/webhooks/gocardless", data=raw.replace(b"confirmed", b"paid_out"),
                                   content_type="application/json", headers={"Webhook-Signature": sign(raw)})
            assert response.status_code == 498
        assert db.session.scalar(sa.select(WebhookEvent)) is None and not gc.rsps.calls

    def test_a_signed_body_that_is_not_events_is_refused(self, app, client, user):
        assert deliver(client, raw=b'{"hello": 1}').status_code == 400
        assert db.session.scalar(sa.select(WebhookEvent)) is None

    def test_duplicates_are_stored_once_and_an_unknown_organisation_is_dropped(self, app, client, user, acme,
                                                                              invoice, gc):
        connect(user)
        active_mandate(user, acme)
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        collect(client, invoice)
        gc.add("GET", "/payments/PM000A", json_body=payment(status="confirmed", invoice_id=invoice.id))
        confirmed = event("EV1", "payments", "confirmed", {"payment": "PM000A"})
        stranger = event("EV9", "payments", "confirmed", {"payment": "PM000A"}, organisation="OR000NOBODY")
        for _ in range(3):
            assert deliver(client, confirmed, stranger).status_code == 200
        assert process_all() == {"EV1": "processed", "EV9": "dropped"}
        assert len(gc.requests_to("GET", "/payments/PM000A")) == 1
        assert [(p.state, p.amount) for p in db.session.scalars(sa.select(Payment))] == [("succeeded", 120)]

    def test_a_collection_confirmed_while_disconnected_is_applied_on_connecting_again(self, app, client, user,
                                                                                     acme, invoice, gc):
        connect(user)
        active_mandate(user, acme)
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        collect(client, invoice)
        gc.rsps.post(f"{CONNECT}/oauth/revoke", json={})
        post_form(client, "/integrations/gocardless/disconnect", {}, form_url="/integrations/gocardless")
        # The Direct Debit already under way is collected; GoCardless says so, and that it let PlanMan go.
        deliver(client, event("EV1", "payments", "confirmed", {"payment": "PM000A"}),
                event("EV2", "organisations", "disconnected", {}))
        assert process_all() == {"EV1": "waiting", "EV2": "dropped"}
        assert db.session.get(Invoice, invoice.id).status == "sent"
        notice = " ".join(page(client, "/integrations/gocardless").split())
        assert f"1 event from GoCardless about Reid &amp; Co Accountants (<code>{ORG}</code>) could not be applied" \
            in notice

        started = post_form(client, "/integrations/gocardless/connect", {}, form_url="/integrations/gocardless")
        state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
        gc.rsps.post(f"{CONNECT}/oauth/access_token", json={
            "access_token": TOKEN, "token_type": "bearer", "scope": "read_write", "organisation_id": ORG})
        assert client.get(f"/integrations/gocardless/callback?code=code_1&state={state}").status_code == 302
        gc.add("GET", "/payments/PM000A", json_body=payment(status="confirmed", invoice_id=invoice.id))
        assert process_all() == {"EV1": "processed", "EV2": "dropped"}
        assert [(p.state, p.amount) for p in db.session.scalars(sa.select(Payment))] == [("succeeded", 120)]
        assert db.session.get(Invoice, invoice.id).status == "paid"
        assert 'id="waiting-events"' not in page(client, "/integrations/gocardless")

    def test_events_in_any_order_end_as_gocardless_says(self, app, client, user, acme, invoice, gc):
        connect(user)
        active_mandate(user, acme)
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        collect(client, invoice)
        # paid_out arrives before submitted: each handler reads the payment as it is now.
        gc.add("GET", "/payments/PM000A", json_body=payment(status="paid_out", invoice_id=invoice.id))
        deliver(client, event("EV2", "payments", "paid_out", {"payment": "PM000A"}),
                event("EV1", "payments", "submitted", {"payment": "PM000A"}))
        process_all()
        assert db.session.scalar(sa.select(Payment)).state == "succeeded"
        assert db.session.get(Invoice, invoice.id).status == "paid"

    def test_disconnected_from_gocardlesss_side_says_so_without_calling_gocardless(self, app, client, user, gc):
        connect(user)
        deliver(client, event("EV1", "organisations", "disconnected", {},
                              details={"origin": "gocardless", "cause": "app_disconnected",
                                       "description": "This app was disconnected from the organisation."}))
        with committed_rows(Connection.state, Connection.state_reason) as commits:
            assert process_all() == {"EV1": "processed"}
        reason = "Disconnected from GoCardless's side (in the GoCardless dashboard)."
        # Never "Not connected" without saying why, even for a page read between two commits.
        assert {row for rows in commits for row in rows if row[0] == "disconnected"} == {("disconnected", reason)}
        assert not gc.rsps.calls  # the token is already dead: no revoke call
        html = page(client, "/integrations/gocardless")
        assert "Not connected" in html and reason.replace("'", "&#39;") in html
        assert db.session.scalar(sa.select(Connection)).token_ciphertext is None

    def test_another_firms_organisation_cannot_touch_this_firms_payment(self, app, client, user, acme, invoice, gc):
        connect(user)
        active_mandate(user, acme)
        gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
        collect(client, invoice)
        other = new_client(app)
        connect(signup(other), organisation="OR000OTHER")
        gc.add("GET", "/payments/PM000A", json_body=payment(status="confirmed", invoice_id=invoice.id))
        deliver(client, event("EV1", "payments", "confirmed", {"payment": "PM000A"}, organisation="OR000OTHER"))
        assert process_all() == {"EV1": "processed"}
        assert db.session.scalar(sa.select(Payment)).state == "pending"


# -- paid and charged back, in Xero ---------------------------------------------------------------------------

def test_a_charge_back_after_payout_reopens_the_invoice_and_reverses_the_xero_payment(app, client, user, acme,
                                                                                      invoice, xero_api):
    from tests.test_payments_ledger import run_ledger_jobs
    from tests.test_xero_payments import INVOICE_ID, PAYMENT_ID, connect as connect_xero, xero_invoice, xero_payment

    gc = FakeGoCardless(xero_api.rsps)
    connect(user)
    connect_xero(user, invoice)
    active_mandate(user, acme)
    gc.add("POST", "/payments", json_body=payment(invoice_id=invoice.id))
    collect(client, invoice)
    gc.add("GET", "/payments/PM000A", json_body=payment(status="paid_out", invoice_id=invoice.id))
    deliver(client, event("EV1", "payments", "confirmed", {"payment": "PM000A"}),
            event("EV2", "payments", "paid_out", {"payment": "PM000A"}))
    process_all()
    assert db.session.get(Invoice, invoice.id).status == "paid"
    xero_api.add("GET", "/Payments", json={"Payments": []})
    xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json=xero_invoice())
    xero_api.add("PUT", "/Payments", json={"Payments": [xero_payment("PM000A")]})
    assert run_ledger_jobs(app) == ["xero: recorded"]
    [create] = xero_api.requests_to("PUT", "/Payments")
    sent = json.loads(create.body)["Payments"][0]
    assert sent["Reference"] == "PM000A" and sent["Amount"] == 120.0 and sent["Account"] == {"Code": "855"}

    gc.rsps.replace("GET", f"{API}/payments/PM000A", json=payment(status="charged_back", invoice_id=invoice.id))
    deliver(client, event("EV3", "payments", "charged_back", {"payment": "PM000A"},
                          details={"origin": "bank", "cause": "payment_charged_back",
                                   "description": "The customer asked their bank to refund this payment."},
                          created_at="2026-12-01T10:00:00.000Z"))
    process_all()
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == "sent"
    assert db.session.get(Invoice, invoice.id).amount_due == 120
    html = page(client, f"/invoices/{invoice.id}")
    assert "Charged back on 1 Dec" in html  # the day GoCardless's event says
    assert "Charged back" in html
    xero_api.add("GET", f"/Payments/{PAYMENT_ID}", json={"Payments": [xero_payment("PM000A")]})
    xero_api.add("POST", f"/Payments/{PAYMENT_ID}", json={"Payments": [xero_payment("PM000A", status="DELETED")]})
    assert run_ledger_jobs(app) == ["xero: reversed"]
    [delete] = xero_api.requests_to("POST", f"/Payments/{PAYMENT_ID}")
    assert '"Status": "DELETED"' in (delete.body.decode() if isinstance(delete.body, bytes) else delete.body)
    assert db.session.scalar(sa.select(PaymentLedgerLink)).state == "reversed"
