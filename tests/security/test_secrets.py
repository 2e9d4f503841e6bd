"""After a real connect and a push that refreshed its token, the access and
refresh tokens appear nowhere in plain text: not in any database column, not
in Redis, not in the web or worker logs, not in any page or cookie. Every page
carries a Content-Security-Policy that runs only the app's own scripts."""
from __future__ import annotations

import base64
import logging
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations.tokens import load_token
from planman.models import Connection, User
from tests.helpers import PASSWORD, client, htmx_post, login, logout, make_client, make_invoice, signup, tax_rate  # noqa: F401
from tests.integration_helpers import choose_settings, connect_xero, wait_for_pushes
from tests.security.test_csrf_walk import own_urls

pytestmark = pytest.mark.integration


@pytest.fixture
def config_overrides():
    return {"PUBLIC_BASE_URL": "http://127.0.0.1:5999"}  # a redirect URI the stand-in accepts


@pytest.fixture
def app(integration_app):
    return integration_app


def tokens_of(user) -> set[str]:
    db.session.expire_all()
    token = load_token(db.session.scalar(sa.select(Connection).where(Connection.firm_id == user.firm_id)))
    return {token["access_token"], token["refresh_token"]}


def everything_in_the_database() -> str:
    parts = []
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            parts += [repr(tuple(row)) for row in conn.execute(sa.select(table))]
    return "\n".join(parts)


def everything_in_redis(redis) -> str:
    parts = []
    for key in redis.keys("*"):
        kind = redis.type(key).decode()
        value = {"string": lambda: redis.get(key), "hash": lambda: redis.hgetall(key),
                 "list": lambda: redis.lrange(key, 0, -1), "set": lambda: redis.smembers(key),
                 "zset": lambda: redis.zrange(key, 0, -1)}.get(kind, lambda: b"")()
        parts.append(repr(key) + repr(value))
    return "\n".join(parts)


def assert_csp(url, response):
    policy = dict(d.strip().split(" ", 1) for d in response.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'", url
    assert policy["script-src"] == "'self'", url
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'", url


def test_tokens_never_appear_in_database_redis_logs_pages_or_cookies(app, client, sandbox, rq_workers, caplog,
                                                                     real_redis):
    caplog.set_level(logging.DEBUG)
    rq_workers.start(1)
    admin = signup(client)
    connect_xero(client, sandbox)
    choose_settings(admin.firm_id)
    tokens = tokens_of(admin)
    sandbox.control("expire_tokens")  # the push must refresh: a second token set exists afterwards
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, lines=((2, "50.00", tax_rate(admin, "VAT 20%")),))
    htmx_post(client, f"/integrations/xero/invoice/{invoice.id}/panel", {})
    [done] = wait_for_pushes(expected=1)
    assert done.state == "succeeded", done.error_message
    tokens |= tokens_of(admin)
    assert len(tokens) == 4 and sandbox.stats()["refreshes"] >= 1

    colleague = User(firm_id=admin.firm_id, name="Col", email="col@example.com")
    colleague.set_password(PASSWORD)
    db.session.add(colleague)
    db.session.commit()
    firm = SimpleNamespace(client_id=customer.id, invoice_id=invoice.id, rate_id=tax_rate(admin, "VAT 20%").id,
                           colleague_id=colleague.id, failed_push_id=done.id, rq_job_id=done.rq_job_id,
                           bulk_id=0)
    pages = {}
    for _, url in own_urls(app, firm, "GET"):
        response = client.get(url)
        pages[url] = response.get_data().decode("utf-8", "replace")
        if response.status_code == 200 and response.mimetype == "text/html":
            assert_csp(url, response)
    assert sum("Acme Ltd" in html for html in pages.values()) >= 3  # the walk saw real pages
    logout(client)
    for url in ("/login", "/signup"):
        response = client.get(url)
        pages[url] = response.get_data(as_text=True)
        assert_csp(url, response)

    cookie = client.get_cookie("session")
    cookie_text = cookie.value + base64.urlsafe_b64decode(cookie.value.split(".")[0] + "==").decode("latin-1") \
        if cookie else ""
    places = {"database": everything_in_the_database(), "redis": everything_in_redis(real_redis),
              "web log": caplog.text, "worker logs": rq_workers.logs(), "session cookie": cookie_text,
              **{f"page {url}": html for url, html in pages.items()}}
    assert "Sending" in rq_workers.logs() or "push" in rq_workers.logs()  # the worker log is really there
    leaks = [(where, token[:6]) for where, text in places.items() for token in tokens if token in text]
    assert leaks == []


def test_session_cookie_is_httponly_and_samesite(app, client):
    user = signup(client)
    logout(client)
    response = login(client, user.email)
    [session_cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in session_cookie.split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"].lower() in ("samesite=lax", "samesite=strict")
