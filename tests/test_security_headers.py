"""Pages are never stored by browsers or proxies (Cache-Control: no-store);
static files still are. HSTS is sent when the session cookie is HTTPS-only."""
from __future__ import annotations

import pytest

from tests.helpers import make_client, signup


def test_pages_with_firm_data_are_not_stored(client):
    admin = signup(client)
    customer = make_client(admin, name="Secret Client Ltd")
    for url in ["/clients/", f"/clients/{customer.id}", "/invoices/", "/setup/users", "/login"]:
        response = client.get(url, follow_redirects=url == "/login")
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url
    assert "Strict-Transport-Security" not in client.get("/clients/").headers  # plain-HTTP development


def test_static_files_may_be_cached(client):
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")


class TestHttps:
    @pytest.fixture
    def config_overrides(self):
        return {"SESSION_COOKIE_SECURE": True}

    def test_hsts_when_the_session_cookie_is_https_only(self, client):
        response = client.get("/login", base_url="https://planman.test")
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert response.headers["Cache-Control"] == "no-store"
