"""Finding a client's contact in Xero, whatever its name, alone and in batches.

Xero is played by `responses` as REFERENCE.md section 11 documents it: a
`where` literal holding `\\"` is refused with 400 QueryParseException (no
working escape exists on real Xero), `searchTerm` is a case-insensitive
contains-search, and contact names are unique among active contacts without
regard to case. Every accounting request is checked against the official spec."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from planman.extensions import db
from tests.helpers import client, make_client, signup  # noqa: F401
from tests.test_bulk import NAME_TAKEN, FakeXero, link_of, pushes, send as bulk_send
from tests.test_push_xero import _connect, panel_url, run_jobs, send
from tests.xero_spec import xero_api  # noqa: F401

QUOTED = 'Quote "Three" Ltd'
SYNTAX_ERROR = {"ErrorNumber": 16, "Type": "QueryParseException", "Message": "Syntax error"}


class StrictXero(FakeXero):
    """FakeXero with real Xero's `where` parser limits and `searchTerm`.

    ``case_sensitive_where``: `==` compares with case (unconfirmed for real
    Xero, so PlanMan must cope either way). ``unparsable``: text whose
    presence in any lookup makes Xero answer QueryParseException."""

    def __init__(self, mock):
        super().__init__(mock)
        self.case_sensitive_where = False
        self.unparsable: set[str] = set()

    def _answer(self, request):
        url = urlsplit(request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if request.method == "GET" and url.path.endswith("/Contacts"):
            lookup = query.get("where", "") + query.get("searchTerm", "")
            if '\\"' in query.get("where", "") or any(text in lookup for text in self.unparsable):
                return 400, {"Content-Type": "application/json"}, json.dumps(SYNTAX_ERROR)
            return 200, {"Content-Type": "application/json"}, json.dumps({"Contacts": self._lookup(query)})
        one = re.search(r"/Contacts/([0-9a-f-]{36})$", url.path)
        if request.method == "POST" and one:  # a single push's update: the id is in the path
            body = json.loads(request.body)
            answer = self._post_contacts(query, {"Contacts": [{**body["Contacts"][0], "ContactID": one.group(1)}]})
            return 200, {"Content-Type": "application/json"}, json.dumps(answer)
        return super()._answer(request)

    def _lookup(self, query):
        active = [c for c in self.contacts.values() if c.get("ContactStatus", "ACTIVE") == "ACTIVE"]
        if "searchTerm" in query:
            term = query["searchTerm"].casefold()
            fields = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
            found = [c for c in active if any(term in (c.get(f) or "").casefold() for f in fields)]
            size, page = int(query.get("pageSize", 100)), int(query.get("page", 1))
            return found[(page - 1) * size: page * size]
        wanted = re.findall(r'(\w+)=="([^"]*)"', query.get("where", ""))
        same = (lambda a, b: a == b) if self.case_sensitive_where else (lambda a, b: a.casefold() == b.casefold())
        return [c for c in active if any(same(c.get(field) or "", value) for field, value in wanted)]

    def _put_contacts(self, query, body):
        out = []
        for element in body["Contacts"]:
            if any(c["Name"].casefold() == element["Name"].casefold() for c in self.contacts.values()
                   if c.get("ContactStatus", "ACTIVE") == "ACTIVE"):
                out.append({**element, "HasValidationErrors": True,
                            "ValidationErrors": [{"Message": NAME_TAKEN.format(element["Name"])}]})
                continue
            contact = {**element, "ContactID": f"00000000-0000-4000-8000-{len(self.contacts) + 1:012d}",
                       "ContactStatus": "ACTIVE"}
            self.contacts[contact["ContactID"]] = contact
            out.append(contact)
        return {"Contacts": out}

    def add_contact(self, name, number=""):
        contact_id = f"99999999-0000-4000-8000-{len(self.contacts) + 1:012d}"
        self.contacts[contact_id] = {"ContactID": contact_id, "Name": name, "ContactNumber": number,
                                     "ContactStatus": "ACTIVE", "EmailAddress": "books@example.test"}
        return contact_id

    def where_queries(self):
        return [parse_qs(urlsplit(r.url).query).get("where", [""])[0] for r in self.calls("GET", "Contacts")]


@pytest.fixture
def xero(xero_api):
    return StrictXero(xero_api)


@pytest.fixture
def firm(client):
    admin = signup(client)
    return admin, _connect(admin)


def panel(client, record):
    return client.get(panel_url("client", record.id)).get_data(as_text=True)


def test_a_name_with_quotes_sends_alone_without_a_filter_xero_cannot_parse(app, client, firm, xero):
    admin, _ = firm
    record = make_client(admin, name=QUOTED)

    send(client, "client", record.id)
    run_jobs(app)

    assert "Sent to Xero." in panel(client, record)
    assert [c["Name"] for c in xero.contacts.values()] == [QUOTED]
    assert not any('"' in value for where in xero.where_queries() for value in re.findall(r'=="(.*?)"$', where))
    assert all('\\"' not in where for where in xero.where_queries())


def test_a_name_with_quotes_already_in_xero_is_linked_not_duplicated(app, client, firm, xero):
    admin, _ = firm
    theirs = xero.add_contact(QUOTED)
    xero.add_contact('Quote "Three" Ltd Holdings')  # found by the search too, but not the same name
    record = make_client(admin, name=QUOTED)

    send(client, "client", record.id)
    run_jobs(app)

    assert "Linked to an existing Xero contact" in panel(client, record)
    assert not xero.calls("PUT", "Contacts") and link_of("client", record.id).external_id == theirs


def test_a_name_with_quotes_in_a_bulk_batch_sends_with_the_others(app, client, firm, xero):
    admin, _ = firm
    others = [make_client(admin, name=f"Plain {n}") for n in range(3)]
    quoted = make_client(admin, name=QUOTED)

    bulk_send(client, "client", ids=[c.id for c in others + [quoted]])
    run_jobs(app)

    assert {(p.state, p.outcome) for p in pushes()} == {("succeeded", "created")}
    assert sorted(c["Name"] for c in xero.contacts.values()) == sorted([QUOTED] + [c.name for c in others])
    wheres = [w for w in xero.where_queries() if w]
    assert [w for w in wheres if "Plain" in w] == [wheres[0]] and "Plain 2" in wheres[0]  # the others share one query
    assert not any("Three" in w for w in wheres)


def test_a_batch_lookup_xero_refuses_fails_only_the_record_it_must(app, client, firm, xero):
    admin, _ = firm
    others = [make_client(admin, name=f"Plain {n}") for n in range(3)]
    odd = make_client(admin, name="Odd Ltd")
    xero.unparsable.add("Odd Ltd")  # whatever Xero's parser trips on, in any lookup naming it

    bulk_send(client, "client", ids=[c.id for c in others + [odd]])
    run_jobs(app)

    states = {p.record_id: p for p in pushes()}
    assert all(states[c.id].state == "succeeded" for c in others)
    assert states[odd.id].state == "failed"
    assert "Xero could not run PlanMan's search for this record (Syntax error)." in states[odd.id].error_message
    assert sorted(c["Name"] for c in xero.contacts.values()) == [c.name for c in others]


def test_a_batch_lookup_refused_for_one_name_still_finds_everyone(app, client, firm, xero):
    admin, _ = firm
    existing = xero.add_contact("Plain 1")
    records = [make_client(admin, name=f"Plain {n}") for n in range(3)] + [make_client(admin, name="Odd Ltd")]
    xero.unparsable.add('"Odd Ltd"')  # the filter is refused; the search for the name works

    bulk_send(client, "client", ids=[c.id for c in records])
    run_jobs(app)

    assert {p.state for p in pushes()} == {"succeeded"}
    assert link_of("client", records[1].id).external_id == existing
    assert sorted(c["Name"] for c in xero.contacts.values()) == sorted(c.name for c in records)


@pytest.mark.parametrize("case_sensitive_where", [False, True])
def test_a_contact_named_in_other_case_is_linked_in_a_batch(app, client, firm, xero, case_sensitive_where):
    admin, _ = firm
    xero.case_sensitive_where = case_sensitive_where
    theirs = xero.add_contact("ACME TRADING")
    acme = make_client(admin, name="Acme Trading")
    other = make_client(admin, name="Other Co")

    bulk_send(client, "client", ids=[acme.id, other.id])
    run_jobs(app)

    assert {p.record_id: (p.state, p.outcome) for p in pushes()} == {
        acme.id: ("succeeded", "linked"), other.id: ("succeeded", "created")}
    assert link_of("client", acme.id).external_id == theirs
    assert sorted(c["Name"] for c in xero.contacts.values()) == ["Acme Trading", "Other Co"]  # renamed, not doubled


def test_a_contact_named_in_other_case_is_linked_by_a_single_send(app, client, firm, xero):
    admin, _ = firm
    xero.case_sensitive_where = True
    theirs = xero.add_contact("ACME TRADING")
    record = make_client(admin, name="Acme Trading")

    send(client, "client", record.id)
    run_jobs(app)

    page = panel(client, record)
    assert "Linked to an existing Xero contact" in page and ">Update<" in page
    assert not xero.calls("PUT", "Contacts") and link_of("client", record.id).external_id == theirs


# --- linking to a contact PlanMan did not create -------------------------------------

def typed_into_xero(xero, name="Acme Trading"):
    """A contact a bookkeeper keeps in Xero, with details PlanMan does not hold."""
    contact_id = xero.add_contact(name)
    xero.contacts[contact_id].update(
        FirstName="Ann", LastName="Lee", EmailAddress="books@acme.example", TaxNumber="GB999",
        Phones=[{"PhoneType": "DEFAULT", "PhoneNumber": "0113 496 0000"}],
        Addresses=[{"AddressType": "STREET", "AddressLine1": "1 Mill Lane", "City": "Leeds", "PostalCode": "LS1 1AA"}])
    return contact_id


def assert_xero_kept_what_it_had(contact):
    assert (contact["FirstName"], contact["LastName"], contact["TaxNumber"]) == ("Ann", "Lee", "GB999")
    assert contact["Phones"] == [{"PhoneType": "DEFAULT", "PhoneNumber": "0113 496 0000"}]
    assert contact["Addresses"][0]["AddressLine1"] == "1 Mill Lane" and contact["Addresses"][0]["City"] == "Leeds"


def test_linking_to_a_contact_planman_did_not_create_never_clears_what_xero_has(app, client, firm, xero):
    admin, _ = firm
    theirs = typed_into_xero(xero)
    record = make_client(admin, name="Acme Trading", email="accounts@acme.example")

    send(client, "client", record.id)
    run_jobs(app)

    sent = json.loads(xero.calls("POST")[-1].body)["Contacts"][0]
    assert "" not in sent.values() and "Phones" not in sent and "Addresses" not in sent
    contact = xero.contacts[theirs]
    assert_xero_kept_what_it_had(contact)
    assert contact["EmailAddress"] == "accounts@acme.example" and contact["ContactNumber"] == record.reference
    page = panel(client, record)
    assert "Linked to an existing Xero contact and updated." in page
    assert "Changed in Xero: E-mail address, Contact number; nothing else there was touched." in page

    # Later updates of that contact still send only what PlanMan holds.
    record.notes, record.revision = "Edited in PlanMan", record.revision + 1
    db.session.commit()
    send(client, "client", record.id)
    run_jobs(app)
    assert_xero_kept_what_it_had(xero.contacts[theirs])
    assert "Updated in Xero." in panel(client, record)


def test_linking_in_a_bulk_batch_never_clears_what_xero_has(app, client, firm, xero):
    admin, _ = firm
    theirs = typed_into_xero(xero)
    record = make_client(admin, name="Acme Trading")
    other = make_client(admin, name="Other Co")

    bulk_send(client, "client", ids=[record.id, other.id])
    run_jobs(app)

    assert_xero_kept_what_it_had(xero.contacts[theirs])
    assert xero.contacts[theirs]["EmailAddress"] == "books@acme.example"
    assert link_of("client", record.id).changed_fields == ["Contact number"]
    assert "Changed in Xero: Contact number;" in panel(client, record)
