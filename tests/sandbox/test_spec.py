"""The vendored spec is provably Xero's official file, and requests are checked against it."""
import re
import subprocess
from pathlib import Path

import pytest

from xero_sandbox.specval import SPEC_DIR

SOURCE = (SPEC_DIR / "SOURCE.txt").read_text()


@pytest.mark.parametrize("name", ["xero_accounting.yaml", "xero-identity.yaml", "LICENSE"])
def test_vendored_file_matches_the_blob_id_in_source_txt(name):
    expected = re.search(rf"-> {re.escape(name)}\s+blob ([0-9a-f]{{40}})", SOURCE).group(1)
    actual = subprocess.run(["git", "hash-object", str(SPEC_DIR / name)], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert actual == expected


def test_malformed_body_is_rejected_naming_the_violation_and_recorded(xero, api):
    r = api.put("/Contacts", {"Contacts": [{"Name": 42}]})
    assert r.status_code == 400
    body = r.get_json()
    assert "42 is not of type 'string'" in body["Message"]
    violations = xero.get("/_control/violations").get_json()
    assert len(violations) == 1
    assert violations[0]["method"] == "PUT" and violations[0]["path"] == "/api.xro/2.0/Contacts"
    assert "42 is not of type 'string'" in violations[0]["message"]
    # Nothing was created.
    assert api.get("/Contacts").get_json()["Contacts"] == []


def test_bad_enum_and_bad_uuid_are_both_reported(xero, api):
    r = api.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Status": "OPEN",
                                            "Contact": {"ContactID": "not-a-uuid"}, "LineItems": []}]})
    assert r.status_code == 400
    assert "'OPEN' is not one of" in r.get_json()["Message"]
    assert "'not-a-uuid' is not a 'uuid'" in r.get_json()["Message"]
    assert len(xero.get("/_control/violations").get_json()) == 2


def test_invalid_query_parameter_is_a_violation(xero, api):
    r = api.get("/Invoices", query_string={"IDs": "INV-1"})
    assert r.status_code == 400
    assert "IDs" in r.get_json()["Message"]


def test_missing_tenant_header_is_recorded_but_answered_403_like_xero(xero, api):
    r = xero.get("/api.xro/2.0/Contacts", headers={"Authorization": f"Bearer {api.token}"})
    assert r.status_code == 403
    assert [v["message"] for v in xero.get("/_control/violations").get_json()] == [
        "MissingRequiredParameter: Missing required header parameter: xero-tenant-id"]


def test_conforming_requests_record_nothing(api, no_violations):
    contact = api.contact("Acme Ltd", ContactNumber="C-1", EmailAddress="a@acme.test")
    api.invoice(contact["ContactID"], Date="2026-03-01", DueDate="2026-03-31", Reference="R1",
                Url="https://planman.test/invoices/1", Status="DRAFT", LineAmountTypes="Exclusive")
    assert api.get("/Invoices", query_string={"Statuses": "DRAFT", "page": 1}).status_code == 200


def test_connections_are_checked_against_the_identity_spec(xero, api):
    headers = {"Authorization": f"Bearer {api.token}"}
    assert xero.get("/connections", headers=headers).status_code == 200
    r = xero.get("/connections", headers=headers, query_string={"authEventId": "not-a-uuid"})
    assert r.status_code == 400 and "authEventId" in r.get_json()["Message"]
    assert xero.delete("/connections/42", headers=headers).status_code == 400
    assert [v["path"] for v in xero.get("/_control/violations").get_json()] == [
        "/connections?authEventId=not-a-uuid", "/connections/42"]


def test_read_only_fields_are_accepted_and_ignored_as_xero_does(xero, api, no_violations):
    """xero-python's Invoice model always sends HasAttachments and HasErrors; real Xero takes them."""
    contact = api.contact("Acme Ltd", Website="https://acme.test", UpdatedDateUTC="2020-01-01T00:00:00")
    assert contact["ContactStatus"] == "ACTIVE" and "Website" not in contact
    r = api.put("/Invoices", {"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": contact["ContactID"]}, "HasAttachments": True, "HasErrors": True,
        "IsDiscounted": True, "Total": 1.0, "AmountPaid": 5.0, "AmountDue": 1.0, "FullyPaidOnDate": "2020-01-01",
        "LineItems": [{"Description": "Audit", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200",
                       "TaxType": "OUTPUT2"}]}]}, query_string={"summarizeErrors": "false"})
    assert r.status_code == 200, r.get_data(as_text=True)
    invoice = r.get_json()["Invoices"][0]
    assert invoice["HasErrors"] is False and invoice["HasAttachments"] is False and invoice["IsDiscounted"] is False
    assert (invoice["Total"], invoice["AmountPaid"], invoice["AmountDue"]) == (120.0, 0.0, 120.0)
    assert "FullyPaidOnDate" not in invoice


def test_a_read_only_field_does_not_hide_a_real_violation(xero, api):
    r = api.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Status": "OPEN", "HasAttachments": False,
                                            "Contact": {"ContactID": "not-a-uuid"}, "LineItems": []}]})
    assert r.status_code == 400
    messages = [v["message"] for v in xero.get("/_control/violations").get_json()]
    assert len(messages) == 2 and not any("read-only" in m for m in messages), messages
    assert "'OPEN' is not one of" in r.get_json()["Message"]
