"""Request size: a post larger than MAX_CONTENT_LENGTH is refused with a clear
413 page before it is read, logged in or not; the largest legitimate form (a
long invoice) still fits."""
from __future__ import annotations

import sqlalchemy as sa

from planman.extensions import db
from planman.models import Invoice
from tests.conftest import csrf_token_from
from tests.helpers import make_client, signup


def test_an_oversized_post_to_login_is_refused_before_log_in(client):
    body = b"email=a%40example.com&password=" + b"x" * (6 * 1024 * 1024)
    response = client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "That was too much to send at once" in html and "at most 5 MB" in html
    assert "Traceback" not in html


def test_an_oversized_multipart_field_is_refused(client):
    response = client.post("/login", data={"email": "a@example.com", "password": "x" * 200_000},
                           content_type="multipart/form-data")
    assert response.status_code == 413


def test_an_invoice_of_200_long_accented_lines_fits(client):
    user = signup(client)
    customer = make_client(user, name="Long Lines Ltd")
    token = csrf_token_from(client.get("/invoices/new").get_data(as_text=True))
    data = {"csrf_token": token, "number": "BIG-1", "suggested_number": "BIG-1", "client_id": str(customer.id),
            "issue_date": "2026-03-01", "due_date": "", "currency": "GBP", "reference": "",
            "amounts_are": "exclusive", "status": "draft"}
    for i in range(200):
        data.update({f"lines-{i}-description": f"{i} " + "é" * 3990, f"lines-{i}-quantity": "1",
                     f"lines-{i}-unit_price": "1", f"lines-{i}-discount_percent": "", f"lines-{i}-tax_rate_id": ""})
    response = client.post("/invoices/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    invoice = db.session.scalar(sa.select(Invoice).where(Invoice.firm_id == user.firm_id))
    assert len(invoice.lines) == 200 and invoice.lines[199].description.endswith("é" * 3990)
