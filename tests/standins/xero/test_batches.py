"""summarizeErrors (REFERENCE.md section 2) and Idempotency-Key replay."""
CLASH = ("The contact name Acme Ltd is already assigned to another contact. "
         "The contact name must be unique across all active contacts.")


def names(api):
    return sorted(c["Name"] for c in api.get("/Contacts").get_json()["Contacts"])


def test_summarized_errors_400_lists_failures_but_valid_elements_are_saved(api):
    api.contact("Acme Ltd")
    r = api.put("/Contacts", {"Contacts": [{"Name": "Bolt plc"}, {"Name": "Acme Ltd"}, {"Name": "Crane Co"}]})
    assert r.status_code == 400
    body = r.get_json()
    assert [e["Name"] for e in body["Elements"]] == ["Acme Ltd"]
    assert body["Elements"][0]["ValidationErrors"] == [{"Message": CLASH}]
    assert names(api) == ["Acme Ltd", "Bolt plc", "Crane Co"]


def test_summarize_errors_false_gives_200_with_per_element_flags(api):
    api.contact("Acme Ltd")
    r = api.put("/Contacts", {"Contacts": [{"Name": "Bolt plc"}, {"Name": "Acme Ltd"}]},
                query_string={"summarizeErrors": "false"})
    assert r.status_code == 200
    ok, bad = r.get_json()["Contacts"]
    assert ok["HasValidationErrors"] is False and ok["StatusAttributeString"] == "OK" and ok["ContactID"]
    assert bad["HasValidationErrors"] is True and bad["StatusAttributeString"] == "ERROR"
    assert bad["ValidationErrors"] == [{"Message": CLASH}]


def test_invoice_batch_with_summarize_errors_false(api):
    acme = api.contact("Acme Ltd")
    good = {"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]},
            "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "200"}]}
    bad = {**good, "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "999"}]}
    r = api.put("/Invoices", {"Invoices": [good, bad]}, query_string={"summarizeErrors": "false"})
    first, second = r.get_json()["Invoices"]
    assert r.status_code == 200
    assert first["HasErrors"] is False and first["InvoiceNumber"] == "INV-0001"
    assert second["HasErrors"] is True and second["StatusAttributeString"] == "ERROR"
    assert second["ValidationErrors"][0]["Message"] == "Account code '999' is not a valid code for this document."


def test_elements_of_one_batch_see_each_other(api):
    r = api.put("/Contacts", {"Contacts": [{"Name": "Twin"}, {"Name": "Twin"}]})
    assert r.status_code == 400 and len(r.get_json()["Elements"]) == 1
    assert names(api) == ["Twin"]


def test_repeated_idempotency_key_replays_the_first_answer_and_creates_nothing(xero, api, no_violations):
    headers = {"Idempotency-Key": "push-client-1"}
    first = api.put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]}, headers=headers)
    second = api.put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.get_json() == first.get_json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert names(api) == ["Acme Ltd"]
    assert xero.get("/_control/stats").get_json()["idempotent_replays"] == 1


def test_a_replayed_failure_is_the_same_failure(api):
    api.contact("Acme Ltd")
    headers = {"Idempotency-Key": "k-400"}
    first = api.put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]}, headers=headers)
    second = api.put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]}, headers=headers)
    assert first.status_code == second.status_code == 400 and first.get_json() == second.get_json()


def test_same_key_with_a_different_body_is_refused(api):
    api.put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]}, headers={"Idempotency-Key": "k"})
    r = api.put("/Contacts", {"Contacts": [{"Name": "Bolt plc"}]}, headers={"Idempotency-Key": "k"})
    assert r.status_code == 400 and "different request" in r.get_json()["Message"]
    assert names(api) == ["Acme Ltd"]


def test_keys_are_per_organisation(xero):
    from standins.xero.demo import UK_TENANT_ID, US_TENANT_ID

    from .conftest import Api, connect
    token = connect(xero, tenants=(UK_TENANT_ID, US_TENANT_ID))["access_token"]
    for tenant in (UK_TENANT_ID, US_TENANT_ID):
        r = Api(xero, token, tenant).put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]},
                                         headers={"Idempotency-Key": "same"})
        assert r.status_code == 200 and r.headers.get("Idempotent-Replayed") is None


def test_key_longer_than_128_characters_is_refused(api):
    r = api.put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]}, headers={"Idempotency-Key": "k" * 129})
    assert r.status_code == 400 and "128" in r.get_json()["Message"]
    assert names(api) == []
