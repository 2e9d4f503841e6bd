"""The Sage stand-in on a real server under /sage, driven with requests as PlanMan's client will be:
the whole connect, a refresh, a push with the echoed X-Business checked, a lost answer that is a real
dropped connection, and the paging links followed against the API base."""
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from standins import create_app
from standins.sage.demo import GB_BUSINESS_ID

from .conftest import CLIENT_ID, CLIENT_SECRET, GB_SALES, REDIRECT_URI, authorize_params


@pytest.fixture
def base(tmp_path):
    server = make_server("127.0.0.1", 0, create_app({"DATABASE": str(tmp_path / "s.db"), "PROVIDERS": ["sage"]}),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/sage"
    server.shutdown()
    thread.join(5)


def connect(base) -> dict:
    r = requests.post(f"{base}/oauth2/auth/central", data={**authorize_params(), "business_id": GB_BUSINESS_ID,
                                                           "decision": "allow"}, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith(REDIRECT_URI)
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    r = requests.post(f"{base}/token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                             "grant_type": "authorization_code", "code": code,
                                             "redirect_uri": REDIRECT_URI}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_connect_refresh_push_and_a_lost_answer_over_http(base):
    tokens = connect(base)
    r = requests.post(f"{base}/token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                             "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                      timeout=10)
    assert r.status_code == 200 and r.json()["refresh_token"] != tokens["refresh_token"]
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {r.json()['access_token']}", "X-Business": GB_BUSINESS_ID})
    api = f"{base}/v3.1"
    created = session.post(f"{api}/contacts", json={"contact": {"name": "Acme Ltd", "contact_type_ids": ["CUSTOMER"],
                                                                "reference": "PM-1"}}, timeout=10)
    assert created.status_code == 201 and created.headers["X-Business"] == GB_BUSINESS_ID
    requests.post(f"{base}/_control/faults", json={"drop_next_writes": 1}, timeout=10)
    with pytest.raises(requests.ConnectionError):
        session.post(f"{api}/sales_invoices", json={"sales_invoice": {
            "contact_id": created.json()["id"], "date": "2026-12-01", "reference": "PM-INV-1",
            "invoice_lines": [{"description": "Bookkeeping", "ledger_account_id": GB_SALES, "unit_price": "100",
                               "tax_rate_id": "GB_STANDARD"}]}}, timeout=10)
    found = session.get(f"{api}/sales_invoices", params={"search": "PM-INV-1", "attributes": "all"}, timeout=10)
    assert [i["total_amount"] for i in found.json()["$items"]] == ["120.00"]  # the write happened


def test_next_links_are_relative_to_the_api_base(base):
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {connect(base)['access_token']}", "X-Business": GB_BUSINESS_ID})
    page = session.get(f"{base}/v3.1/ledger_accounts", params={"items_per_page": 3}, timeout=10).json()
    seen = len(page["$items"])
    while page["$next"]:
        page = session.get(f"{base}/v3.1{page['$next']}", timeout=10).json()
        seen += len(page["$items"])
    assert seen == page["$total"] == 7
