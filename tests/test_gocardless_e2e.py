"""The whole Direct Debit walk, end to end: PlanMan (served for real, with real
rq workers) against the GoCardless stand-in (gocardless-pro as PlanMan's
client) and the Xero stand-in. Connect with GoCardless, send the client the
mandate link, complete the hosted flow, collect an invoice, move it on to paid
out in the stand-in: the webhooks the stand-in signs and delivers mark it paid
in PlanMan, and the payment arrives once in Xero."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Invoice
from standins.gocardless import create_app as gocardless_standin
from standins.gocardless import demo
from tests.e2e_fixtures import config_overrides, connected  # noqa: F401
from tests.fixtures.services import wait_until
from tests.helpers import post_form
from tests.standins.gocardless.conftest import Standin
from tests.test_push_e2e import organisation
from tests.test_xero_payments_e2e import sent_and_approved

pytestmark = pytest.mark.integration
SECRET = "e2e-webhook-secret"


@pytest.fixture
def gc(tmp_path):
    standin = Standin(gocardless_standin({"DATABASE": str(tmp_path / "gc.db"), "TESTING": True}))
    yield standin
    standin.stop()


def gocardless_config(gc) -> dict:
    return {"GOCARDLESS_API_URL": gc.url, "GOCARDLESS_CONNECT_URL": gc.url, "GOCARDLESS_PAY_URL": gc.url,
            "GOCARDLESS_CLIENT_ID": "planman-dev", "GOCARDLESS_CLIENT_SECRET": "planman-dev-secret",
            "GOCARDLESS_WEBHOOK_SECRET": SECRET}


@pytest.fixture
def app(integration_app, gc):
    integration_app.config.update(gocardless_config(gc))
    return integration_app


@pytest.fixture
def workers_env(service_env, gc):
    """The workers' GoCardless is the stand-in too (requested before `connected` starts them;
    not from `app`, because service_env reaches live_server, which needs `app`)."""
    service_env.update(gocardless_config(gc))


def html(client, url: str) -> str:
    db.session.expire_all()
    return client.get(url).get_data(as_text=True)


def deliver_all(gc) -> None:
    """The stand-in sends what is queued; PlanMan must take every delivery."""
    attempts = gc.flush()
    assert attempts and all(a["status"] == 200 for a in attempts), [(a["status"], a["error"]) for a in attempts]


def connect_and_mandate(live_server, client, admin, sandbox, gc):
    """Connect with GoCardless and give the invoice's client an active mandate, all through the doors."""
    gc.control("webhooks/endpoints", url=f"{live_server}/webhooks/gocardless", secret=SECRET, events=["*"])
    invoice, _ = sent_and_approved(client, admin, sandbox)

    # Setup > Integrations > GoCardless > Connect with GoCardless.
    assert ">Connect with GoCardless</button>" in html(client, "/integrations/gocardless")
    started = post_form(client, "/integrations/gocardless/connect", {}, form_url="/integrations/gocardless")
    consent = started.headers["Location"]
    assert consent.startswith(f"{gc.url}/oauth/authorize?")
    assert "Connect" in gc.http.get(consent).text
    fields = {k: v[0] for k, v in parse_qs(urlsplit(consent).query).items()}
    back = gc.http.post(f"{gc.url}/oauth/authorize", data={**fields, "decision": "allow"}, allow_redirects=False)
    callback = urlsplit(back.headers["Location"])
    assert client.get(f"{callback.path}?{callback.query}").status_code == 302
    wait_until(lambda: "No money moves until verification is done" in html(client, "/integrations/gocardless"),
               30, "the worker to load the creditor")
    gc.control(f"creditors/{demo.DEMO_CREDITOR}/verification", status="successful")
    deliver_all(gc)  # creditors.updated: PlanMan reloads the creditor
    wait_until(lambda: "Verified: GoCardless pays" in html(client, "/integrations/gocardless"), 30,
               "the creditor's verification to arrive")

    # The client's page: Ask to set up Direct Debit, a link to send; the client completes the flow.
    client_page = f"/clients/{invoice.client_id}"
    post_form(client, f"{client_page}/direct-debit", {}, form_url=client_page)
    flow_url = re.search(r'id="direct-debit-link" readonly value="([^"]+)"', html(client, client_page)).group(1)
    done = gc.http.post(flow_url, data={"given_name": "Ann", "family_name": "Acme", "email": "ann@acme.test"},
                        allow_redirects=False)
    assert done.status_code == 303
    assert "Your Direct Debit is being set up" in gc.http.get(done.headers["Location"]).text
    deliver_all(gc)
    wait_until(lambda: "waiting for the client, then for their bank" in html(client, client_page), 30,
               "the mandate to arrive")
    [mandate] = gc.http.get(f"{gc.url}/_control/state").json()["organisations"][0]["mandates"]
    gc.control(f"mandates/{mandate['id']}/advance")
    gc.control(f"mandates/{mandate['id']}/advance")
    deliver_all(gc)
    wait_until(lambda: "Direct Debit active" in html(client, client_page), 30, "the mandate to become active")
    return invoice


def test_connect_mandate_collect_and_paid_out_ends_paid_in_planman_and_once_in_xeros_direct_debit_account(
        app, live_server, client, workers_env, connected, sandbox, gc):
    invoice = connect_and_mandate(live_server, client, connected, sandbox, gc)
    # The invoice: Collect by Direct Debit, then time moves on in the stand-in to paid out.
    invoice_page = f"/invoices/{invoice.id}"
    assert ">Collect by Direct Debit</button>" in html(client, invoice_page)
    post_form(client, f"{invoice_page}/direct-debit", {}, form_url=invoice_page)
    assert "Collecting — charged on" in html(client, invoice_page)
    [payment] = gc.http.get(f"{gc.url}/_control/state").json()["organisations"][0]["payments"]
    assert payment["amount"] == 10000 and payment["metadata"] == {"planman_invoice_id": str(invoice.id)}
    for _ in range(3):
        assert gc.control(f"payments/{payment['id']}/advance").status_code == 200
    deliver_all(gc)
    wait_until(lambda: 'data-status="paid_out"><strong>Paid</strong>' in html(client, invoice_page), 30,
               "the payout to arrive")
    assert db.session.get(Invoice, invoice.id).status == "paid"
    wait_until(lambda: "Recorded in Xero" in html(client, invoice_page), 30, "the payment to reach Xero")
    [xero_payment] = organisation(sandbox)["payments"]
    assert xero_payment["Reference"] == payment["id"] and float(xero_payment["Amount"]) == 100.0
    # Into the account chosen for Direct Debit, not the one for payments recorded by hand (090).
    assert xero_payment["Account"]["Code"] == "856"


def test_a_lost_answer_on_the_payment_create_ends_as_exactly_one_payment(
        app, live_server, client, workers_env, connected, sandbox, gc):
    invoice = connect_and_mandate(live_server, client, connected, sandbox, gc)
    # The stand-in makes the payment, then drops the connection instead of answering.
    gc.control("faults", drop_next_writes=1)
    invoice_page = f"/invoices/{invoice.id}"
    post_form(client, f"{invoice_page}/direct-debit", {}, form_url=invoice_page)
    # The SDK asked again with the same Idempotency-Key; GoCardless's 409 named the payment; it was fetched.
    stats = gc.http.get(f"{gc.url}/_control/stats").json()
    assert stats["lost_responses"] == 1 and stats["idempotency_conflicts"] == 1
    [payment] = gc.http.get(f"{gc.url}/_control/state").json()["organisations"][0]["payments"]
    assert "Collecting — charged on" in html(client, invoice_page)
    db.session.expire_all()
    from planman.models import Payment
    assert [p.provider_payment_id for p in db.session.scalars(sa.select(Payment))] == [payment["id"]]
