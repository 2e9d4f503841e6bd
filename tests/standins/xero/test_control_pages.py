"""Control API state/stats/reset, and the browser pages that show what arrived."""
from standins.xero.demo import UK_NAME, UK_SHORT_CODE, UK_TENANT_ID, US_NAME, US_TENANT_ID

from .conftest import Api


def test_state_shows_each_organisation_with_full_records(xero, api):
    acme = api.contact("Acme Ltd")
    inv = api.invoice(acme["ContactID"])
    orgs = {o["tenantId"]: o for o in xero.get("/_control/state").get_json()["organisations"]}
    assert set(orgs) == {UK_TENANT_ID, US_TENANT_ID}
    uk = orgs[UK_TENANT_ID]
    assert (uk["name"], uk["shortCode"]) == (UK_NAME, UK_SHORT_CODE)
    assert [c["ContactID"] for c in uk["contacts"]] == [acme["ContactID"]]
    assert uk["invoices"][0]["InvoiceID"] == inv["InvoiceID"] and uk["invoices"][0]["Total"] == 120.0
    assert orgs[US_TENANT_ID]["name"] == US_NAME and orgs[US_TENANT_ID]["invoices"] == []


def test_reset_wipes_everything_back_to_the_demo_organisations(xero, api):
    api.contact("Acme Ltd")
    xero.post("/_control/limits", json={"per_minute": 1})
    assert xero.post("/_control/reset").status_code == 200
    assert all(o["contacts"] == [] for o in xero.get("/_control/state").get_json()["organisations"])
    assert api.get("/Organisation").status_code == 401  # tokens are gone too
    assert xero.get("/_control/stats").get_json()["calls_per_tenant"] == {}


def test_stats_count_calls_per_tenant(xero, api):
    api.get("/Organisation")
    api.get("/Contacts")
    assert xero.get("/_control/stats").get_json()["calls_per_tenant"] == {UK_TENANT_ID: 2}


def test_unknown_records_in_controls_are_404(xero):
    assert xero.post("/_control/invoices/0c1d2e3f-0000-4000-8000-000000000000/status",
                     json={"status": "PAID"}).status_code == 404
    assert xero.post("/_control/contacts/0c1d2e3f-0000-4000-8000-000000000000/archive").status_code == 404
    assert xero.post("/_control/invoices/x/status", json={"status": "LOST"}).status_code == 400


def test_limits_and_lifetimes_answer_their_current_values(xero):
    assert xero.post("/_control/limits", json={"in_flight": 3}).get_json() == {
        "in_flight": 3, "per_minute": 60, "per_day": 5000, "app_per_minute": 10000}
    assert xero.post("/_control/lifetimes", json={"access_token_seconds": 60}).get_json() == {
        "access_token_seconds": 60, "refresh_grace_seconds": 1800}
    assert xero.post("/_control/limits", json={"in_flight": -1}).status_code == 400


def test_pages_list_organisations_and_what_arrived(xero, api):
    acme = api.contact("Acme Ltd", ContactNumber="C-1")
    api.invoice(acme["ContactID"], Reference="Job 7", lines=[
        {"Description": "Quarterly bookkeeping", "Quantity": 2, "UnitAmount": 150, "AccountCode": "200",
         "TaxType": "OUTPUT2"}])
    index = xero.get("/").get_data(as_text=True)
    assert UK_NAME in index and US_NAME in index and f"/orgs/{UK_TENANT_ID}" in index
    page = xero.get(f"/orgs/{UK_TENANT_ID}").get_data(as_text=True)
    for text in ("INV-0001", "DRAFT", "Acme Ltd", "Job 7", "Quarterly bookkeeping", "300.00", "60.00",
                 "GBP 360.00", "C-1"):
        assert text in page, text
    assert xero.get("/orgs/0c1d2e3f-0000-4000-8000-000000000000").status_code == 404


def test_a_second_process_sees_the_same_state(stand_in_config, api):
    """Two app instances on one SQLite file behave as one stand-in (as several workers do)."""
    from standins.xero import create_app

    other = create_app(stand_in_config).test_client()
    api.contact("Acme Ltd")
    seen = Api(other, api.token).get("/Contacts").get_json()["Contacts"]
    assert [c["Name"] for c in seen] == ["Acme Ltd"]
    clash = Api(other, api.token).put("/Contacts", {"Contacts": [{"Name": "Acme Ltd"}]})
    assert clash.status_code == 400


def test_page_amounts_keep_four_decimal_unit_prices():
    from standins.xero.pages import amount, when
    assert (amount(1.2345), amount(150.0), amount(1234.5)) == ("1.2345", "150.00", "1,234.50")
    assert when("/Date(1772323200000+0000)/") == "2026-03-01 00:00:00 UTC"
