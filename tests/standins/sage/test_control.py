"""The core's faults and limits through the Sage stand-in, its pages and record links, reset, and
its mount under /sage in the one stand-ins app."""
import pytest

from standins import create_app as create_all
from standins.core.faults import LostResponse
from standins.sage.demo import GB_BUSINESS_ID, GB_NAME, IE_NAME

from .conftest import Api, connect, ok, only_error


def test_injected_5xx_answer_the_error_array_and_then_calls_work(sage, api):
    ok(sage.post("/_control/faults", json={"fail_next": 2, "fail_status": 503}))
    assert only_error(api.get("/contacts"), 503)["$dataCode"] == "ServiceUnavailable"
    assert only_error(api.get("/contacts"), 503)["$severity"] == "error"
    assert api.get("/contacts").status_code == 200
    assert ok(sage.get("/_control/stats"))["injected_5xx"] == 2


def test_rate_limit_fault_answers_429_with_retry_after(sage, api):
    ok(sage.post("/_control/faults", json={"rate_limit_next": 1, "retry_after": 7}))
    r = api.get("/contacts")
    assert only_error(r, 429)["$dataCode"] == "TooManyRequests" and r.headers["Retry-After"] == "7"
    assert api.get("/contacts").status_code == 200


def test_per_business_limit_refuses_with_429_and_other_businesses_go_on(sage, tokens, api):
    ok(sage.post("/_control/limits", json={"per_minute": 1}))
    assert api.get("/contacts").status_code == 200
    # A minute window may turn between the calls: then this call is the new window's one allowed call.
    second = api.get("/contacts")
    third = api.get("/contacts") if second.status_code == 200 else second
    assert third.status_code == 429 and int(third.headers["Retry-After"]) >= 1
    assert Api(sage, tokens["access_token"], "9be11c1cc69157f4ba4f5ecb0d8205ae").get("/contacts").status_code == 200


def test_a_lost_answer_leaves_the_record_which_a_lookup_by_reference_finds(sage, api):
    ok(sage.post("/_control/faults", json={"drop_next_writes": 1}))
    with pytest.raises(LostResponse):
        api.post("/contacts", {"contact": {"name": "Acme Ltd", "contact_type_ids": ["CUSTOMER"], "reference": "PM-1"}})
    found = ok(api.get("/contacts", query_string={"search": "PM-1", "attributes": "all"}))
    assert [c["reference"] for c in found["$items"]] == ["PM-1"]
    assert ok(sage.get("/_control/stats"))["lost_responses"] == 1


def test_reads_are_not_picked_for_lost_answers(sage, api):
    ok(sage.post("/_control/faults", json={"drop_next_writes": 1}))
    assert api.get("/contacts").status_code == 200
    assert ok(sage.get("/_control/faults"))["drop_next_writes"] == 1


def test_unknown_fault_or_bad_switch_is_refused(sage):
    assert sage.post("/_control/faults", json={"explode": 1}).status_code == 400
    assert sage.post("/_control/x_business", json={"missing": "maybe"}).status_code == 400
    assert sage.post("/_control/misroute", json={"next": -1}).status_code == 400
    assert sage.post("/_control/age_tokens", json={"seconds": "lots"}).status_code == 400


def test_pages_show_each_business_and_what_it_holds(sage, api):
    contact = api.contact(name="Acme Ltd", reference="PM-0001")
    inv = api.invoice(contact["id"], reference="PM-INV-1")
    index = sage.get("/").get_data(as_text=True)
    assert GB_NAME in index and IE_NAME in index and f"/businesses/{GB_BUSINESS_ID}" in index
    page = sage.get(f"/businesses/{GB_BUSINESS_ID}").get_data(as_text=True)
    assert f'id="contact-{contact["id"]}"' in page and "PM-0001" in page
    assert f'id="sales_invoice-{inv["id"]}"' in page and "SI-1" in page and "Unpaid" in page and "120.00" in page
    assert sage.get("/businesses/nope").status_code == 404


def test_record_links_open_the_business_page_at_the_record(sage, api):
    contact = api.contact()
    inv = api.invoice(contact["id"])
    r = sage.get(f"/businesses/{GB_BUSINESS_ID}/contacts/{contact['id']}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/businesses/{GB_BUSINESS_ID}#contact-{contact['id']}")
    r = sage.get(f"/businesses/{GB_BUSINESS_ID}/sales_invoices/{inv['id']}")
    assert r.headers["Location"].endswith(f"#sales_invoice-{inv['id']}")
    assert sage.get(f"/businesses/{GB_BUSINESS_ID}/widgets/1").status_code == 404


def test_state_lists_records_per_business(sage, api):
    contact = api.contact()
    api.invoice(contact["id"])
    [gb] = [b for b in ok(sage.get("/_control/state"))["businesses"] if b["id"] == GB_BUSINESS_ID]
    assert [c["id"] for c in gb["contacts"]] == [contact["id"]]
    assert gb["sales_invoices"][0]["status"]["id"] == "UNPAID" and gb["country"] == "GB"


def test_reset_wipes_records_tokens_and_switches(sage, tokens, api):
    api.contact()
    ok(sage.post("/_control/faults", json={"fail_next": 5}))
    ok(sage.post("/_control/x_business", json={"missing": "lead"}))
    assert ok(sage.post("/_control/reset"))["ok"] is True
    assert ok(sage.get("/_control/faults")) == {}
    assert api.get("/contacts").status_code == 401  # the old token is gone
    fresh = Api(sage, connect(sage)["access_token"])
    assert ok(fresh.get("/contacts"))["$total"] == 0
    assert Api(sage, fresh.token, business_id=None).get("/contacts").status_code == 400


def test_mounted_under_sage_in_the_one_app(tmp_path):
    client = create_all({"DATABASE": str(tmp_path / "s.db"), "TESTING": True}).test_client()
    assert client.get("/sage/").status_code == 200
    assert f'href="/sage/businesses/{GB_BUSINESS_ID}"' in client.get("/").get_data(as_text=True)
    assert (tmp_path / "s.sage.db").exists()
    r = client.get(f"/sage/businesses/{GB_BUSINESS_ID}/contacts/abc")
    assert r.headers["Location"].endswith(f"/sage/businesses/{GB_BUSINESS_ID}#contact-abc")
