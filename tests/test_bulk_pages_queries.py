"""The pages the load benchmark measures (benchmarks/pages_load.py) ask the
database a fixed number of questions however much data there is: paginated
lists, no query per row or per line (N+1)."""
from __future__ import annotations

from contextlib import contextmanager
import itertools
import re

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import ExternalLink
from tests.helpers import client, make_client, make_invoice, post_form, signup, tax_rate  # noqa: F401
from tests.test_push_xero import TENANT, _connect


@contextmanager
def counting():
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def queries(client, url: str) -> int:
    client.get(url)  # warm: first-request work is not what is measured
    with counting() as statements:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(statements)


_client_numbers = itertools.count()  # names stay unique within a firm across seed() calls


def seed(admin, clients: int, lines: int):
    """``clients`` clients with two invoices each, every invoice with ``lines`` taxed lines."""
    vat = tax_rate(admin, "VAT 20%")
    made = []
    for _ in range(clients):
        customer = make_client(admin, name=f"Client {next(_client_numbers):03d}")
        for _ in range(2):
            made.append(make_invoice(admin, customer, lines=[(1, "10.00", vat)] * lines))
    return made


def link(admin, record_type, record_id, external_id):
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type=record_type,
                                record_id=record_id, external_id=external_id, remote_status="DRAFT"))
    db.session.commit()


@pytest.mark.parametrize("path", ["/clients/", "/invoices/"])
def test_list_pages_ask_the_same_number_of_questions_for_3_or_60_rows(app, client, path):
    admin = signup(client)
    seed(admin, clients=3, lines=1)
    few = queries(client, path)
    assert few > 0  # the counter sees the page's queries
    seed(admin, clients=27, lines=3)
    assert queries(client, path) == few, few


def test_invoice_page_and_its_panel_do_not_query_per_line(app, client):
    admin = signup(client)
    _connect(admin)
    [short, _] = seed(admin, clients=1, lines=1)
    [long, _] = seed(admin, clients=1, lines=12)
    for invoice in (short, long):
        link(admin, "client", invoice.client_id, f"00000000-0000-4000-8000-{invoice.client_id:012d}")
        link(admin, "invoice", invoice.id, f"00000000-0000-4000-9000-{invoice.id:012d}")
    for path in ("/invoices/{}", "/integrations/xero/invoice/{}/panel"):
        assert queries(client, path.format(long.id)) == queries(client, path.format(short.id)), path


def test_a_record_page_reads_the_firms_connections_once(app, client):
    """Every provider's tab and the payment options ask for their connection: one query serves them all."""
    admin = signup(client)
    _connect(admin)
    [invoice, _] = seed(admin, clients=1, lines=1)
    url = f"/invoices/{invoice.id}"
    client.get(url)
    with counting() as statements:
        assert client.get(url).status_code == 200
    assert len([s for s in statements if re.search(r"FROM connection\s+WHERE", s)]) == 1


def test_a_connection_made_in_a_request_is_seen_by_the_rest_of_it(app, client):
    from planman.integrations.links import connection_for

    admin = signup(client)
    with app.test_request_context("/integrations/xero/callback"):
        assert connection_for(admin.firm_id, "xero") is None
        _connect(admin)  # as the connect callback does, in the same request
        assert connection_for(admin.firm_id, "xero").tenant_id == TENANT
        db.session.delete(connection_for(admin.firm_id, "xero"))
        db.session.commit()
        assert connection_for(admin.firm_id, "xero") is None


def test_invoice_page_does_not_query_per_payment(app, client):
    """Payments, who recorded them, their ledger links and the payment link come with the invoice."""
    admin = signup(client)
    _connect(admin)
    vat = tax_rate(admin, "VAT 20%")
    customer = make_client(admin, name="Paying Client")
    one, three = (make_invoice(admin, customer, lines=[(1, "100.00", vat)], status="sent") for _ in range(2))
    for invoice, payments in ((one, 1), (three, 3)):
        link(admin, "invoice", invoice.id, f"00000000-0000-4000-9000-{invoice.id:012d}")
        for n in range(payments):
            assert post_form(client, f"/invoices/{invoice.id}/payments/new", {
                "amount": "10.00", "paid_on": "2026-02-01", "method": "bank_transfer", "reference": f"BACS {n}",
                "note": ""}).status_code == 302
        assert post_form(client, f"/invoices/{invoice.id}/payment-link", {},
                         form_url=f"/invoices/{invoice.id}").status_code == 302
    page = client.get(f"/invoices/{three.id}").get_data(as_text=True)
    assert all(f"BACS {n}" in page for n in range(3)) and "/pay/" in page
    assert queries(client, f"/invoices/{three.id}") == queries(client, f"/invoices/{one.id}")
