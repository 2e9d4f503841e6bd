"""Helpers for HTTP tests of the core: sign up, log in, post forms with their CSRF token.

``signup(client)`` makes a firm and leaves ``client`` logged in as its admin;
``make_client``/``make_invoice`` add records straight to the database."""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from planman.extensions import db
from planman.models import Client, Invoice, InvoiceLine, TaxRate, User
from tests.conftest import csrf_token_from

PASSWORD = "correct horse battery"


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own app context, as in production.

    The ``app`` fixture keeps one app context pushed for the whole test and Flask
    reuses it for requests, so ``flask.g`` (Flask-Login's cached user, Flask-WTF's
    CSRF token) and the database session would leak from one request, or one
    client, to the next."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        # The test's own session may hold rows the request just changed.
        db.session.expire_all()
        return response


@pytest.fixture
def client(app):
    """Overrides conftest's ``client`` when imported into a test module."""
    app.test_client_class = IsolatedClient
    return app.test_client()


def new_client(app):
    """Another browser: its own cookies, same isolation."""
    app.test_client_class = IsolatedClient
    return app.test_client()
_counter = itertools.count(1)


def post_form(client, url: str, data: dict, *, form_url: str | None = None, **kwargs):
    """GET ``form_url`` (default ``url``) for a CSRF token, then POST ``data`` with it."""
    page = client.get(form_url or url)
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data}, **kwargs)


def htmx_post(client, url: str, data: dict, *, token_from: str = "/clients/", **kwargs):
    """POST as HTMX does: the CSRF token in the X-CSRFToken header (from base.html's hx-headers)."""
    token = csrf_token_from(client.get(token_from).get_data(as_text=True))
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    return client.post(url, data=data, headers=headers, **kwargs)


def signup(client, *, email: str | None = None, firm_name: str | None = None, name: str = "Ada Admin",
           password: str = PASSWORD, currency: str = "GBP") -> User:
    """Sign up a new firm through the form; ``client`` ends up logged in as its admin."""
    n = next(_counter)
    email = email or f"admin{n}@example.com"
    response = post_form(client, "/signup", {
        "firm_name": firm_name or f"Firm {n}", "currency": currency, "name": name,
        "email": email, "password": password, "confirm": password,
    })
    assert response.status_code == 302, response.get_data(as_text=True)
    return db.session.scalar(sa.select(User).where(User.email == email.lower()))


def login(client, email: str, password: str = PASSWORD):
    return post_form(client, "/login", {"email": email, "password": password}, form_url="/login")


def logout(client):
    return post_form(client, "/logout", {}, form_url="/clients/")


def make_client(user: User, **fields) -> Client:
    n = next(_counter)
    record = Client(firm_id=user.firm_id, name=fields.pop("name", f"Client {n}"), **fields)
    db.session.add(record)
    db.session.commit()
    return record


def tax_rate(user: User, name: str) -> TaxRate:
    return db.session.scalar(sa.select(TaxRate).where(TaxRate.firm_id == user.firm_id, TaxRate.name == name))


def make_invoice(user: User, client: Client, *, lines=((1, "100.00", None),), status: str = "draft",
                 number: str | None = None, amounts_are: str = "exclusive") -> Invoice:
    """An invoice with ``lines`` of (quantity, unit price, TaxRate or None)."""
    n = next(_counter)
    invoice = Invoice(
        firm_id=user.firm_id, client_id=client.id, number=number or f"T-{n:05d}", issue_date=date(2026, 1, 5),
        due_date=date(2026, 2, 4), currency="GBP", status=status, amounts_are=amounts_are,
    )
    invoice.lines = [
        InvoiceLine(position=i, description=f"Line {i + 1}", quantity=Decimal(str(q)), unit_price=Decimal(price),
                    tax_rate_id=rate.id if rate else None)
        for i, (q, price, rate) in enumerate(lines)
    ]
    db.session.add(invoice)
    db.session.commit()
    return invoice


@contextmanager
def committed_rows(*columns, query: sa.Select | None = None):
    """Collects what a reader could see of ``columns`` (every row of their
    table), or of what ``query`` selects, at each commit that changed it, as a
    set of tuples per commit. Catches what a Core UPDATE writes too, which the
    ORM's flush does not list."""
    seen: list[set[tuple]] = []
    statement = query if query is not None else sa.select(*columns)

    def snapshot(session):
        if session.in_nested_transaction():
            return  # a savepoint's release: nobody else sees it yet
        rows = set(map(tuple, session.execute(statement).all()))  # autoflushes first
        if not seen or seen[-1] != rows:
            seen.append(rows)

    sa.event.listen(db.session, "before_commit", snapshot)
    try:
        yield seen
    finally:
        sa.event.remove(db.session, "before_commit", snapshot)
