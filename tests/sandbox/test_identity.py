"""OAuth 2.0 as Xero does it: consent, code exchange with PKCE, rotation with grace, revocation."""
import base64
import json
import time

import pytest

from xero_sandbox import create_app
from xero_sandbox.demo import UK_NAME, UK_TENANT_ID, US_NAME, US_TENANT_ID

from .conftest import (API, REDIRECT_URI, SCOPE, Api, authorize_params, basic_auth, connect, consent, pkce_pair,
                       redirect_query)


def refresh(xero, refresh_token, **kw):
    return xero.post("/connect/token", headers=basic_auth(),
                     data={"grant_type": "refresh_token", "refresh_token": refresh_token, **kw})


def test_discovery_names_the_endpoints_on_this_host(xero):
    doc = xero.get("/.well-known/openid-configuration").get_json()
    assert doc["issuer"] == "http://localhost"
    assert doc["authorization_endpoint"] == "http://localhost/identity/connect/authorize"
    assert doc["token_endpoint"] == "http://localhost/connect/token"
    assert doc["revocation_endpoint"] == "http://localhost/connect/revocation"


def test_consent_page_offers_each_demo_organisation(xero):
    r = xero.get("/identity/connect/authorize", query_string=authorize_params())
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    for tenant_id, name in ((UK_TENANT_ID, UK_NAME), (US_TENANT_ID, US_NAME)):
        assert f'name="tenant" value="{tenant_id}"' in html and name in html
    assert '<button type="submit" name="decision" value="allow">Allow access</button>' in html
    assert '<button type="submit" name="decision" value="deny">Deny</button>' in html
    assert f'name="redirect_uri" value="{REDIRECT_URI}"' in html


@pytest.mark.parametrize("override, message", [
    ({"client_id": "someone-else"}, "Unknown client_id"),
    ({"redirect_uri": "https://evil.example/callback"}, "redirect_uri is not registered"),
    ({"redirect_uri": "http://127.0.0.1/no-port"}, "redirect_uri is not registered"),
])
def test_consent_refuses_unknown_client_or_redirect_without_redirecting(xero, override, message):
    r = xero.get("/identity/connect/authorize", query_string={**authorize_params(), **override})
    assert r.status_code == 400 and message in r.get_data(as_text=True)


def test_configured_redirect_uris_are_matched_exactly(tmp_path):
    app = create_app({"DATABASE": str(tmp_path / "x.db"), "REDIRECT_URIS": [REDIRECT_URI]})
    client = app.test_client()
    assert client.get("/identity/connect/authorize", query_string=authorize_params()).status_code == 200
    other = {**authorize_params(), "redirect_uri": REDIRECT_URI + "/x"}
    assert client.get("/identity/connect/authorize", query_string=other).status_code == 400


def test_deny_redirects_back_with_access_denied_and_state(xero):
    query = redirect_query(consent(xero, authorize_params(state="s-1"), decision="deny"))
    assert query == {"error": "access_denied", "state": "s-1"}


def test_allow_without_an_organisation_shows_the_page_again(xero):
    r = consent(xero, authorize_params(), tenants=())
    assert r.status_code == 200
    assert "Select at least one organisation" in r.get_data(as_text=True)


def test_allow_redirects_with_code_and_state(xero):
    query = redirect_query(consent(xero, authorize_params(state="s-2")))
    assert query["state"] == "s-2" and len(query["code"]) > 20


def _exchange(xero, code, verifier=None, **kw):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    if verifier:
        data["code_verifier"] = verifier
    data.update(kw.pop("data", {}))
    return xero.post("/connect/token", data=data, **kw)


def test_code_exchange_gives_xero_shaped_tokens_and_code_is_single_use(xero):
    verifier, challenge = pkce_pair()
    code = redirect_query(consent(xero, authorize_params(challenge)))["code"]
    first = _exchange(xero, code, verifier, headers=basic_auth())
    body = first.get_json()
    assert first.status_code == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800 and body["scope"] == SCOPE
    assert body["access_token"] != body["refresh_token"]
    again = _exchange(xero, code, verifier, headers=basic_auth())
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_client_secret_may_also_come_in_the_form(xero):
    code = redirect_query(consent(xero, authorize_params()))["code"]
    r = _exchange(xero, code, data={"client_id": "planman-dev", "client_secret": "planman-dev-secret"})
    assert r.status_code == 200


def test_wrong_secret_is_invalid_client(xero):
    code = redirect_query(consent(xero, authorize_params()))["code"]
    r = _exchange(xero, code, headers=basic_auth(secret="wrong"))
    assert r.status_code == 401 and r.get_json() == {"error": "invalid_client"}


def test_pkce_verifier_is_checked(xero):
    _verifier, challenge = pkce_pair()
    code = redirect_query(consent(xero, authorize_params(challenge)))["code"]
    assert _exchange(xero, code, "not-the-verifier", headers=basic_auth()).get_json()["error"] == "invalid_grant"
    code = redirect_query(consent(xero, authorize_params(challenge)))["code"]
    assert _exchange(xero, code, headers=basic_auth()).get_json()["error"] == "invalid_grant"


def test_redirect_uri_must_equal_the_authorised_one(xero):
    code = redirect_query(consent(xero, authorize_params()))["code"]
    r = _exchange(xero, code, headers=basic_auth(), data={"redirect_uri": "http://127.0.0.1:5000/other"})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_unknown_grant_type(xero):
    r = xero.post("/connect/token", headers=basic_auth(), data={"grant_type": "password"})
    assert r.status_code == 400 and r.get_json() == {"error": "unsupported_grant_type"}


def test_no_refresh_token_without_offline_access(xero):
    assert "refresh_token" not in connect(xero, scope="accounting.contacts")


def test_refresh_rotates_and_old_token_works_during_grace_then_invalid_grant(xero):
    tokens = connect(xero)
    xero.post("/_control/lifetimes", json={"refresh_grace_seconds": 1})
    first = refresh(xero, tokens["refresh_token"]).get_json()
    assert first["refresh_token"] != tokens["refresh_token"]
    assert first["access_token"] != tokens["access_token"]
    assert Api(xero, first["access_token"]).get("/Organisation").status_code == 200

    # The response was "lost": the old token still works inside the grace period...
    retry = refresh(xero, tokens["refresh_token"])
    assert retry.status_code == 200 and retry.get_json()["refresh_token"] != first["refresh_token"]
    time.sleep(1.2)
    # ...and not after it.
    late = refresh(xero, tokens["refresh_token"])
    assert late.status_code == 400 and late.get_json() == {"error": "invalid_grant"}
    # Tokens from the rotation are unaffected.
    assert refresh(xero, first["refresh_token"]).status_code == 200
    stats = xero.get("/_control/stats").get_json()
    assert stats["rotations"] == 2 and stats["grace_refreshes"] == 1 and stats["invalid_grants"] == 1


def test_unknown_refresh_token_is_invalid_grant(xero):
    assert refresh(xero, "nope").get_json() == {"error": "invalid_grant"}


def test_expired_access_token_gets_401_token_expired(xero):
    xero.post("/_control/lifetimes", json={"access_token_seconds": 1})
    tokens = connect(xero)
    api = Api(xero, tokens["access_token"])
    assert api.get("/Organisation").status_code == 200
    time.sleep(1.1)
    r = api.get("/Organisation")
    assert r.status_code == 401
    assert r.get_json()["title"] == "Unauthorized" and r.get_json()["detail"].startswith("TokenExpired")
    fresh = refresh(xero, tokens["refresh_token"]).get_json()
    assert fresh["expires_in"] == 1
    assert Api(xero, fresh["access_token"]).get("/Organisation").status_code == 200


def test_control_expire_tokens(xero, api):
    xero.post("/_control/expire_tokens")
    assert api.get("/Organisation").status_code == 401


def test_unknown_bearer_gets_401(xero):
    r = Api(xero, "made-up").get("/Organisation")
    assert r.status_code == 401 and r.get_json()["title"] == "Unauthorized"


def test_revocation_removes_tokens_and_connections(xero):
    tokens = connect(xero, tenants=(UK_TENANT_ID, US_TENANT_ID))
    r = xero.post("/connect/revocation", headers=basic_auth(), data={"token": tokens["refresh_token"]})
    assert r.status_code == 200
    assert refresh(xero, tokens["refresh_token"]).get_json() == {"error": "invalid_grant"}
    assert Api(xero, tokens["access_token"]).get("/Organisation").status_code == 401
    assert [o["connections"] for o in xero.get("/_control/state").get_json()["organisations"]] == [[], []]


def test_revocation_needs_client_auth(xero, tokens):
    r = xero.post("/connect/revocation", data={"token": tokens["refresh_token"]})
    assert r.status_code == 401
    assert refresh(xero, tokens["refresh_token"]).status_code == 200


def _connections(xero, token, **query):
    return xero.get("/connections", headers={"Authorization": f"Bearer {token}"}, query_string=query)


def test_connections_list_and_delete_by_connection_id(xero):
    tokens = connect(xero, tenants=(UK_TENANT_ID, US_TENANT_ID))
    token = tokens["access_token"]
    listed = _connections(xero, token).get_json()
    assert {c["tenantId"] for c in listed} == {UK_TENANT_ID, US_TENANT_ID}
    uk = next(c for c in listed if c["tenantId"] == UK_TENANT_ID)
    assert uk["tenantType"] == "ORGANISATION" and uk["tenantName"] == UK_NAME
    assert set(uk) == {"id", "authEventId", "tenantId", "tenantType", "tenantName", "createdDateUtc", "updatedDateUtc"}
    assert _connections(xero, token, authEventId=uk["authEventId"]).get_json() == listed

    headers = {"Authorization": f"Bearer {token}"}
    assert xero.delete(f"/connections/{UK_TENANT_ID}", headers=headers).status_code == 404  # tenantId is not the id
    assert xero.delete(f"/connections/{uk['id']}", headers=headers).status_code == 204
    assert [c["tenantId"] for c in _connections(xero, token).get_json()] == [US_TENANT_ID]
    assert Api(xero, token, UK_TENANT_ID).get("/Organisation").status_code == 403
    assert Api(xero, token, US_TENANT_ID).get("/Organisation").status_code == 200


def test_connections_need_a_bearer_token(xero):
    assert xero.get("/connections").status_code == 401


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_connections_list_every_organisation_the_user_connected_and_auth_event_id_tells_the_new_ones(xero):
    """Real Xero lists all of a user's connections to the app (behaviour changed by issue 11:
    the stand-in used to list only the latest approval's)."""
    first = connect(xero, tenants=(UK_TENANT_ID,))
    second = connect(xero, tenants=(US_TENANT_ID,))
    first_event, second_event = (claims(t["access_token"])["authentication_event_id"] for t in (first, second))
    assert first_event != second_event
    for tokens in (first, second):
        listed = _connections(xero, tokens["access_token"]).get_json()
        assert [(c["tenantId"], c["authEventId"]) for c in listed] == [
            (UK_TENANT_ID, first_event), (US_TENANT_ID, second_event)]
    just_added = _connections(xero, second["access_token"], authEventId=second_event).get_json()
    assert [c["tenantId"] for c in just_added] == [US_TENANT_ID]
    # Either token reaches either organisation: access follows the user's connections.
    assert Api(xero, first["access_token"], US_TENANT_ID).get("/Organisation").status_code == 200

    # Approving an organisation again keeps its connection and moves it to the new approval.
    uk_before = next(c for c in _connections(xero, first["access_token"]).get_json() if c["tenantId"] == UK_TENANT_ID)
    time.sleep(1.1)  # createdDateUtc/updatedDateUtc have whole seconds
    third = connect(xero, tenants=(UK_TENANT_ID,))
    third_event = claims(third["access_token"])["authentication_event_id"]
    again = _connections(xero, third["access_token"], authEventId=third_event).get_json()
    assert [(c["id"], c["createdDateUtc"]) for c in again] == [(uk_before["id"], uk_before["createdDateUtc"])]
    assert again[0]["updatedDateUtc"] > uk_before["updatedDateUtc"]
    assert len(_connections(xero, third["access_token"]).get_json()) == 2


def test_other_xero_users_do_not_see_each_others_connections(xero):
    ann = connect(xero, tenants=(UK_TENANT_ID,), user="ann@firm-a.test")
    bob = connect(xero, tenants=(US_TENANT_ID,), user="bob@firm-b.test")
    assert [c["tenantId"] for c in _connections(xero, ann["access_token"]).get_json()] == [UK_TENANT_ID]
    assert [c["tenantId"] for c in _connections(xero, bob["access_token"]).get_json()] == [US_TENANT_ID]
    assert Api(xero, ann["access_token"], US_TENANT_ID).get("/Organisation").status_code == 403
    bob_us = _connections(xero, bob["access_token"]).get_json()[0]["id"]
    headers = {"Authorization": f"Bearer {ann['access_token']}"}
    assert xero.delete(f"/connections/{bob_us}", headers=headers).status_code == 404


def test_revoking_a_refresh_token_removes_all_the_users_connections_to_the_app(xero):
    first = connect(xero, tenants=(UK_TENANT_ID,))
    second = connect(xero, tenants=(US_TENANT_ID,))
    other = connect(xero, tenants=(UK_TENANT_ID,), user="someone@else.test")
    assert xero.post("/connect/revocation", headers=basic_auth(), data={"token": first["refresh_token"]}).status_code == 200
    assert _connections(xero, second["access_token"]).get_json() == []
    assert [c["tenantId"] for c in _connections(xero, other["access_token"]).get_json()] == [UK_TENANT_ID]


def test_access_tokens_are_jwts_with_xeros_claims_signed_by_the_published_key(xero):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    tokens = connect(xero, tenants=(UK_TENANT_ID,), user="Ann@Firm-A.test")
    token = tokens["access_token"]
    body = claims(token)
    assert set(body) == {"nbf", "exp", "iss", "aud", "client_id", "sub", "auth_time", "xero_userid",
                         "global_session_id", "sid", "jti", "authentication_event_id", "scope"}
    assert body["exp"] - body["nbf"] == 1800 and body["client_id"] == "planman-dev"
    assert body["iss"] == "http://localhost" and body["aud"] == "http://localhost/resources"
    assert body["scope"] == SCOPE.split()
    assert body["authentication_event_id"] == _connections(xero, token).get_json()[0]["authEventId"]
    assert body["xero_userid"] == claims(connect(xero, user="ann@firm-a.test")["access_token"])["xero_userid"]
    refreshed = refresh(xero, tokens["refresh_token"]).get_json()["access_token"]
    assert claims(refreshed)["authentication_event_id"] == body["authentication_event_id"]

    head = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    jwks_uri = xero.get("/.well-known/openid-configuration").get_json()["jwks_uri"]
    key = next(k for k in xero.get(jwks_uri).get_json()["keys"] if k["kid"] == header["kid"])

    def number(b64: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)), "big")
    public = rsa.RSAPublicNumbers(number(key["e"]), number(key["n"])).public_key()
    signed, signature = token.rsplit(".", 1)
    public.verify(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)), signed.encode(),
                  padding.PKCS1v15(), hashes.SHA256())  # raises if the signature is wrong


def _forbidden(r):
    body = r.get_json()
    return r.status_code == 403 and body["title"] == "Forbidden" and body["detail"] == "AuthenticationUnsuccessful"


def test_tenant_header_missing_unknown_or_not_connected_is_403(xero, api):
    token = api.token
    assert _forbidden(xero.get(API + "/Organisation", headers={"Authorization": f"Bearer {token}"}))
    assert _forbidden(Api(xero, token, "00000000-0000-4000-8000-000000000000").get("/Organisation"))
    assert _forbidden(Api(xero, token, US_TENANT_ID).get("/Organisation"))  # only the UK org was ticked


def test_control_revoke_cuts_off_the_organisation(xero, api):
    assert api.get("/Organisation").status_code == 200
    assert xero.post("/_control/revoke", json={"tenant_id": UK_TENANT_ID}).get_json() == {"removed_connections": 1}
    assert _forbidden(api.get("/Organisation"))


def test_scopes_are_enforced(xero):
    tokens = connect(xero, scope="offline_access accounting.contacts.read")
    api = Api(xero, tokens["access_token"])
    assert api.get("/Contacts").status_code == 200
    r = api.get("/Invoices")
    assert r.status_code == 401 and r.get_json()["detail"] == "AuthorizationUnsuccessful"
    assert api.put("/Contacts", {"Contacts": [{"Name": "X"}]}).status_code == 401


def test_connections_answer_under_the_specs_spelling_too(xero, no_violations):
    """xero-python calls GET /Connections and DELETE /Connections/{id}, as the identity spec spells them."""
    token = connect(xero, tenants=(UK_TENANT_ID, US_TENANT_ID))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    capital = xero.get("/Connections", headers=headers)
    assert capital.status_code == 200
    assert capital.get_json() == _connections(xero, token).get_json()
    uk = next(c for c in capital.get_json() if c["tenantId"] == UK_TENANT_ID)
    assert xero.delete(f"/Connections/{uk['id']}", headers=headers).status_code == 204
    assert [c["tenantId"] for c in xero.get("/Connections", headers=headers).get_json()] == [US_TENANT_ID]
