"""Sage's OAuth as REFERENCE.md section 1-2 describe it: the consent page with a business picker,
60-second single-use codes, 5-minute access tokens, refresh tokens that rotate (a used one is dead)
and die after 31 days unused, revoke, and /businesses for the token's user."""
import pytest

from standins.core.faults import LostResponse
from standins.sage.demo import DEMO_USER, GB_BUSINESS_ID, GB_NAME, IE_BUSINESS_ID, IE_NAME, OTHER_BUSINESS_ID, \
    OTHER_NAME, OTHER_USER

from .conftest import CLIENT_ID, REDIRECT_URI, Api, authorize_params, code_for, connect, ok, only_error, \
    redirect_query, refresh, token_request

DAY = 24 * 3600


def test_consent_page_shows_the_user_and_a_picker_of_their_businesses(sage):
    page = sage.get("/oauth2/auth/central", query_string=authorize_params())
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and DEMO_USER in text
    assert f'name="business_id" value="{GB_BUSINESS_ID}" checked' in text
    assert f'value="{IE_BUSINESS_ID}"' in text and GB_NAME in text and IE_NAME in text
    assert OTHER_NAME not in text  # another user's business is not offered
    assert f'name="redirect_uri" value="{REDIRECT_URI}"' in text


def test_country_preselects_that_countrys_business_and_login_switches_user(sage):
    text = sage.get("/oauth2/auth/central", query_string=authorize_params(country="ie")).get_data(as_text=True)
    assert f'name="business_id" value="{IE_BUSINESS_ID}" checked' in text
    other = sage.get("/oauth2/auth/central", query_string=authorize_params(login=OTHER_USER)).get_data(as_text=True)
    assert OTHER_NAME in other and GB_NAME not in other


def test_unknown_client_or_redirect_uri_is_shown_not_redirected(sage):
    assert sage.get("/oauth2/auth/central", query_string=authorize_params(client_id="nope")).status_code == 400
    bad = sage.get("/oauth2/auth/central", query_string={**authorize_params(), "redirect_uri": "https://evil.test/cb"})
    assert bad.status_code == 400 and "Location" not in bad.headers


def test_deny_returns_access_denied_with_the_state(sage):
    query = redirect_query(sage.post("/oauth2/auth/central", data={**authorize_params(state="s-9"),
                                                                    "decision": "deny"}))
    assert query == {"error": "access_denied", "state": "s-9"}


def test_picking_a_business_that_is_not_the_users_is_refused(sage):
    r = sage.post("/oauth2/auth/central", data={**authorize_params(), "business_id": OTHER_BUSINESS_ID,
                                                "decision": "allow"})
    assert r.status_code == 400 and "Location" not in r.headers


def test_code_exchange_gives_sages_lifetimes_and_the_code_is_single_use(sage):
    code = code_for(sage)
    body = ok(token_request(sage, grant_type="authorization_code", code=code))
    assert body["expires_in"] == 300 and body["refresh_token_expires_in"] == 31 * DAY
    assert body["token_type"] == "bearer" and body["scope"] == "full_access" and body["requested_by_id"]
    again = token_request(sage, grant_type="authorization_code", code=code)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_a_code_older_than_60_seconds_is_invalid_grant(sage):
    code = code_for(sage)
    ok(sage.post("/_control/age_tokens", json={"seconds": 61}))
    r = token_request(sage, grant_type="authorization_code", code=code)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_a_redirect_uri_that_differs_is_invalid_grant(sage):
    r = token_request(sage, grant_type="authorization_code", code=code_for(sage), redirect_uri=REDIRECT_URI + "/")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_wrong_client_secret_is_invalid_client(sage):
    r = sage.post("/token", data={"grant_type": "authorization_code", "code": code_for(sage), "client_id": CLIENT_ID,
                                  "client_secret": "wrong", "redirect_uri": REDIRECT_URI})
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"


def test_refresh_rotates_and_a_used_refresh_token_is_dead_at_once(sage):
    first = connect(sage)
    new = ok(refresh(sage, first["refresh_token"]))
    assert new["refresh_token"] != first["refresh_token"] and new["access_token"] != first["access_token"]
    reused = refresh(sage, first["refresh_token"])
    assert reused.status_code == 400 and reused.get_json()["error"] == "invalid_grant"
    ok(refresh(sage, new["refresh_token"]))
    stats = ok(sage.get("/_control/stats"))
    assert stats["rotations"] == 2 and stats["invalid_grants"] == 1


def test_a_refresh_token_dies_after_31_days_unused_but_a_refresh_within_them_keeps_the_connection(sage):
    first = connect(sage)
    ok(sage.post("/_control/age_tokens", json={"seconds": 30 * DAY}))
    kept = ok(refresh(sage, first["refresh_token"]))  # a keep-alive refresh on day 30
    ok(sage.post("/_control/age_tokens", json={"seconds": 30 * DAY}))
    later = ok(refresh(sage, kept["refresh_token"]))  # day 60: alive, 30 days after the last refresh
    ok(sage.post("/_control/age_tokens", json={"seconds": 31 * DAY + 1}))
    dead = refresh(sage, later["refresh_token"])
    assert dead.status_code == 400 and dead.get_json()["error"] == "invalid_grant"


def test_short_lifetimes_through_the_control_api(sage):
    lifetimes = ok(sage.post("/_control/lifetimes", json={"access_token_seconds": 5, "refresh_token_seconds": 60}))
    assert lifetimes == {"access_token_seconds": 5, "refresh_token_seconds": 60, "code_seconds": 60}
    tokens = connect(sage)
    assert tokens["expires_in"] == 5 and tokens["refresh_token_expires_in"] == 60
    ok(sage.post("/_control/age_tokens", json={"seconds": 6}))
    assert Api(sage, tokens["access_token"]).get("/contacts").status_code == 401
    ok(sage.post("/_control/age_tokens", json={"seconds": 55}))
    assert refresh(sage, tokens["refresh_token"]).status_code == 400
    ok(sage.post("/_control/reset"))
    assert ok(sage.post("/_control/lifetimes", json={}))["refresh_token_seconds"] == 31 * DAY


def test_revoke_ends_the_grant(sage):
    tokens = connect(sage)
    r = sage.post("/revoke", data={"client_id": CLIENT_ID, "client_secret": "planman-dev-secret",
                                   "token": tokens["refresh_token"]})
    assert r.status_code == 200
    assert refresh(sage, tokens["refresh_token"]).status_code == 400
    assert Api(sage, tokens["access_token"]).get("/contacts").status_code == 401


def test_a_user_disconnecting_in_sage_revokes_every_grant(sage, tokens):
    assert ok(sage.post("/_control/revoke"))["revoked_grants"] == 1
    assert refresh(sage, tokens["refresh_token"]).status_code == 400


def test_expired_missing_or_unknown_tokens_answer_401_with_the_error_array(sage, tokens, api):
    assert api.get("/contacts").status_code == 200
    ok(sage.post("/_control/expire_tokens"))
    error = only_error(api.get("/contacts"), 401)
    assert error["$dataCode"] == "AuthorizationFailure" and error["$severity"] == "error"
    assert only_error(Api(sage, "nope").get("/contacts"), 401)["$dataCode"] == "AuthorizationFailure"
    assert sage.get("/v3.1/contacts").status_code == 401


def test_businesses_lists_the_users_businesses_and_lead_is_the_one_picked(sage):
    api = Api(sage, connect(sage, business_id=IE_BUSINESS_ID)["access_token"], business_id=None)
    listed = ok(api.get("/businesses"))
    assert [(b["id"], b["displayed_as"]) for b in listed["$items"]] == [(GB_BUSINESS_ID, GB_NAME),
                                                                        (IE_BUSINESS_ID, IE_NAME)]
    assert listed["$total"] == 2
    lead = ok(api.get("/businesses/lead"))
    assert lead["id"] == IE_BUSINESS_ID and lead["country"]["id"] == "IE" and lead["is_demo"] is True
    assert ok(api.get(f"/businesses/{GB_BUSINESS_ID}"))["currency"]["id"] == "GBP"
    assert api.get(f"/businesses/{OTHER_BUSINESS_ID}").status_code == 404


def test_drop_token_answers_spends_the_refresh_token_and_loses_the_new_pair(sage, tokens):
    ok(sage.post("/_control/faults", json={"drop_next_token_answers": 1}))
    with pytest.raises(LostResponse):
        refresh(sage, tokens["refresh_token"])
    retry = refresh(sage, tokens["refresh_token"])  # the lost answer's retry: Sage has no grace period
    assert retry.status_code == 400 and retry.get_json()["error"] == "invalid_grant"
