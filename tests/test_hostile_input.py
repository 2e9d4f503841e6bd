"""Hostile input on every form: long, empty, unicode, control characters and
numeric edge values (NaN, Infinity, 1e309, -0, huge or over-precise decimals).

For each submission: never a server error; a refused form changes nothing in
the database and says why beside the field; an accepted form stores exactly
what was typed (trimmed), and what it stored would pass Xero's own rules (the
official spec's lengths and types, no control characters) before any push."""
from __future__ import annotations

import itertools
import re
from decimal import Decimal

import pytest
import requests
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from planman.clients.forms import ClientForm
from planman.extensions import db
from planman.integrations.xero.mapping import contact_payload, invoice_payload
from planman.models import Client, Connection, Firm, Invoice, TaxRate, User
from tests.helpers import client, make_client, new_client, post_form, signup, tax_rate  # noqa: F401
from tests.security.conftest import connect_directly, dump_database
from tests.xero_spec import ACCOUNTING_BASE, spec_violations

PROPS = settings(max_examples=30, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
TENANT = "8a3b2c1d-0000-4000-8000-000000000001"
_unique = itertools.count(1)

EDGE_TEXT = ["", " ", "\x00", "a\x00b", "tab\there", "two\nlines", "\r\n", "\x7f", "\x85x", "x\x9fy", "\u2028",
             "\u202eevil", "\ufeffbom", "😀" * 60, "Ωmega ünïcödé 中文", "<script>alert(1)</script>", "' OR 1=1 --",
             "{{7*7}}", "%s%n", "a" * 50, "a" * 51, "a" * 255, "a" * 256, "é" * 500, "é" * 501, "x" * 10001]
text = st.one_of(st.sampled_from(EDGE_TEXT), st.text(max_size=40), st.text(min_size=45, max_size=60),
                 st.integers(0, 11000).map(lambda n: "ü" * n))
NUMBERS = ["NaN", "nan", "sNaN", "-NaN", "Infinity", "-Infinity", "inf", "1e309", "-1e309", "1e999999999",
           "1e-999999999", "9e99999999999999999999", "-0", "0", "-0.0000", "0.00001", "1E+2", "1e30", "1e-30",
           "1" * 60, "0.12345", "999999999.9999", "1000000000", "1000000000.0001", "-1000000000", "1,000", "1_000",
           "0x1A", " 7 ", "٣", "", " ", "12.", ".5", "+5", "--1", "1e", "Infinityx"]
number = st.one_of(st.sampled_from(NUMBERS), st.decimals(allow_nan=True, allow_infinity=True).map(str),
                   st.floats().map(repr), st.integers(-10**20, 10**20).map(str))
anything = st.one_of(text, number)


@pytest.fixture
def user(client):
    return signup(client)


@pytest.fixture
def acme(user):
    return make_client(user, name="Acme Ltd")


def refused_cleanly(response, before, field_id):
    """A refusal: nothing saved, the form shown again with a message beside ``field_id``."""
    html = response.get_data(as_text=True)
    assert dump_database() == before, "a refused form changed the database"
    assert f'id="{field_id}-error"' in html or 'class="error"' in html, f"no message for {field_id}"


def assert_xero_accepts(method_path: str, body: dict):
    request = requests.Request(method_path.split()[0], ACCOUNTING_BASE + method_path.split()[1], json=body,
                               headers={"xero-tenant-id": TENANT, "Accept": "application/json"}).prepare()
    assert spec_violations(request) == []


def assert_plain(value: str):
    assert not CONTROL.search(value), f"control character stored: {value!r}"


# -- clients -----------------------------------------------------------------------

def client_data(**changes):
    return {"name": f"Client {next(_unique)}", "email": "", "payment_terms_days": "30",
            **{f: "" for f in ClientForm.TEXT_FIELDS if f not in ("name", "email")}, **changes}


@PROPS
@given(field=st.sampled_from(ClientForm.TEXT_FIELDS + ("payment_terms_days",)), value=anything, edit=st.booleans())
def test_client_form(client, user, acme, field, value, edit):
    url = f"/clients/{acme.id}/edit" if edit else "/clients/new"
    before = dump_database()
    response = post_form(client, url, client_data(**{field: value}))
    assert response.status_code in (302, 422), response.status_code
    if response.status_code == 422:
        return refused_cleanly(response, before, field)
    saved = db.session.get(Client, int(response.headers["Location"].rstrip("/").split("/")[-1]))
    stored = getattr(saved, field)
    if field == "payment_terms_days":
        assert 0 <= stored <= 365 and Decimal(value.strip()) == stored
        return
    assert stored == value.strip()  # nothing truncated or altered
    if field != "notes":  # the one multi-line field keeps tabs and line breaks
        assert_plain(stored)
    if field == "email" and stored:
        assert stored.isascii() and "@" in stored  # Xero: no umlauts in EmailAddress
    assert_xero_accepts("PUT /Contacts?summarizeErrors=false", {"Contacts": [contact_payload(saved)]})


@pytest.mark.parametrize("field, xero_max", [
    ("name", 255), ("first_name", 255), ("last_name", 255), ("email", 255), ("phone", 50),
    ("address_line1", 500), ("address_line2", 500), ("city", 255), ("region", 255), ("postcode", 50),
    ("country", 50), ("tax_number", 50),
])
def test_client_fields_over_xeros_limits_are_refused_beside_the_field(client, user, field, xero_max):
    value = ("a" * (xero_max - 11) + "@example.com") if field == "email" else "a" * (xero_max + 1)
    before = dump_database()
    response = post_form(client, "/clients/new", client_data(**{field: value}))
    assert response.status_code == 422
    refused_cleanly(response, before, field)
    assert f'id="{field}-error"' in response.get_data(as_text=True)


@pytest.mark.parametrize("email", ["jürgen@example.com", "ann@exämple.com", "no-at-sign", "a@b", "two@@example.com"])
def test_emails_xero_would_refuse_are_refused_beside_the_field(client, user, email):
    before = dump_database()
    response = post_form(client, "/clients/new", client_data(email=email))
    assert response.status_code == 422
    refused_cleanly(response, before, "email")
    assert 'id="email-error"' in response.get_data(as_text=True)


def test_xero_limits_used_above_are_the_specs():
    import yaml

    from tests.xero_spec import spec_path

    with open(spec_path()) as f:
        schemas = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["components"]["schemas"]
    assert {k: schemas["Contact"]["properties"][k]["maxLength"] for k in
            ("Name", "FirstName", "LastName", "EmailAddress", "TaxNumber")} == {
        "Name": 255, "FirstName": 255, "LastName": 255, "EmailAddress": 255, "TaxNumber": 50}
    assert {k: schemas["Address"]["properties"][k]["maxLength"] for k in
            ("AddressLine1", "AddressLine2", "City", "Region", "PostalCode", "Country")} == {
        "AddressLine1": 500, "AddressLine2": 500, "City": 255, "Region": 255, "PostalCode": 50, "Country": 50}
    assert schemas["Phone"]["properties"]["PhoneNumber"]["maxLength"] == 50
    assert schemas["Invoice"]["properties"]["InvoiceNumber"]["maxLength"] == 255


# -- invoices and lines -----------------------------------------------------------

INVOICE_FIELDS = ("number", "client_id", "issue_date", "due_date", "currency", "reference", "amounts_are", "status")
LINE_FIELDS = ("description", "quantity", "unit_price", "discount_percent", "tax_rate_id", "line_id")


def invoice_data(acme, line_id="", **changes):
    return {"number": f"H-{next(_unique)}", "suggested_number": "", "client_id": str(acme.id),
            "issue_date": "2026-01-05", "due_date": "", "currency": "GBP", "reference": "", "amounts_are": "exclusive",
            "status": "draft", "lines-0-line_id": line_id, "lines-0-description": "Work", "lines-0-quantity": "1",
            "lines-0-unit_price": "10", "lines-0-discount_percent": "", "lines-0-tax_rate_id": "", **changes}


@pytest.fixture
def existing_invoice(client, user, acme):
    response = post_form(client, "/invoices/new", invoice_data(acme))
    assert response.status_code == 302
    return db.session.scalar(sa.select(Invoice).where(Invoice.firm_id == user.firm_id))


@PROPS
@given(field=st.sampled_from(INVOICE_FIELDS + tuple(f"lines-0-{f}" for f in LINE_FIELDS)), value=anything,
       edit=st.booleans(), extra_lines=st.integers(0, 2))
def test_invoice_form(client, user, acme, existing_invoice, field, value, edit, extra_lines):
    line_id = str(existing_invoice.lines[0].id) if edit else ""
    data = invoice_data(acme, line_id=line_id, **{field: value})
    for i in range(1, extra_lines + 1):
        data.update({f"lines-{i}-description": f"Extra {i}", f"lines-{i}-quantity": "2",
                     f"lines-{i}-unit_price": "0.05", f"lines-{i}-tax_rate_id": str(tax_rate(user, "VAT 20%").id)})
    url = f"/invoices/{existing_invoice.id}/edit" if edit else "/invoices/new"
    before = dump_database()
    response = post_form(client, url, data)
    assert response.status_code in (302, 404, 422), response.status_code
    if response.status_code == 404:  # a line id that is not this invoice's
        assert field == "lines-0-line_id" and dump_database() == before
        return
    if response.status_code == 422:
        return refused_cleanly(response, before, field)
    saved = db.session.get(Invoice, int(response.headers["Location"].rstrip("/").split("/")[-1]))
    assert len(saved.lines) == 1 + extra_lines
    totals = saved.totals
    assert totals.total == totals.subtotal + totals.tax or saved.amounts_are == "inclusive"
    for line in saved.lines:
        assert line.quantity != 0 and abs(line.quantity) <= 10**9 and abs(line.unit_price) <= 10**9
    assert_plain(saved.number)
    assert_plain(saved.reference)
    rates = db.session.scalars(sa.select(TaxRate).where(TaxRate.firm_id == user.firm_id))
    settings_ = {"sales_account_code": "200", "tax_types": {str(r.id): "OUTPUT2" for r in rates},
                 "no_tax_type": "NONE", "invoice_status": "DRAFT"}
    payload = invoice_payload(saved, contact_id="11111111-1111-4111-8111-111111111111", settings=settings_,
                              url="http://planman.test/invoices/1")
    assert_xero_accepts("PUT /Invoices?summarizeErrors=false", {"Invoices": [payload]})


def test_an_invoice_number_over_xeros_limit_is_refused_beside_the_field(client, user, acme):
    before = dump_database()
    response = post_form(client, "/invoices/new", invoice_data(acme, number="N" * 256))
    assert response.status_code == 422
    refused_cleanly(response, before, "number")
    assert 'id="number-error"' in response.get_data(as_text=True)


def test_more_lines_than_the_form_takes_are_refused_not_cut(client, user, acme):
    data = invoice_data(acme)
    for i in range(1, 501):
        data.update({f"lines-{i}-description": f"Line {i}", f"lines-{i}-quantity": "1", f"lines-{i}-unit_price": "1"})
    before = dump_database()
    response = post_form(client, "/invoices/new", data)
    assert response.status_code == 422 and dump_database() == before


@PROPS
@given(values=st.dictionaries(st.sampled_from(["lines-0-quantity", "lines-0-unit_price", "lines-0-discount_percent",
                                               "lines-1-quantity", "lines-1-unit_price", "amounts_are",
                                               "remove_line", "lines-0-tax_rate_id"]), anything, max_size=5))
def test_live_totals_never_fail(client, user, values):
    from tests.helpers import htmx_post

    response = htmx_post(client, "/invoices/totals", values)
    assert response.status_code == 200


@PROPS
@given(q=anything, page=anything, status=anything)
def test_lists_and_search_never_fail(client, user, acme, q, page, status):
    assert client.get("/clients/", query_string={"q": q, "page": page}).status_code == 200
    assert client.get("/clients/", query_string={"q": q}, headers={"HX-Request": "true"}).status_code == 200
    assert client.get("/invoices/", query_string={"status": status, "page": page}).status_code == 200


# -- sign-up, colleagues, tax rates ------------------------------------------------

SIGNUP_FIELDS = ("firm_name", "currency", "name", "email", "password", "confirm")


@PROPS
@given(field=st.sampled_from(SIGNUP_FIELDS), value=anything)
def test_signup_form(app, field, value):
    browser = new_client(app)
    n = next(_unique)
    data = {"firm_name": f"Firm {n}", "currency": "GBP", "name": "Ada", "email": f"h{n}@example.com",
            "password": "long enough pw", "confirm": "long enough pw", field: value}
    if field == "password":
        data["confirm"] = value
    before = dump_database()
    response = post_form(browser, "/signup", data)
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 400:
        return refused_cleanly(response, before, field)
    firm = db.session.scalar(sa.select(Firm).order_by(Firm.id.desc()))
    assert firm.name == data["firm_name"].strip() and len(firm.name) <= 255 and firm.currency == data["currency"]
    assert_plain(firm.name)
    assert db.session.scalar(sa.select(sa.func.count(User.id)).where(User.firm_id == firm.id)) == 1


@PROPS
@given(email=anything, password=anything)
def test_login_form(app, email, password):
    browser = new_client(app)
    before = dump_database()
    response = post_form(browser, "/login", {"email": email, "password": password})
    assert response.status_code in (400, 429), response.status_code  # nobody has these; guessing gets throttled
    assert dump_database() == before


@PROPS
@given(field=st.sampled_from(("name", "email", "is_admin", "access", "password")), value=anything)
def test_new_colleague_form(client, user, field, value):
    n = next(_unique)
    data = {"name": "Col", "email": f"c{n}@example.com", "access": "password", "password": "long enough pw",
            field: value}
    before = dump_database()
    response = post_form(client, "/setup/users/new", data)
    assert response.status_code in (200, 302, 422), response.status_code
    if response.status_code == 422:
        return refused_cleanly(response, before, field)
    added = db.session.scalar(sa.select(User).order_by(User.id.desc()))
    assert added.firm_id == user.firm_id and len(added.name) <= 120 and len(added.email) <= 255
    assert_plain(added.name)


@PROPS
@given(field=st.sampled_from(("name", "percent")), value=anything, edit=st.booleans())
def test_tax_rate_form(client, user, field, value, edit):
    rate = db.session.scalar(sa.select(TaxRate).where(TaxRate.firm_id == user.firm_id).order_by(TaxRate.id))
    url = f"/setup/tax-rates/{rate.id}/edit" if edit else "/setup/tax-rates/new"
    data = {"name": f"Rate {next(_unique)}", "percent": "12.5", field: value}
    before = dump_database()
    response = post_form(client, url, data)
    assert response.status_code in (302, 422), response.status_code
    if response.status_code == 422:
        return refused_cleanly(response, before, field)
    saved = db.session.scalar(sa.select(TaxRate).where(TaxRate.firm_id == user.firm_id,
                                                       TaxRate.name == data["name"].strip()))
    assert saved is not None and 0 <= saved.percent <= 100 and saved.percent == Decimal(data["percent"].strip())
    assert_plain(saved.name)


# -- integration settings ------------------------------------------------------------

@PROPS
@given(field=st.sampled_from(("sales_account_code", "no_tax_type", "invoice_status", "tax_type")), value=anything)
def test_integration_settings_form(client, user, field, value):
    connection = db.session.scalar(sa.select(Connection).where(Connection.firm_id == user.firm_id)) \
        or connect_directly(user, TENANT)
    rate = tax_rate(user, "VAT 20%")
    name = f"tax_type_{rate.id}" if field == "tax_type" else field
    data = {"sales_account_code": "200", "no_tax_type": "NONE", "invoice_status": "DRAFT",
            **{f"tax_type_{r.id}": "OUTPUT2" for r in db.session.scalars(
                sa.select(TaxRate).where(TaxRate.firm_id == user.firm_id))}, name: value}
    before = dump_database()
    response = post_form(client, "/integrations/xero/settings", data, form_url="/integrations/xero")
    assert response.status_code in (302, 422), response.status_code
    if response.status_code == 422:
        return refused_cleanly(response, before, name)
    db.session.refresh(connection)
    chosen = connection.settings
    assert chosen["sales_account_code"] == "200" and chosen["no_tax_type"] in ("NONE", "OUTPUT2")
    assert chosen["invoice_status"] in ("DRAFT", "SUBMITTED", "AUTHORISED")
    assert set(chosen["tax_types"].values()) <= {"NONE", "OUTPUT2"}


# -- bulk sends, invitations ---------------------------------------------------------

@PROPS
@given(record_type=st.one_of(st.sampled_from(["client", "invoice"]), text), mode=st.one_of(
    st.sampled_from(["selected", "not_sent", "changed"]), text),
    ids=st.lists(st.one_of(number, st.integers(-2**70, 2**70).map(str)), max_size=4))
@example(record_type="client", mode="selected", ids=[str(2**70)])
@example(record_type="invoice", mode="selected", ids=["-0", "1e3"])
def test_bulk_send_form(client, user, acme, record_type, mode, ids):
    if db.session.scalar(sa.select(Connection).where(Connection.firm_id == user.firm_id)) is None:
        connect_directly(user, TENANT)
    before = dump_database()
    response = post_form(client, "/integrations/bulk", {"record_type": record_type, "mode": mode, "ids": ids,
                                                       "provider": "xero"}, form_url="/clients/")
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 400:
        assert dump_database() == before
    from planman.models import PushJob

    pushed = db.session.scalars(sa.select(PushJob)).all()
    assert all(p.firm_id == user.firm_id and (p.record_type, p.record_id) in {("client", acme.id)} | {
        ("invoice", i) for i in db.session.scalars(sa.select(Invoice.id).where(Invoice.firm_id == user.firm_id))}
        for p in pushed)


@PROPS
@given(password=anything, confirm=anything)
def test_invitation_password_form(app, client, user, password, confirm):
    from planman.auth import services as accounts

    invited = User(firm_id=user.firm_id, name="Invited", email=f"i{next(_unique)}@example.com")
    token = accounts.issue_invite(invited)
    db.session.add(invited)
    db.session.commit()
    browser = new_client(app)
    before = dump_database()
    response = post_form(browser, f"/invite/{token}", {"password": password, "confirm": confirm})
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 400:
        return refused_cleanly(response, before, "password" if password != confirm or len(password) < 8 else "confirm")
    db.session.refresh(invited)
    assert invited.check_password(password) and password == confirm and 8 <= len(password) <= 200
