"""Invite links: built on PUBLIC_BASE_URL whatever Host the request names, and
they expire (INVITE_LINK_DAYS), saying so plainly when used late."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import User, utcnow
from tests.conftest import csrf_token_from
from tests.helpers import new_client, post_form, signup


def _post_via(client, url, data, host):
    """POST with ``Host: host``, carrying the browser's session and CSRF token there."""
    token = csrf_token_from(client.get("/setup/users").get_data(as_text=True))
    client.set_cookie("session", client.get_cookie("session").value, domain=host)
    return client.post(url, data={"csrf_token": token, **data}, headers={"Host": host}, follow_redirects=True)


def _invite(client, host=None):
    data = {"name": "Ivy Invitee", "email": "ivy@example.com", "access": "invite", "password": ""}
    if host:
        response = _post_via(client, "/setup/users/new", data, host)
    else:
        response = post_form(client, "/setup/users/new", data, follow_redirects=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    return re.search(r'id="invite-url" value="([^"]+)"', html).group(1), html


def _ivy():
    return db.session.scalar(sa.select(User).where(User.email == "ivy@example.com"))


def test_invite_links_ignore_the_host_header(client):
    signup(client)
    url, _ = _invite(client, host="evil.example")
    assert url.startswith("http://planman.test/invite/")  # TestConfig's PUBLIC_BASE_URL
    again = _post_via(client, f"/setup/users/{_ivy().id}/invite", {}, "evil.example")
    assert re.search(r'id="invite-url" value="http://planman\.test/invite/', again.get_data(as_text=True))
    assert "evil.example" not in again.get_data(as_text=True)


def test_an_invite_link_works_for_seven_days_and_then_says_it_has_expired(app, client):
    signup(client)
    before = utcnow()
    url, html = _invite(client)
    ivy = _ivy()
    assert before + timedelta(days=7) <= ivy.invite_expires_at <= utcnow() + timedelta(days=7)
    assert "(7 days from now)" in html
    path = url.removeprefix("http://planman.test")

    invitee = new_client(app)
    assert invitee.get(path).status_code == 200
    ivy.invite_expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    late = invitee.get(path)
    assert late.status_code == 410
    text = late.get_data(as_text=True)
    assert "This invite link has expired" in text and "Invite links work for 7 days" in text
    assert "Ask an administrator of" in text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', invitee.get("/login").get_data(as_text=True))
    refused = invitee.post(path, data={"csrf_token": token.group(1), "password": "a long password",
                                       "confirm": "a long password"})
    assert refused.status_code == 410 and _ivy().password_hash is None
    # A new link from the admin works again.
    fresh = post_form(client, f"/setup/users/{ivy.id}/invite", {}, form_url="/setup/users", follow_redirects=True)
    new_path = re.search(r'id="invite-url" value="http://planman\.test([^"]+)"', fresh.get_data(as_text=True)).group(1)
    assert invitee.get(new_path).status_code == 200


class TestConfigurable:
    @pytest.fixture
    def config_overrides(self):
        return {"INVITE_LINK_DAYS": 2}

    def test_the_lifetime_comes_from_invite_link_days(self, client):
        signup(client)
        _, html = _invite(client)
        assert "(2 days from now)" in html
        assert _ivy().invite_expires_at <= utcnow() + timedelta(days=2)
