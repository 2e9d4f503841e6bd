"""The stand-in's webhooks, received by a small endpoint that checks them as Xero's
guide says a server must (base64 HMAC-SHA256 of the raw body with the webhook
key in x-xero-signature; 200 when it matches, 401 when not): intent to
receive, signed deliveries for API writes and bookkeeper actions (pages and
control API), retries, the subscription disabled after giving up, duplicates,
reordering and holding back. Changes made through xero-python (Xero's official
SDK) are delivered too. Delivery itself is the core's (tests/standins/test_webhooks_core.py)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from xero_python.accounting import AccountingApi, Account, Invoice, Payment, Payments
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token

from standins.xero.demo import UK_TENANT_ID

from .conftest import CLIENT_ID, CLIENT_SECRET, SCOPE, Api, connect

KEY = "stand-in-test-webhook-key"
PAY_SCOPE = SCOPE + " accounting.payments"


class Endpoint:
    """A webhook receiver: verifies each delivery, answers 200 or 401 (or ``fail_next`` 503s)."""

    def __init__(self, key: str = KEY):
        self.key, self.received, self.refused, self.fail_next = key, [], [], 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = base64.b64encode(hmac.new(endpoint.key.encode(), raw, hashlib.sha256).digest()).decode()
                if not hmac.compare_digest(expected, self.headers.get("x-xero-signature", "")):
                    endpoint.refused.append(raw)
                    status = 401
                elif endpoint.fail_next:
                    endpoint.fail_next -= 1
                    status = 503
                else:
                    endpoint.received.append(json.loads(raw))
                    status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/xero"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[tuple[str, str, str]]:
        return [(e["eventCategory"], e["eventType"], e["resourceId"]) for d in self.received for e in d["events"]]

    def deliveries(self) -> list[dict]:
        return [d for d in self.received if d["events"]]


@pytest.fixture
def endpoint():
    receiver = Endpoint()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def api(xero):
    return Api(xero, connect(xero, scope=PAY_SCOPE)["access_token"])


@pytest.fixture
def subscribed(xero, endpoint):
    response = xero.post("/_control/webhooks/subscription", json={"url": endpoint.url, "key": KEY})
    assert response.get_json()["status"] == "active", response.get_json()
    endpoint.received.clear()  # the intent-to-receive probes
    return endpoint


def deliver(xero) -> int:
    """Send everything queued now (a server's own thread does it every 0.2 s); the attempts made."""
    return len(xero.post("/_control/webhooks/flush").get_json()["attempts"])


def test_intent_to_receive_sends_signed_and_unsigned_probes_and_turns_on(xero, endpoint):
    state = xero.post("/_control/webhooks/subscription", json={"url": endpoint.url, "key": KEY}).get_json()
    assert state["status"] == "active" and state["key_set"] and "key" not in state
    assert [(p["signed"], p["expected"], p["answered"]) for p in state["intent"]] == \
        [(True, 200, 200), (False, 401, 401), (True, 200, 200), (False, 401, 401)]
    assert len(endpoint.received) == 2 and all(d["events"] == [] for d in endpoint.received)
    assert len(endpoint.refused) == 2


def test_an_endpoint_that_accepts_everything_fails_intent_to_receive_and_gets_nothing(xero, api):
    lax = Endpoint()
    lax.key = "whatever"  # checks nothing: answers 401 to everything signed with KEY, as a wrong key would
    state = xero.post("/_control/webhooks/subscription", json={"url": lax.url, "key": KEY}).get_json()
    assert state["status"] == "intent_failed"
    assert "correctly signed probe was answered 401, not 200" in state["reason"]
    api.contact("Acme Ltd")
    assert deliver(xero) == 0 and lax.received == []
    lax.server.shutdown()


def test_api_writes_and_bookkeeper_actions_are_delivered_signed(xero, api, subscribed):
    contact = api.contact("Acme Ltd")
    invoice = api.invoice(contact["ContactID"])
    assert deliver(xero) == 3  # one delivery per event: contact created, invoice created, contact now a customer
    assert subscribed.events()[:2] == [("CONTACT", "CREATE", contact["ContactID"]),
                                       ("INVOICE", "CREATE", invoice["InvoiceID"])]
    delivery = subscribed.deliveries()[0]
    event = delivery["events"][0]
    assert event["tenantId"] == UK_TENANT_ID and event["tenantType"] == "ORGANISATION"
    assert event["resourceUrl"].endswith(f"/Contacts/{contact['ContactID']}")
    assert delivery["firstEventSequence"] == delivery["lastEventSequence"] and delivery["entropy"]

    subscribed.received.clear()
    assert xero.post(f"/_control/invoices/{invoice['InvoiceID']}/status", json={"status": "AUTHORISED"}).status_code == 200
    paid = xero.post(f"/_control/invoices/{invoice['InvoiceID']}/payments", json={"reference": "BACS 1"})
    assert paid.status_code == 200 and paid.get_json()["Amount"] == 120.0
    assert xero.post(f"/_control/contacts/{contact['ContactID']}/rename", json={"name": "Acme Holdings"}).status_code == 200
    assert xero.post(f"/_control/contacts/{contact['ContactID']}/archive").status_code == 200
    deliver(xero)
    assert subscribed.events() == [("INVOICE", "UPDATE", invoice["InvoiceID"])] * 2 + \
        [("CONTACT", "UPDATE", contact["ContactID"])] * 2
    after = api.get(f"/Invoices/{invoice['InvoiceID']}").get_json()["Invoices"][0]
    assert after["Status"] == "PAID" and after["Payments"][0]["Reference"] == "BACS 1"
    assert after["Payments"][0]["Date"].startswith("/Date(")  # as Xero writes JSON dates

    subscribed.received.clear()
    removed = xero.post(f"/_control/payments/{paid.get_json()['PaymentID']}/delete")
    assert removed.status_code == 200
    deliver(xero)
    assert subscribed.events() == [("INVOICE", "UPDATE", invoice["InvoiceID"])]
    assert api.get(f"/Invoices/{invoice['InvoiceID']}").get_json()["Invoices"][0]["Status"] == "AUTHORISED"


def test_the_organisation_page_applies_a_bookkeepers_actions(xero, api, subscribed):
    invoice = api.invoice(api.contact("Acme Ltd")["ContactID"])
    page = f"/orgs/{UK_TENANT_ID}"
    assert f'id="approve-{invoice["InvoiceID"]}"' in xero.get(page).get_data(as_text=True)
    approved = xero.post(f"{page}/invoices/{invoice['InvoiceID']}/status", data={"status": "AUTHORISED"})
    assert approved.status_code == 302
    html = xero.get(page).get_data(as_text=True)
    assert f'id="pay-{invoice["InvoiceID"]}"' in html and "is now AUTHORISED" not in html
    refused = xero.post(f"{page}/invoices/{invoice['InvoiceID']}/pay", data={"amount": "500.00"},
                        follow_redirects=True)
    assert "exceeds the amount outstanding" in refused.get_data(as_text=True)
    paid = xero.post(f"{page}/invoices/{invoice['InvoiceID']}/pay", data={"amount": "120.00", "reference": "Cheque 7"},
                     follow_redirects=True)
    assert "Payment of 120.00 recorded." in paid.get_data(as_text=True)
    deliver(xero)
    assert [e[:2] for e in subscribed.events()][-2:] == [("INVOICE", "UPDATE")] * 2
    html = xero.get(page).get_data(as_text=True)
    assert "Webhooks" in html and "delivered" in html and "active" in html


def test_a_failed_delivery_is_retried_and_after_giving_up_the_subscription_is_off(xero, api, subscribed):
    assert xero.get("/_control/webhooks").get_json()["max_attempts"] == 11  # Xero's day of retries
    subscribed.fail_next = 2
    api.contact("Acme Ltd")
    assert [deliver(xero) for _ in range(3)] == [1, 1, 1]  # 503, 503, then 200
    assert len(subscribed.deliveries()) == 1
    [delivery] = xero.get("/_control/webhooks/deliveries").get_json()
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 3)

    xero.post("/_control/webhooks", json={"max_attempts": 1})
    subscribed.fail_next = 1
    api.contact("Bertha Ltd")
    deliver(xero)
    state = xero.get("/_control/webhooks/subscription").get_json()
    assert state["status"] == "disabled" and "turned the webhook off" in state["reason"]
    api.contact("Carla Ltd")
    assert deliver(xero) == 0  # off: nothing recorded, nothing sent
    assert xero.post("/_control/webhooks/intent").get_json()["status"] == "active"
    api.contact("Dora Ltd")
    assert deliver(xero) == 1


def test_duplicates_reordering_and_holding_back(xero, api, subscribed):
    xero.post("/_control/webhooks", json={"duplicate_next": 1})
    api.contact("Acme Ltd")
    deliver(xero)
    first, again = subscribed.deliveries()
    assert first == again  # the same delivery twice, as Xero's retries can

    subscribed.received.clear()
    xero.post("/_control/webhooks", json={"paused": True})
    second = api.contact("Bertha Ltd")
    third = api.contact("Carla Ltd")
    assert xero.post("/_control/webhooks/flush", json={"order": "reverse"}).status_code == 200
    assert [d["events"][0]["resourceId"] for d in subscribed.deliveries()] == [third["ContactID"], second["ContactID"]]

    subscribed.received.clear()
    api.contact("Dora Ltd")  # still paused: held back
    assert xero.post("/_control/webhooks/drop").get_json() == {"dropped": 1}  # Xero never sends it
    xero.post("/_control/webhooks", json={"paused": False})
    assert deliver(xero) == 0 and subscribed.received == []


def test_a_payment_made_through_xero_python_is_delivered(xero, subscribed, live_url):
    token = connect(xero, scope=PAY_SCOPE)
    client = ApiClient(Configuration(oauth2_token=OAuth2Token(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)),
                       pool_threads=1, oauth2_token_getter=lambda: token, oauth2_token_saver=token.update)
    accounting = AccountingApi(client, base_url=f"{live_url}/api.xro/2.0")
    api = Api(xero, token["access_token"])
    invoice = api.invoice(api.contact("Acme Ltd")["ContactID"], Status="AUTHORISED")
    deliver(xero)
    subscribed.received.clear()
    accounting.create_payments(UK_TENANT_ID, Payments(payments=[Payment(
        invoice=Invoice(invoice_id=invoice["InvoiceID"]), account=Account(code="090"), amount=120.0,
        date=date(2026, 3, 2), reference="SDK payment")]))
    deliver(xero)
    assert subscribed.events() == [("INVOICE", "UPDATE", invoice["InvoiceID"])]
    assert xero.get("/_control/violations").get_json() == []


def test_bad_settings_are_refused(xero):
    assert xero.post("/_control/webhooks/subscription", json={"url": "ftp://x", "key": "k"}).status_code == 400
    assert xero.post("/_control/webhooks/subscription", json={"url": "http://127.0.0.1:1/"}).status_code == 400
    assert xero.post("/_control/contacts/00000000-0000-4000-8000-000000000000/rename",
                     json={"name": "X"}).status_code == 404
