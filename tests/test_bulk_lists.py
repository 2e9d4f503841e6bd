"""Send to Xero from the client and invoice lists: a checkbox per row (tied to
the Send form by its form= attribute), "Send selected", "all not yet sent" and
"all changed since last sent"; nothing of it without a usable connection."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import BulkPush, PushJob
from tests.helpers import client, make_client, make_invoice, signup  # noqa: F401
from tests.integration_helpers import form_fields
from tests.test_push_xero import _connect


def checkbox_ids(page: str, record_type: str) -> list[int]:
    return [int(v) for v in re.findall(
        rf'<input type="checkbox" name="ids" value="(\d+)" form="bulk-send-{record_type}"', page)]


def submit(client, page: str, record_type: str, mode: str, ids=()):
    """What a browser sends: the Send form's own fields, the button pressed and the ticked boxes."""
    fields = form_fields(page, "/integrations/bulk")
    assert fields["record_type"] == record_type
    return client.post("/integrations/bulk", data={**fields, "mode": mode, "ids": [str(i) for i in ids]})


@pytest.mark.parametrize("record_type,url", [("client", "/clients/"), ("invoice", "/invoices/")])
def test_lists_offer_selection_only_when_connected(app, client, record_type, url):
    admin = signup(client)
    customer = make_client(admin, name="Acme Ltd")
    make_invoice(admin, customer)
    page = client.get(url).get_data(as_text=True)
    assert "Send selected" not in page and not checkbox_ids(page, record_type)

    _connect(admin)
    page = client.get(url).get_data(as_text=True)
    assert "Send selected to Xero" in page and "Send all changed since last sent" in page
    assert len(checkbox_ids(page, record_type)) == 1
    assert 'id="bulk-send-%s"' % record_type in page


def test_send_selected_clients_from_the_list(app, client):
    admin = signup(client)
    _connect(admin)
    chosen = [make_client(admin, name=f"Chosen {n}") for n in range(2)]
    make_client(admin, name="Left Alone")
    page = client.get("/clients/").get_data(as_text=True)
    assert set(checkbox_ids(page, "client")) >= {c.id for c in chosen}

    response = submit(client, page, "client", "selected", [c.id for c in chosen])

    bulk = db.session.scalar(sa.select(BulkPush))
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/integrations/bulk/{bulk.id}")
    assert sorted(db.session.scalars(sa.select(PushJob.record_id))) == sorted(c.id for c in chosen)


def test_send_all_not_yet_sent_invoices_from_the_list_brings_their_clients(app, client):
    admin = signup(client)
    _connect(admin)
    customer = make_client(admin, name="Acme Ltd")
    invoices = [make_invoice(admin, customer) for _ in range(3)]
    page = client.get("/invoices/").get_data(as_text=True)

    submit(client, page, "invoice", "not_sent")

    rows = db.session.execute(sa.select(PushJob.record_type, PushJob.record_id)).all()
    assert sorted(rows) == sorted([("client", customer.id)] + [("invoice", i.id) for i in invoices])


def test_nothing_selected_says_so_and_stays_on_the_list(app, client):
    admin = signup(client)
    _connect(admin)
    make_client(admin, name="Acme Ltd")
    page = client.get("/clients/").get_data(as_text=True)

    response = submit(client, page, "client", "selected")

    assert response.status_code == 302 and response.headers["Location"].startswith("/clients/")
    assert "Select at least one client to send." in client.get(response.headers["Location"]).get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(BulkPush.id))) == 0


@pytest.mark.parametrize("config_overrides", [{"FRESHBOOKS_CLIENT_ID": "fb-client", "FRESHBOOKS_CLIENT_SECRET": "fb"}])
def test_with_two_ledgers_connected_the_list_asks_where_to_send(app, client, config_overrides):
    from tests.test_freshbooks_push import connect as connect_freshbooks

    admin = signup(client)
    _connect(admin)
    customer = make_client(admin, name="Acme Ltd")
    page = client.get("/clients/").get_data(as_text=True)
    assert "Send selected to Xero" in page and 'name="provider"' in page and "<select" not in page

    connect_freshbooks(admin)
    page = client.get("/clients/").get_data(as_text=True)
    assert re.search(r'<label for="bulk-send-client-provider">Send to</label>', page)
    options = re.findall(r'<option value="(\w+)">([^<]+)</option>', page)
    assert options == [("xero", "Xero"), ("freshbooks", "FreshBooks")]

    fields = form_fields(page, "/integrations/bulk")
    response = client.post("/integrations/bulk", data={**fields, "provider": "freshbooks", "mode": "selected",
                                                       "ids": [str(customer.id)]})
    bulk = db.session.scalar(sa.select(BulkPush))
    assert response.status_code == 302 and bulk.provider == "freshbooks"
