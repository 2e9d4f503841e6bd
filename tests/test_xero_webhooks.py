"""Xero's webhooks and the catch-up job (issue 17), with Xero played by `responses`
(every request PlanMan sends is checked against Xero's official spec) and
deliveries signed as Xero signs them. Jobs run in-process, as a worker would
run them; what is asserted is what Xero is answered and what the pages show."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from planman import jobs
from planman.extensions import db
from planman.integrations import webhooks as intake
from planman.integrations.tokens import store_token
from planman.models import Connection, ExternalLink, Invoice, Payment, PaymentLedgerLink, WebhookEvent, utcnow
from tests.helpers import committed_rows, make_client, make_invoice, new_client, signup
from tests.test_payments import record
from tests.test_payments_ledger import page, run_ledger_jobs
from tests.xero_spec import xero_api  # noqa: F401

KEY = "test-xero-webhook-key"  # TestConfig.XERO_WEBHOOK_KEY
TENANT = "8a3b2c1d-0000-4000-8000-000000000001"
OTHER_TENANT = "8a3b2c1d-0000-4000-8000-000000000002"
INVOICE_ID = "22222222-2222-4222-8222-222222222222"
CONTACT_ID = "11111111-1111-4111-8111-111111111111"
XERO_PAYMENT = "33333333-3333-4333-8333-333333333333"


def sign(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def delivery(*events: dict) -> bytes:
    return json.dumps({"events": list(events), "firstEventSequence": 1, "lastEventSequence": len(events),
                       "entropy": "QWERTYUIOPASDFGHJKLZ"}).encode()


def xero_event(resource_id=INVOICE_ID, category="INVOICE", event_type="UPDATE", tenant=TENANT,
               at="2026-12-02T10:00:00.000"):
    return {"resourceUrl": f"https://api.xero.com/api.xro/2.0/{category.title()}s/{resource_id}",
            "resourceId": resource_id, "eventDateUtc": at, "eventType": event_type, "eventCategory": category,
            "tenantId": tenant, "tenantType": "ORGANISATION"}


def post(client, body: bytes, signature: str | None = "sign"):
    headers = {} if signature is None else {"x-xero-signature": sign(body) if signature == "sign" else signature}
    return client.post("/webhooks/xero", data=body, headers=headers, content_type="application/json")


def run_webhook_jobs(app) -> list[str]:
    """Run the queued webhook jobs, as a worker would, in the order given."""
    results = []
    for job in app.push_queue.get_jobs():
        if job.func_name == "planman.jobs.process_webhook_event":
            job.delete()
            results.append(jobs.process_webhook_event(*job.args))
    return results


def xero_ms(moment) -> str:
    """A naive UTC time as Xero writes it in JSON: /Date(ms+0000)/."""
    return f"/Date({int(moment.replace(tzinfo=timezone.utc).timestamp() * 1000)}+0000)/"


def xero_invoice(status="AUTHORISED", payments=(), updated="/Date(1764669600000+0000)/", invoice_id=INVOICE_ID):
    return {"InvoiceID": invoice_id, "Type": "ACCREC", "Status": status, "Total": 120.0, "UpdatedDateUTC": updated,
            "Payments": list(payments)}


def xero_payment(payment_id=XERO_PAYMENT, amount=120.0, reference="BACS 0412", day="/Date(1764633600000+0000)/"):
    return {"PaymentID": payment_id, "Date": day, "Amount": amount, "Reference": reference}


@pytest.fixture
def user(client):
    return signup(client)


@pytest.fixture
def invoice(user):
    return make_invoice(user, make_client(user, name="Acme Ltd"), lines=((1, "120.00", None),), status="sent")


@pytest.fixture
def connection(user, invoice):
    connection = Connection(firm_id=user.firm_id, provider="xero", state="connected", tenant_id=TENANT,
                            tenant_name="Demo Company (UK)", tenant_short_code="!dmoUK", connected_at=utcnow(),
                            settings={"sales_account_code": "200", "payment_account_code": "090"})
    store_token(connection, {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": 1800})
    db.session.add(connection)
    db.session.add(ExternalLink(firm_id=user.firm_id, provider="xero", tenant_id=TENANT, record_type="invoice",
                                record_id=invoice.id, external_id=INVOICE_ID, remote_status="DRAFT",
                                status_checked_at=utcnow()))
    db.session.add(ExternalLink(firm_id=user.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=invoice.client_id, external_id=CONTACT_ID, remote_status="ACTIVE",
                                status_checked_at=utcnow(), pushed_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    return connection


def panel(client, record_type, record_id) -> str:
    return client.get(f"/integrations/xero/{record_type}/{record_id}/panel").get_data(as_text=True)


# What a page shows side by side: the invoice's status here, and Xero's.
STATUS_HERE_AND_IN_XERO = sa.select(Invoice.status, ExternalLink.remote_status).join(
    ExternalLink, sa.and_(ExternalLink.record_type == "invoice", ExternalLink.record_id == Invoice.id))


def payments() -> list[tuple]:
    db.session.expire_all()
    return [(p.provider, p.provider_payment_id, str(p.amount), p.state, p.reference)
            for p in db.session.scalars(sa.select(Payment).order_by(Payment.id))]


def stored() -> list[tuple[str, str]]:
    db.session.expire_all()
    return [(row.event_type, row.state) for row in db.session.scalars(sa.select(WebhookEvent).order_by(WebhookEvent.id))]


class TestIntentToReceive:
    """What Xero sends when a subscription is created or re-enabled: empty deliveries,
    some signed correctly (200 expected), some not (401)."""

    def test_a_correctly_signed_probe_is_answered_200_with_an_empty_body_and_no_cookie(self, app, client):
        response = post(client, delivery())
        assert response.status_code == 200 and response.data == b""
        assert "Set-Cookie" not in response.headers
        assert stored() == []

    @pytest.mark.parametrize("signature", [None, "", sign(delivery(), key="not-the-key"), sign(b"another body"),
                                           "bm90IGEgc2lnbmF0dXJl"])
    def test_a_wrongly_signed_probe_is_answered_401_with_an_empty_body(self, app, client, signature):
        response = post(client, delivery(), signature=signature)
        assert response.status_code == 401 and response.data == b""
        assert "Set-Cookie" not in response.headers

    def test_without_a_webhook_key_every_delivery_is_refused(self, app, client):
        app.config["XERO_WEBHOOK_KEY"] = ""
        assert post(client, delivery(), signature=sign(delivery(), key="")).status_code == 401


class TestDeliveries:
    def test_a_forged_event_is_refused_before_it_is_read_and_nothing_is_fetched(self, app, client, connection,
                                                                                xero_api):
        body = delivery(xero_event())
        assert post(client, body, signature=sign(body, key="guessed")).status_code == 401
        assert post(client, body[:-1] + b" }", signature=sign(body)).status_code == 401  # body changed after signing
        assert stored() == [] and run_webhook_jobs(app) == [] and len(xero_api.calls) == 0

    def test_signed_but_not_a_delivery_is_a_400_and_nothing_is_kept(self, app, client):
        for body in (b"not json", b'{"events": "x"}', b"[]"):
            assert post(client, body).status_code == 400
        assert stored() == []

    def test_an_invoice_approved_in_xero_updates_its_status_and_panel(self, app, client, invoice, connection,
                                                                      xero_api):
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json={"Invoices": [xero_invoice("AUTHORISED")]})
        assert post(client, delivery(xero_event())).status_code == 200
        assert stored() == [("INVOICE.UPDATE", "queued")]
        assert run_webhook_jobs(app) == ["processed"]
        assert stored() == [("INVOICE.UPDATE", "processed")]
        link = db.session.scalar(sa.select(ExternalLink).where(ExternalLink.record_type == "invoice"))
        assert link.remote_status == "AUTHORISED"
        html = panel(client, "invoice", invoice.id)
        assert "Awaiting payment" in html
        assert xero_api.check_all() == [] and len(xero_api.calls) == 1  # the panel asks Xero nothing more

    def test_a_rate_limited_event_waits_for_xero_without_using_up_its_attempts(self, app, client, invoice,
                                                                                 connection, xero_api):
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}", status=429, headers={"Retry-After": "1"},
                     json={"Title": "Too many requests"})
        post(client, delivery(xero_event()))
        [row_id] = [job.args[0] for job in app.push_queue.get_jobs()
                    if job.func_name == "planman.jobs.process_webhook_event"]
        for _ in range(intake.MAX_ATTEMPTS + 1):  # more 429s than a failing event gets tries
            assert jobs.process_webhook_event(row_id) == "rate limited, will retry"
            assert stored() == [("INVOICE.UPDATE", "queued")]
            waiting = app.push_queue.scheduled_job_registry.get_job_ids()
            assert any("rate-limited" in job_id for job_id in waiting)
            held = db.session.scalar(sa.select(WebhookEvent))
            assert held.lease_until > utcnow()  # not taken up before Xero's Retry-After
            held.lease_until = utcnow() - timedelta(seconds=1)  # the time has come
            db.session.commit()
        event = db.session.scalar(sa.select(WebhookEvent))
        assert event.attempts == 0 and event.error == "Waiting 1s for Xero's rate limit."

    @pytest.mark.parametrize("status, words", [("VOIDED", "Voided"), ("DELETED", "deleted in Xero")])
    def test_an_invoice_voided_or_deleted_in_xero_shows_so(self, app, client, invoice, connection, xero_api,
                                                           status, words):
        if status == "DELETED":
            xero_api.add("GET", f"/Invoices/{INVOICE_ID}", status=404, json={})
        else:
            xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json={"Invoices": [xero_invoice(status)]})
        post(client, delivery(xero_event()))
        assert run_webhook_jobs(app) == ["processed"]
        assert db.session.scalar(sa.select(ExternalLink.remote_status).where(
            ExternalLink.record_type == "invoice")) == status
        assert words in panel(client, "invoice", invoice.id)

    def test_a_payment_recorded_in_xero_appears_as_a_payment_from_xero_and_pays_the_invoice(
            self, app, client, invoice, connection, xero_api):
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}",
                     json={"Invoices": [xero_invoice("PAID", payments=[xero_payment()])]})
        post(client, delivery(xero_event()))
        with committed_rows(query=STATUS_HERE_AND_IN_XERO) as commits:
            assert run_webhook_jobs(app) == ["processed"]
        assert payments() == [("xero", XERO_PAYMENT, "120.00", "succeeded", "BACS 0412")]
        assert ("sent", "PAID") not in {row for rows in commits for row in rows}  # "Paid in Xero", not here
        html = page(client, invoice)
        assert "status-paid" in html and f"Xero ({XERO_PAYMENT})" in html and "BACS 0412" in html
        assert "2025-12-02" in html  # Xero's payment date, not today's
        assert "Recorded in Xero" in html
        # Never written back to Xero: no job, no PUT /Payments.
        assert run_ledger_jobs(app) == [] and xero_api.requests_to("PUT", "/Payments") == []
        assert db.session.get(Invoice, invoice.id).status == "paid"

    def test_two_payments_recorded_in_xero_at_once_pay_the_invoice_in_one_step(self, app, client, invoice,
                                                                                 connection, xero_api):
        second = "55555555-5555-4555-8555-555555555555"
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json={"Invoices": [xero_invoice("PAID", payments=[
            xero_payment(amount=70.0), xero_payment(second, amount=50.0, reference="BACS 0413")])]})
        post(client, delivery(xero_event()))
        with committed_rows(query=STATUS_HERE_AND_IN_XERO) as commits:
            assert run_webhook_jobs(app) == ["processed"]
        assert sorted(p[1:4] for p in payments()) == [(XERO_PAYMENT, "70.00", "succeeded"),
                                                      (second, "50.00", "succeeded")]
        seen = {row for rows in commits for row in rows}
        assert ("part_paid", "PAID") not in seen and ("sent", "PAID") not in seen  # never part way
        assert db.session.get(Invoice, invoice.id).status == "paid"

    def test_duplicates_and_replays_record_a_payment_once(self, app, client, invoice, connection, xero_api):
        paid = {"Invoices": [xero_invoice("PAID", payments=[xero_payment()])]}
        for _ in range(3):
            xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json=paid)
        body = delivery(xero_event())
        for _ in range(3):  # Xero's retries: the same delivery again
            assert post(client, body).status_code == 200
        assert stored() == [("INVOICE.UPDATE", "queued")]
        # A later event about the same invoice (another change) and a replayed delivery
        # with a new time: fetched again, recorded no second time.
        post(client, delivery(xero_event(at="2026-12-02T10:05:00.000")))
        post(client, delivery(xero_event(at="2026-12-02T10:06:00.000")))
        assert run_webhook_jobs(app) == ["processed"] * 3
        assert payments() == [("xero", XERO_PAYMENT, "120.00", "succeeded", "BACS 0412")]
        assert db.session.get(Invoice, invoice.id).amount_paid == 120

    def test_a_replayed_old_delivery_cannot_turn_a_paid_invoice_back(self, app, client, invoice, connection,
                                                                      xero_api):
        """Whatever an old delivery said, the worker applies what Xero holds now."""
        old = delivery(xero_event(at="2026-12-01T09:00:00.000"))
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json={"Invoices": [xero_invoice("AUTHORISED")]})
        post(client, old)
        run_webhook_jobs(app)
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}",
                     json={"Invoices": [xero_invoice("PAID", [xero_payment()], updated="/Date(1764673200000+0000)/")]})
        post(client, delivery(xero_event(at="2026-12-02T11:00:00.000")))
        run_webhook_jobs(app)
        assert post(client, old).status_code == 200  # replayed: stored before, not again
        assert run_webhook_jobs(app) == []
        assert db.session.scalar(sa.select(ExternalLink.remote_status).where(
            ExternalLink.record_type == "invoice")) == "PAID"
        assert db.session.get(Invoice, invoice.id).status == "paid"

    def test_an_event_older_than_what_was_read_back_costs_no_call(self, app, client, invoice, connection,
                                                                    xero_api):
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json={"Invoices": [xero_invoice(
            "PAID", [xero_payment()], updated="/Date(1796205600000+0000)/")]})  # 2026-12-02 10:00 UTC
        post(client, delivery(xero_event(at="2026-12-02T10:00:00.000")))
        post(client, delivery(xero_event(at="2026-12-02T09:59:58.000")))  # the approval, two seconds before
        assert run_webhook_jobs(app) == ["processed", "processed"]
        assert len(xero_api.calls) == 1
        assert payments() == [("xero", XERO_PAYMENT, "120.00", "succeeded", "BACS 0412")]

    def test_events_in_any_order_end_in_xeros_latest_state(self, app, client, invoice, connection, xero_api):
        """The approval's event arrives after the payment's, and its fetch answers with an
        older copy (a read that raced the payment): the older copy changes nothing."""
        newer = "/Date(1764673200000+0000)/"
        older = "/Date(1764669600000+0000)/"
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}",
                     json={"Invoices": [xero_invoice("PAID", [xero_payment()], updated=newer)]})
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json={"Invoices": [xero_invoice("AUTHORISED", updated=older)]})
        post(client, delivery(xero_event(at="2026-12-02T11:00:00.000")))  # paid
        post(client, delivery(xero_event(at="2026-12-02T10:00:00.000")))  # approved, earlier
        assert run_webhook_jobs(app) == ["processed", "processed"]
        assert db.session.scalar(sa.select(ExternalLink.remote_status).where(
            ExternalLink.record_type == "invoice")) == "PAID"
        assert payments() == [("xero", XERO_PAYMENT, "120.00", "succeeded", "BACS 0412")]

    def test_a_payment_removed_in_xero_is_reversed_here(self, app, client, invoice, connection, xero_api):
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}",
                     json={"Invoices": [xero_invoice("PAID", [xero_payment()])]})
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}",
                     json={"Invoices": [xero_invoice("AUTHORISED", [], updated="/Date(1764673200000+0000)/")]})
        post(client, delivery(xero_event(at="2026-12-02T10:00:00.000")))
        run_webhook_jobs(app)
        post(client, delivery(xero_event(at="2026-12-02T11:00:00.000")))
        with committed_rows(query=STATUS_HERE_AND_IN_XERO) as commits:
            run_webhook_jobs(app)
        assert payments() == [("xero", XERO_PAYMENT, "120.00", "reversed", "BACS 0412")]
        assert ("paid", "AUTHORISED") not in {row for rows in commits for row in rows}
        html = page(client, invoice)
        assert "Removed in Xero." in html and "Reversed in Xero" in html
        assert db.session.get(Invoice, invoice.id).status == "sent"
        assert run_ledger_jobs(app) == [] and xero_api.requests_to("POST", "/Payments") == []

    def test_a_payment_planman_recorded_in_xero_is_not_echoed_back(self, app, client, invoice, connection,
                                                                    xero_api):
        xero_api.add("GET", "/Payments", json={"Payments": []})
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json={"Invoices": [xero_invoice("AUTHORISED")]})
        xero_api.add("PUT", "/Payments", json={"Payments": [{"PaymentID": XERO_PAYMENT, "Status": "AUTHORISED"}]})
        record(client, invoice, amount="40.00", paid_on="2026-02-01")
        assert run_ledger_jobs(app) == ["xero: recorded"]
        ours = db.session.scalar(sa.select(Payment))
        # Xero's event for that payment: the invoice now lists it (PlanMan's reference).
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json={"Invoices": [xero_invoice(
            "AUTHORISED", [xero_payment(amount=40.0, reference=f"PlanMan payment {ours.id}")])]})
        post(client, delivery(xero_event()))
        assert run_webhook_jobs(app) == ["processed"]
        assert [(provider, amount, state) for provider, _, amount, state, _ in payments()] == \
            [(None, "40.00", "succeeded")]
        assert db.session.get(Invoice, invoice.id).amount_paid == 40

    def test_a_payment_being_recorded_by_planman_is_recognised_by_its_reference(self, app, client, invoice,
                                                                                 connection, xero_api):
        """The event can arrive before the ledger job has saved Xero's PaymentID."""
        record(client, invoice, amount="40.00")
        ours = db.session.scalar(sa.select(Payment))
        assert db.session.scalar(sa.select(PaymentLedgerLink.external_id)) is None
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json={"Invoices": [xero_invoice(
            "AUTHORISED", [xero_payment(amount=40.0, reference=f"PlanMan payment {ours.id}")])]})
        post(client, delivery(xero_event()))
        assert run_webhook_jobs(app) == ["processed"]
        assert len(payments()) == 1

    def test_an_organisation_no_firm_holds_is_dropped_and_nothing_is_fetched(self, app, client, connection,
                                                                            xero_api):
        post(client, delivery(xero_event(tenant=OTHER_TENANT)))
        assert run_webhook_jobs(app) == ["dropped"]
        assert len(xero_api.calls) == 0

    def test_another_firms_organisation_cannot_touch_this_firms_invoice(self, app, client, invoice, connection,
                                                                       xero_api):
        """Firm B holds another organisation; an event from it naming firm A's Xero invoice id changes nothing."""
        other = signup(new_client(app), email="firm-b@example.com", firm_name="Firm B")
        second = Connection(firm_id=other.firm_id, provider="xero", state="connected", tenant_id=OTHER_TENANT,
                            tenant_name="Firm B Ltd", connected_at=utcnow(), settings={})
        store_token(second, {"access_token": "access-b", "refresh_token": "refresh-b", "expires_in": 1800})
        db.session.add(second)
        db.session.commit()
        post(client, delivery(xero_event(tenant=OTHER_TENANT)))
        assert run_webhook_jobs(app) == ["processed"]
        assert len(xero_api.calls) == 0  # not one of firm B's records: nothing fetched
        assert payments() == []
        assert db.session.scalar(sa.select(ExternalLink.remote_status).where(
            ExternalLink.record_type == "invoice")) == "DRAFT"

    def test_an_invoice_not_sent_from_planman_is_ignored_without_a_call(self, app, client, connection, xero_api):
        post(client, delivery(xero_event(resource_id="99999999-9999-4999-8999-999999999999"),
                              xero_event(event_type="CREATE", resource_id="99999999-9999-4999-8999-999999999998")))
        assert run_webhook_jobs(app) == ["processed", "processed"]
        assert len(xero_api.calls) == 0

    def test_a_contact_archived_or_renamed_in_xero_shows_on_the_clients_panel(self, app, client, invoice,
                                                                            connection, xero_api):
        contact = {"ContactID": CONTACT_ID, "Name": "Acme Holdings Ltd", "ContactStatus": "ACTIVE",
                   "UpdatedDateUTC": xero_ms(utcnow())}
        xero_api.add("GET", f"/Contacts/{CONTACT_ID}", json={"Contacts": [contact]})
        post(client, delivery(xero_event(CONTACT_ID, "CONTACT")))
        assert run_webhook_jobs(app) == ["processed"]
        html = panel(client, "client", invoice.client_id)
        assert "Renamed in Xero: it is “Acme Holdings Ltd” there and “Acme Ltd” here." in html

        xero_api.add("GET", f"/Contacts/{CONTACT_ID}", json={"Contacts": [
            contact | {"ContactStatus": "ARCHIVED", "UpdatedDateUTC": xero_ms(utcnow() + timedelta(seconds=5))}]})
        post(client, delivery(xero_event(CONTACT_ID, "CONTACT",
                                         at=(utcnow() + timedelta(seconds=5)).isoformat(timespec="milliseconds"))))
        assert run_webhook_jobs(app) == ["processed"]
        assert "This contact is archived in Xero" in panel(client, "client", invoice.client_id)
        assert xero_api.check_all() == []

    def test_the_setup_page_says_when_events_last_arrived(self, app, client, connection, xero_api):
        assert "No events from Xero have arrived yet." in client.get("/integrations/xero").get_data(as_text=True)
        xero_api.add("GET", f"/Invoices/{INVOICE_ID}", json={"Invoices": [xero_invoice()]})
        post(client, delivery(xero_event()))
        run_webhook_jobs(app)
        html = client.get("/integrations/xero").get_data(as_text=True)
        assert "Events from Xero last arrived" in html and "No events" not in html


class TestCatchUp:
    def test_after_a_missed_day_the_catch_up_reads_back_every_change_page_by_page(self, app, client, invoice,
                                                                                  connection, xero_api):
        connection.caught_up_to = utcnow() - timedelta(days=1, hours=2)  # then webhooks stopped for a day
        db.session.commit()
        others = [xero_invoice(invoice_id=f"00000000-0000-4000-8000-{n:012d}") for n in range(100)]
        xero_api.add("GET", "/Invoices", json={"Invoices": others})  # page 1: not PlanMan's
        xero_api.add("GET", "/Invoices", json={"Invoices": [xero_invoice("PAID", [xero_payment()])]})
        xero_api.add("GET", "/Contacts", json={"Contacts": [
            {"ContactID": CONTACT_ID, "Name": "Acme Ltd", "ContactStatus": "ARCHIVED",
             "UpdatedDateUTC": xero_ms(utcnow())}]})
        assert intake.catch_up_all() == 1
        [job] = [j for j in jobs.bulk_queue(app).get_jobs() if j.func_name == "planman.jobs.catch_up_connection"]
        result = jobs.catch_up_connection(*job.args)
        assert result.startswith("read back 101 invoice(s) and 1 contact(s)")

        first, second = xero_api.requests_to("GET", "/Invoices")
        assert "page=1" in first.url and "page=2" in second.url
        # Asked from a little before the last catch-up (clock margin), by Xero's If-Modified-Since header.
        asked_from = datetime.fromisoformat(first.headers["If-Modified-Since"]).replace(tzinfo=None)
        assert utcnow() - timedelta(days=1, hours=3) < asked_from <= utcnow() - timedelta(days=1, hours=2)
        [contacts] = xero_api.requests_to("GET", "/Contacts")
        assert "includeArchived=true" in contacts.url and "If-Modified-Since" in contacts.headers
        assert xero_api.check_all() == []

        assert payments() == [("xero", XERO_PAYMENT, "120.00", "succeeded", "BACS 0412")]
        assert db.session.get(Invoice, invoice.id).status == "paid"
        assert "This contact is archived in Xero" in panel(client, "client", invoice.client_id)
        db.session.refresh(connection)
        assert connection.caught_up_to > utcnow() - timedelta(minutes=1)
        assert "Changes made in Xero were last read back" in client.get("/integrations/xero").get_data(as_text=True)

        # The next run asks only from this one's start, and finds nothing new.
        xero_api.add("GET", "/Invoices", json={"Invoices": []})
        xero_api.add("GET", "/Contacts", json={"Contacts": []})
        assert jobs.catch_up_connection(connection.id).startswith("read back 0 invoice(s)")
        assert payments() == [("xero", XERO_PAYMENT, "120.00", "succeeded", "BACS 0412")]

    def test_a_failed_catch_up_keeps_its_watermark(self, app, client, connection, xero_api):
        before = connection.caught_up_to = utcnow() - timedelta(hours=3)
        db.session.commit()
        xero_api.add("GET", "/Invoices", status=503, json={})
        with pytest.raises(Exception):
            jobs.catch_up_connection(connection.id)
        db.session.rollback()
        assert db.session.get(Connection, connection.id).caught_up_to == before

    def test_the_cli_queues_one_job_per_connected_organisation(self, app, connection):
        result = app.test_cli_runner().invoke(args=["reconcile-ledgers"])
        assert result.exit_code == 0 and "1 catch-up job(s) queued." in result.output
