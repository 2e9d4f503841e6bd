"""Contacts: create, update, look up, and Xero's unique-name rule."""
from xero_sandbox.demo import UK_TENANT_ID, US_TENANT_ID

from .conftest import Api, connect

CLASH = ("The contact name Acme Ltd is already assigned to another contact. "
         "The contact name must be unique across all active contacts.")


def test_put_creates_a_batch_in_xero_form(api, no_violations):
    r = api.put("/Contacts", {"Contacts": [{"Name": "Acme Ltd", "ContactNumber": "C-1", "EmailAddress": "a@acme.test"},
                                           {"Name": "Bolt plc", "FirstName": "Bea"}]})
    body = r.get_json()
    assert r.status_code == 200
    assert body["Status"] == "OK" and body["ProviderName"] and body["Id"]
    assert body["DateTimeUTC"].startswith("/Date(") and body["DateTimeUTC"].endswith(")/")
    acme, bolt = body["Contacts"]
    assert acme["Name"] == "Acme Ltd" and acme["ContactStatus"] == "ACTIVE" and acme["ContactNumber"] == "C-1"
    assert acme["UpdatedDateUTC"].endswith("+0000)/")
    assert len(acme["ContactID"]) == 36 and acme["ContactID"] != bolt["ContactID"]


def test_lookup_by_id_number_ids_where_and_search(api, no_violations):
    acme = api.contact("Acme Ltd", ContactNumber="C-1", EmailAddress="ops@acme.test")
    bolt = api.contact("Bolt plc", ContactNumber="C-2")

    def names(r):
        assert r.status_code == 200, r.get_data(as_text=True)
        return [c["Name"] for c in r.get_json()["Contacts"]]

    assert names(api.get(f"/Contacts/{acme['ContactID']}")) == ["Acme Ltd"]
    assert names(api.get("/Contacts/C-2")) == ["Bolt plc"]  # one template: a non-UUID is a ContactNumber
    assert api.get("/Contacts/C-9").status_code == 404
    assert names(api.get("/Contacts", query_string={"IDs": f"{acme['ContactID']},{bolt['ContactID']}"})) == [
        "Acme Ltd", "Bolt plc"]
    assert names(api.get("/Contacts", query_string={"where": 'Name=="Acme Ltd"'})) == ["Acme Ltd"]
    assert names(api.get("/Contacts", query_string={"where": 'ContactNumber=="C-2" OR ContactNumber=="C-1"'})) == [
        "Acme Ltd", "Bolt plc"]
    assert names(api.get("/Contacts", query_string={"where": 'EmailAddress=="OPS@acme.test"'})) == ["Acme Ltd"]
    assert names(api.get("/Contacts", query_string={"where": 'ContactStatus=="ACTIVE" AND Name=="Bolt plc"'})) == [
        "Bolt plc"]
    assert names(api.get("/Contacts", query_string={"searchTerm": "bolt"})) == ["Bolt plc"]


def test_bad_where_is_a_400(api):
    r = api.get("/Contacts", query_string={"where": "Name is Acme"})
    assert r.status_code == 400 and r.get_json()["Type"] == "QueryParseException"


def test_paging(api):
    for i in range(5):
        api.contact(f"Client {i}")
    body = api.get("/Contacts", query_string={"page": 2, "pageSize": 2}).get_json()
    assert [c["Name"] for c in body["Contacts"]] == ["Client 2", "Client 3"]
    assert body["pagination"] == {"page": 2, "pageSize": 2, "pageCount": 3, "itemCount": 5}


def test_post_with_contact_id_updates_only_sent_fields(api, no_violations):
    acme = api.contact("Acme Ltd", ContactNumber="C-1", EmailAddress="a@acme.test")
    r = api.post("/Contacts", {"Contacts": [{"ContactID": acme["ContactID"], "Name": "Acme Limited"}]})
    updated = r.get_json()["Contacts"][0]
    assert r.status_code == 200
    assert updated["ContactID"] == acme["ContactID"] and updated["Name"] == "Acme Limited"
    assert updated["EmailAddress"] == "a@acme.test"
    r = api.post(f"/Contacts/{acme['ContactID']}", {"Contacts": [{"EmailAddress": "b@acme.test"}]})
    assert r.get_json()["Contacts"][0]["EmailAddress"] == "b@acme.test"
    assert len(api.get("/Contacts").get_json()["Contacts"]) == 1


def test_post_to_unknown_contact_id_is_404(api):
    r = api.post("/Contacts/6f0a6bd5-0000-4000-8000-000000000000", {"Contacts": [{"Name": "X"}]})
    assert r.status_code == 404


def test_post_without_id_but_with_an_existing_name_updates_that_contact(api):
    acme = api.contact("Acme Ltd")
    r = api.post("/Contacts", {"Contacts": [{"Name": "acme ltd", "ContactNumber": "C-7"}]})
    assert r.get_json()["Contacts"][0]["ContactID"] == acme["ContactID"]
    assert [c["ContactNumber"] for c in api.get("/Contacts").get_json()["Contacts"]] == ["C-7"]


def test_name_must_be_unique_among_active_contacts(xero, api):
    acme = api.contact("Acme Ltd")
    r = api.put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]})
    assert r.status_code == 400
    body = r.get_json()
    assert body["ErrorNumber"] == 10 and body["Type"] == "ValidationException"
    assert body["Message"] == "A validation exception occurred"
    assert body["Elements"][0]["ValidationErrors"] == [{"Message": CLASH}]
    assert body["Elements"][0]["Name"] == "Acme Ltd"

    # Renaming another contact onto the name clashes too.
    bolt = api.contact("Bolt plc")
    r = api.post(f"/Contacts/{bolt['ContactID']}", {"Contacts": [{"Name": "Acme Ltd"}]})
    assert r.status_code == 400 and r.get_json()["Elements"][0]["ValidationErrors"][0]["Message"] == CLASH

    # Once the first is archived the name is free.
    xero.post(f"/_control/contacts/{acme['ContactID']}/archive")
    assert api.put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]}).status_code == 200


def test_name_is_required(api):
    r = api.put("/Contacts", {"Contacts": [{"Name": "  ", "EmailAddress": "x@y.test"}]})
    assert r.status_code == 400
    assert r.get_json()["Elements"][0]["ValidationErrors"] == [{"Message": "The contact name must be specified."}]


def test_archived_contacts_are_listed_only_when_asked(xero, api):
    acme = api.contact("Acme Ltd")
    xero.post(f"/_control/contacts/{acme['ContactID']}/archive")
    assert api.get("/Contacts").get_json()["Contacts"] == []
    listed = api.get("/Contacts", query_string={"includeArchived": "true"}).get_json()["Contacts"]
    assert [c["ContactStatus"] for c in listed] == ["ARCHIVED"]
    assert api.get(f"/Contacts/{acme['ContactID']}").get_json()["Contacts"][0]["ContactStatus"] == "ARCHIVED"


def test_organisations_are_separate(xero):
    tokens = connect(xero, tenants=(UK_TENANT_ID, US_TENANT_ID))
    uk, us = Api(xero, tokens["access_token"], UK_TENANT_ID), Api(xero, tokens["access_token"], US_TENANT_ID)
    uk.contact("Acme Ltd")
    us.contact("Acme Ltd")  # no clash across organisations
    assert len(uk.get("/Contacts").get_json()["Contacts"]) == 1


def test_where_string_methods(api):
    api.contact("Acme Ltd")
    api.contact("Bolt plc")
    r = api.get("/Contacts", query_string={"where": 'Name.StartsWith("acme") OR Name.Contains("PLC")'})
    assert [c["Name"] for c in r.get_json()["Contacts"]] == ["Acme Ltd", "Bolt plc"]


def test_if_modified_since_returns_only_newer_contacts(api):
    import time
    from datetime import datetime, timezone
    api.contact("Old Co")
    time.sleep(0.05)
    cutoff = datetime.now(timezone.utc).isoformat(timespec="milliseconds")  # the spec wants an offset
    time.sleep(0.05)
    api.contact("New Co")
    r = api.get("/Contacts", headers={"If-Modified-Since": cutoff})
    assert [c["Name"] for c in r.get_json()["Contacts"]] == ["New Co"]


def test_where_has_no_escape_for_a_quote_inside_a_value_as_in_real_xero(api):
    """Xero-Java issue 347 (\\" gives "Syntax error") and xeroizer issue 160 (a bare quote ends
    the value early): a name holding a double quote cannot be written in a where clause."""
    api.contact('Quote "Three" Ltd')
    escaped = api.get("/Contacts", query_string={"where": 'Name=="Quote \\"Three\\" Ltd"'})
    assert escaped.status_code == 400
    assert escaped.get_json() == {"ErrorNumber": 16, "Type": "QueryParseException", "Message": "Syntax error"}
    bare = api.get("/Contacts", query_string={"where": 'Name=="Quote "Three" Ltd"'})
    assert bare.status_code == 400
    assert bare.get_json() == {"ErrorNumber": 16, "Type": "QueryParseException",
                               "Message": "No property or field 'Three' exists in type 'Contact'"}
    in_method = api.get("/Contacts", query_string={"where": 'Name.Contains("\\"Three")'})
    assert in_method.status_code == 400 and in_method.get_json()["Message"] == "Syntax error"
    invoices = api.get("/Invoices", query_string={"where": 'Reference=="a "b" c"'})
    assert invoices.get_json()["Message"] == "No property or field 'b' exists in type 'Invoice'"


def test_a_name_no_filter_can_express_is_found_by_search_term(api):
    api.contact('Quote "Three" Ltd', FirstName="Ann", LastName="Lee", EmailAddress="ann@three.test",
                ContactNumber="PM-3")
    api.contact("Other Co")

    def found(term):
        r = api.get("/Contacts", query_string={"searchTerm": term})
        assert r.status_code == 200, r.get_data(as_text=True)
        return [c["Name"] for c in r.get_json()["Contacts"]]

    # Case-insensitive, over Name, FirstName, LastName, ContactNumber and EmailAddress (the spec's list).
    for term in ('quote "THREE" ltd', '"three"', "ANN", "lee", "pm-3", "@three.TEST"):
        assert found(term) == ['Quote "Three" Ltd'], term
    assert found("nobody") == []


def test_values_are_taken_literally_accents_and_backslashes_included(api):
    api.contact("Café Zürich \\ Co")
    r = api.get("/Contacts", query_string={"where": 'Name=="café zürich \\ co"'})
    assert [c["Name"] for c in r.get_json()["Contacts"]] == ["Café Zürich \\ Co"]


def test_to_lower_and_to_upper_are_accepted_and_names_compare_without_case(api):
    api.contact("ACME TRADING")
    api.contact("Bolt plc")
    for where in ('Name.ToLower()=="acme trading"', 'Name=="Acme Trading"', 'Name.ToUpper()=="ACME TRADING"',
                  'Name.ToLower().StartsWith("acme")', 'Name.ToLower().Contains("trad") AND ContactStatus=="ACTIVE"'):
        r = api.get("/Contacts", query_string={"where": where})
        assert r.status_code == 200, (where, r.get_data(as_text=True))
        assert [c["Name"] for c in r.get_json()["Contacts"]] == ["ACME TRADING"], where


def test_an_absent_field_is_kept_and_an_empty_string_clears_it(api, no_violations):
    """Xero's rule, which PlanMan relies on when linking to a contact it did not create."""
    street = {"AddressType": "STREET", "AddressLine1": "1 High St", "City": "Leeds", "PostalCode": "LS1 1AA"}
    mobile = {"PhoneType": "MOBILE", "PhoneNumber": "07700 900123"}
    acme = api.contact("Acme Ltd", FirstName="Ann", LastName="Lee", EmailAddress="ann@acme.test",
                       TaxNumber="GB123456789", Addresses=[street], Phones=[mobile])

    def stored():
        return api.get(f"/Contacts/{acme['ContactID']}").get_json()["Contacts"][0]

    def address(doc, kind):
        return next(a for a in doc["Addresses"] if a["AddressType"] == kind)

    def phone(doc, kind):
        return next(p for p in doc["Phones"] if p["PhoneType"] == kind)

    # Only the name sent: everything a bookkeeper typed stays.
    api.post(f"/Contacts/{acme['ContactID']}", {"Contacts": [{"Name": "Acme Ltd"}]})
    kept = stored()
    assert (kept["FirstName"], kept["LastName"], kept["EmailAddress"], kept["TaxNumber"]) == (
        "Ann", "Lee", "ann@acme.test", "GB123456789")
    assert address(kept, "STREET") == street and phone(kept, "MOBILE") == mobile

    # Empty strings clear: the field, the phone number, the address lines.
    cleared_street = {"AddressType": "STREET", "AddressLine1": "", "City": "", "PostalCode": ""}
    api.post(f"/Contacts/{acme['ContactID']}", {"Contacts": [{"EmailAddress": "", "TaxNumber": "",
                                                              "Addresses": [cleared_street],
                                                              "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": ""}]}]})
    after = stored()
    assert (after["EmailAddress"], after["TaxNumber"]) == ("", "")
    assert (after["FirstName"], after["LastName"]) == ("Ann", "Lee")
    assert address(after, "STREET") == cleared_street and phone(after, "MOBILE")["PhoneNumber"] == ""
