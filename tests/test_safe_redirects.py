"""Every ``next`` goes through planman.security.safe_next: log-in's query
parameter and the bulk forms' hidden field never send anyone off the site,
however the address is disguised (browsers drop tabs and newlines inside a URL
and read a backslash as a slash)."""
from __future__ import annotations

import pytest

from tests.conftest import csrf_token_from
from tests.helpers import PASSWORD, logout, post_form, signup

OFF_SITE = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example/x",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "///evil.example",
    "/\x00/evil.example",
    "https:/evil.example",
]


@pytest.mark.parametrize("next_url", OFF_SITE)
def test_login_never_redirects_off_site(client, next_url):
    signup(client, email="nexter@example.com")
    logout(client)
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", query_string={"next": next_url},
                           data={"csrf_token": token, "email": "nexter@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/"


@pytest.mark.parametrize("next_url", OFF_SITE)
def test_bulk_forms_never_redirect_off_site(client, next_url):
    signup(client)
    response = post_form(client, "/integrations/bulk",
                         {"record_type": "client", "mode": "not_sent", "next": next_url}, form_url="/clients/")
    assert response.status_code == 302 and response.headers["Location"] == "/clients/"


def test_a_path_on_the_site_is_followed(client):
    signup(client)
    response = post_form(client, "/integrations/bulk",
                         {"record_type": "client", "mode": "not_sent", "next": "/clients/?q=acme&page=2"},
                         form_url="/clients/")
    assert response.headers["Location"] == "/clients/?q=acme&page=2"
