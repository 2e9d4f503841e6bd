"""Sessions: log-in, sign-up and accepting an invite start a fresh session
(a CSRF token from before no longer works), and logging out, changing a
password, being removed or demoted ends that user's other sessions."""
from __future__ import annotations

from tests.conftest import csrf_token_from
from tests.helpers import PASSWORD, logout, signup


def _token(client, url):
    return csrf_token_from(client.get(url).get_data(as_text=True))


def test_a_csrf_token_from_before_log_in_is_refused_after_it(client):
    user = signup(client)
    logout(client)
    before = _token(client, "/login")
    response = client.post("/login", data={"csrf_token": before, "email": user.email, "password": PASSWORD})
    assert response.status_code == 302 and client.get("/clients/").status_code == 200
    refused = client.post("/logout", data={"csrf_token": before})
    assert refused.status_code == 400
    assert client.get("/clients/").status_code == 200  # still logged in: the stale token did nothing
    assert client.post("/logout", data={"csrf_token": _token(client, "/clients/")}).status_code == 302


def test_a_csrf_token_from_before_sign_up_is_refused_after_it(client):
    before = _token(client, "/signup")
    response = client.post("/signup", data={
        "csrf_token": before, "firm_name": "Fresh Ltd", "currency": "GBP", "name": "Fay Fresh",
        "email": "fay@example.com", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    assert client.post("/logout", data={"csrf_token": before}).status_code == 400
    assert client.get("/clients/").status_code == 200
