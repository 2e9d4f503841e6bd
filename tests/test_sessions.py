"""Sessions: log-in, sign-up and accepting an invite start a fresh session
(a CSRF token from before no longer works), and logging out, changing a
password, being removed or demoted ends that user's other sessions."""
from __future__ import annotations

import sqlalchemy as sa

from planman.extensions import db
from planman.models import User
from tests.conftest import csrf_token_from
from tests.helpers import PASSWORD, login, logout, new_client, post_form, signup


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


def _copy_of(client, app):
    """Another browser holding a copy of ``client``'s session cookie (as a thief would)."""
    thief = new_client(app)
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def _signed_in(browser) -> bool:
    return browser.get("/clients/").status_code == 200


def test_a_cookie_copied_before_logout_stops_working_at_logout(app, client):
    signup(client)
    thief = _copy_of(client, app)
    assert _signed_in(thief)
    logout(client)
    assert not _signed_in(thief)
    assert thief.get("/clients/").headers["Location"].startswith("/login")


def test_changing_the_password_ends_other_sessions_but_not_this_one(app, client):
    user = signup(client)
    elsewhere = new_client(app)
    login(elsewhere, user.email)
    thief = _copy_of(client, app)
    wrong = post_form(client, "/account/password",
                      {"current_password": "not it at all", "password": "a new long password",
                       "confirm": "a new long password"})
    assert wrong.status_code == 400 and "This is not your current password." in wrong.get_data(as_text=True)
    assert _signed_in(elsewhere) and _signed_in(thief)

    response = post_form(client, "/account/password",
                         {"current_password": PASSWORD, "password": "a new long password",
                          "confirm": "a new long password"})
    assert response.status_code == 302
    assert _signed_in(client)
    assert not _signed_in(elsewhere) and not _signed_in(thief)
    assert login(elsewhere, user.email).status_code == 400  # the old password is gone
    assert login(elsewhere, user.email, "a new long password").status_code == 302


def _colleague(client, app, email, *, admin=False):
    response = post_form(client, "/setup/users/new", {"name": "Col League", "email": email, "access": "password",
                                                       "password": PASSWORD, "is_admin": "y" if admin else ""})
    assert response.status_code == 302
    browser = new_client(app)
    assert login(browser, email).status_code == 302 and _signed_in(browser)
    return db.session.scalar(sa.select(User).where(User.email == email)), browser


def test_removing_a_colleague_ends_their_sessions_and_log_in(app, client):
    admin = signup(client)
    colleague, their_browser = _colleague(client, app, "leaver@example.com")
    assert "Remove" in client.get("/setup/users").get_data(as_text=True)
    response = post_form(client, f"/setup/users/{colleague.id}/remove", {}, form_url="/setup/users",
                         follow_redirects=True)
    assert "Col League has been removed" in response.get_data(as_text=True)
    assert not _signed_in(their_browser)
    assert login(new_client(app), "leaver@example.com").status_code == 400
    # Yourself, never; another firm's colleague: 404.
    refused = post_form(client, f"/setup/users/{admin.id}/remove", {}, form_url="/setup/users", follow_redirects=True)
    assert "You cannot remove yourself" in refused.get_data(as_text=True) and _signed_in(client)
    stranger = new_client(app)
    signup(stranger)
    other, _ = _colleague(stranger, app, "theirs@example.com")
    assert post_form(client, f"/setup/users/{other.id}/remove", {}, form_url="/setup/users").status_code == 404
    assert client.post(f"/setup/users/{other.id}/remove").status_code in (400, 404)


def test_demoting_an_admin_ends_their_sessions(app, client):
    signup(client)
    second, their_browser = _colleague(client, app, "second-admin@example.com", admin=True)
    assert their_browser.get("/setup/").status_code == 200
    assert post_form(client, f"/setup/users/{second.id}/admin/remove", {}, form_url="/setup/users").status_code == 302
    assert not _signed_in(their_browser)
    again = new_client(app)
    assert login(again, "second-admin@example.com").status_code == 302
    assert again.get("/setup/").status_code == 404  # back as a member
    assert _signed_in(client)  # the admin who demoted them carries on


def test_accepting_an_invite_starts_a_fresh_session(app, client):
    import re

    signup(client)
    response = post_form(client, "/setup/users/new", {"name": "Ivy", "email": "ivy@example.com",
                                                       "access": "invite", "password": ""}, follow_redirects=True)
    path = re.search(r'id="invite-url" value="http://planman\.test([^"]+)"', response.get_data(as_text=True)).group(1)
    invitee = new_client(app)
    before = _token(invitee, path)
    done = invitee.post(path, data={"csrf_token": before, "password": "a long password",
                                    "confirm": "a long password"})
    assert done.status_code == 302 and _signed_in(invitee)
    assert invitee.post("/logout", data={"csrf_token": before}).status_code == 400
    assert _signed_in(invitee)
