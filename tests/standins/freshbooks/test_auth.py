"""FreshBooks' OAuth as REFERENCE.md sections 1-2 describe it: no PKCE, 12-hour access tokens,
single-use refresh tokens with no grace period, revoke, and /users/me's business memberships."""
import time

from standins.freshbooks.demo import UK_ACCOUNT_ID, UK_NAME, US_ACCOUNT_ID, US_NAME

from .conftest import CLIENT_ID, REDIRECT_URI, Api, authorize_params, code_for, connect, redirect_query, token_request


def test_consent_page_shows_the_identity_and_its_business_memberships(fb):
    page = fb.get("/oauth/authorize", query_string=authorize_params())
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "demo@freshbooks-stand-in.test" in text and UK_NAME in text and US_NAME in text
    assert f'name="redirect_uri" value="{REDIRECT_URI}"' in text


def test_unknown_client_or_redirect_uri_is_shown_not_redirected(fb):
    assert fb.get("/oauth/authorize", query_string=authorize_params(client_id="nope")).status_code == 400
    bad = fb.get("/oauth/authorize", query_string={**authorize_params(), "redirect_uri": "https://evil.test/cb"})
    assert bad.status_code == 400 and "Location" not in bad.headers


def test_deny_returns_access_denied_with_the_state(fb):
    query = redirect_query(fb.post("/oauth/authorize", data={**authorize_params(state="s-9"), "decision": "deny"}))
    assert query == {"error": "access_denied", "state": "s-9"}


def test_code_exchange_gives_a_12_hour_token_pair_and_the_code_is_single_use(fb):
    code = code_for(fb)
    first = token_request(fb, grant_type="authorization_code", code=code)
    body = first.get_json()
    assert first.status_code == 200
    assert body["expires_in"] == 12 * 3600 and body["token_type"] == "Bearer"
    assert abs(body["created_at"] - time.time()) < 60 and body["refresh_token"] and body["access_token"]
    again = token_request(fb, grant_type="authorization_code", code=code)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_wrong_client_secret_is_invalid_client(fb):
    r = fb.post("/auth/oauth/token", data={"grant_type": "authorization_code", "code": code_for(fb),
                                           "client_id": CLIENT_ID, "client_secret": "wrong",
                                           "redirect_uri": REDIRECT_URI})
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"


def test_refresh_rotates_and_a_reused_refresh_token_is_invalid_grant_at_once(fb):
    first = connect(fb)
    refreshed = token_request(fb, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refreshed.status_code == 200
    new = refreshed.get_json()
    assert new["refresh_token"] != first["refresh_token"] and new["access_token"] != first["access_token"]
    # No grace period: the lost-answer retry of the same refresh fails (REFERENCE.md section 1).
    reused = token_request(fb, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.status_code == 400 and reused.get_json()["error"] == "invalid_grant"
    assert token_request(fb, grant_type="refresh_token", refresh_token=new["refresh_token"]).status_code == 200
    stats = fb.get("/_control/stats").get_json()
    assert stats["rotations"] == 2 and stats["invalid_grants"] == 1 and stats["grace_refreshes"] == 0


def test_a_grace_period_can_be_configured_through_the_control_api(fb):
    first = connect(fb)
    assert fb.post("/_control/lifetimes", json={"refresh_grace_seconds": 60}).get_json()["refresh_grace_seconds"] == 60
    assert token_request(fb, grant_type="refresh_token", refresh_token=first["refresh_token"]).status_code == 200
    assert token_request(fb, grant_type="refresh_token", refresh_token=first["refresh_token"]).status_code == 200
    fb.post("/_control/reset")
    assert fb.post("/_control/lifetimes", json={}).get_json()["refresh_grace_seconds"] is None


def test_users_me_lists_at_least_two_business_memberships_with_account_ids(fb, tokens):
    r = fb.get("/auth/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    me = r.get_json()["response"]
    assert me["email"] == "demo@freshbooks-stand-in.test"
    businesses = [(m["business"]["account_id"], m["business"]["name"]) for m in me["business_memberships"]]
    assert businesses == [(UK_ACCOUNT_ID, UK_NAME), (US_ACCOUNT_ID, US_NAME)]
    assert all(m["id"] != m["business"]["id"] for m in me["business_memberships"])  # membership id is not business id


def test_expired_or_unknown_tokens_answer_401(fb, tokens, api):
    assert api.get("/users/clients").status_code == 200
    assert fb.post("/_control/expire_tokens").get_json()["expired"] == 1
    expired = api.get("/users/clients")
    assert expired.status_code == 401 and "expired" in expired.get_json()["error_description"]
    assert Api(fb, "not-a-token").get("/users/clients").status_code == 401
    assert fb.get("/auth/api/v1/users/me").status_code == 401


def test_revoke_ends_the_grant_for_access_and_refresh_tokens(fb, tokens, api):
    r = fb.post("/auth/oauth/revoke", json={"client_id": CLIENT_ID, "client_secret": "planman-dev-secret",
                                            "token": tokens["refresh_token"]})
    assert r.status_code == 200
    assert api.get("/users/clients").status_code == 401
    assert token_request(fb, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).status_code == 400


def test_access_token_lifetime_is_configurable(fb):
    fb.post("/_control/lifetimes", json={"access_token_seconds": 5})
    assert connect(fb)["expires_in"] == 5


def test_two_workers_refreshing_with_one_token_at_once_get_one_new_pair(fb_app, fb):
    """What PlanMan's lock must prevent: with no grace period the slower of two concurrent refreshes loses."""
    import threading

    import requests
    from werkzeug.serving import make_server

    first = connect(fb)
    server = make_server("127.0.0.1", 0, fb_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    statuses, start = [], threading.Barrier(4)

    def refresh():
        start.wait()
        statuses.append(requests.post(f"http://127.0.0.1:{server.server_port}/auth/oauth/token", json={
            "grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": CLIENT_ID,
            "client_secret": "planman-dev-secret", "redirect_uri": REDIRECT_URI}, timeout=30).status_code)

    workers = [threading.Thread(target=refresh) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    server.shutdown()
    thread.join(5)
    assert sorted(statuses) == [200, 400, 400, 400]
    assert fb.get("/_control/stats").get_json()["rotations"] == 1


def test_a_lost_refresh_answer_spends_the_refresh_token_all_the_same(fb):
    import pytest

    from standins.core.faults import LostResponse

    first = connect(fb)
    assert fb.post("/_control/faults", json={"drop_next_token_answers": 1}).status_code == 200
    with pytest.raises(LostResponse):
        token_request(fb, grant_type="refresh_token", refresh_token=first["refresh_token"])
    # The rotation happened; the caller never heard of the new pair, and the old token is dead.
    retried = token_request(fb, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert retried.status_code == 400 and retried.get_json()["error"] == "invalid_grant"
    stats = fb.get("/_control/stats").get_json()
    assert stats["rotations"] == 1 and stats["lost_responses"] == 1
