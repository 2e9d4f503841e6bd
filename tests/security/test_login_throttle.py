"""Password guessing through /login, on a real Redis.

An address that has failed LOGIN_MAX_FAILURES times may not try any account;
an account that many failures closes only to the addresses that failed for
it, so the owner still logs in from anywhere else; the lock lifts by itself.
Attempts are reserved before the password is checked, so guesses sent all at
once through a real multi-threaded server are tested no more than the limit."""
from __future__ import annotations

import re
import threading
import time

import pytest
import requests

import planman.models
from tests.helpers import PASSWORD, client, logout, new_client, post_form, signup  # noqa: F401

pytestmark = pytest.mark.integration  # the package's app: counters on a real Redis

LOCKED = "Too many failed attempts"


@pytest.fixture
def config_overrides():
    # Behind one proxy, as in production: X-Forwarded-For says who is asking.
    # A window long enough that it cannot run out mid-test on a busy machine.
    return {"LOGIN_MAX_FAILURES": 5, "LOGIN_LOCKOUT_SECONDS": 300, "TRUSTED_PROXY_COUNT": 1}


def attempt(browser, email, password, ip):
    return post_form(browser, "/login", {"email": email, "password": password},
                     headers={"X-Forwarded-For": ip})


def logged_in(browser) -> bool:
    return browser.get("/clients/").status_code == 200


@pytest.fixture
def password_checks(monkeypatch):
    """How many times a password hash was actually verified (from any thread)."""
    counted = {"n": 0}
    lock = threading.Lock()
    real = planman.models.check_password_hash

    def counting(pwhash, password):
        with lock:
            counted["n"] += 1
        return real(pwhash, password)

    monkeypatch.setattr(planman.models, "check_password_hash", counting)
    return counted


def test_forty_guesses_at_once_test_at_most_the_limit(app, client, live_server, password_checks):
    email = signup(client).email
    logout(client)
    guessers = []
    for _ in range(40):  # each with its own session and CSRF token, as separate browsers would be
        session = requests.Session()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', session.get(f"{live_server}/login").text)
        guessers.append((session, token.group(1)))
    start = threading.Barrier(len(guessers))
    statuses = []

    def guess(n, session, token):
        start.wait()
        response = session.post(f"{live_server}/login", allow_redirects=False, timeout=60,
                                headers={"X-Forwarded-For": "203.0.113.7"},
                                data={"csrf_token": token, "email": email, "password": f"guess-{n}"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=guess, args=(n, *g)) for n, g in enumerate(guessers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)

    assert sorted(statuses) == [400] * 5 + [429] * 35
    assert password_checks["n"] == 5
    # The guessing address is refused even the right password; the owner, elsewhere, is not.
    guesser = requests.Session()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', guesser.get(f"{live_server}/login").text).group(1)
    refused = guesser.post(f"{live_server}/login", headers={"X-Forwarded-For": "203.0.113.7"},
                           data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert refused.status_code == 429 and LOCKED in refused.text
    owner = requests.Session()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', owner.get(f"{live_server}/login").text).group(1)
    welcome = owner.post(f"{live_server}/login", headers={"X-Forwarded-For": "198.51.100.2"},
                         data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert welcome.status_code == 200 and welcome.url == f"{live_server}/clients/"
    assert password_checks["n"] == 6


def test_a_guessing_address_is_refused_everywhere_but_cannot_lock_the_owner_out(app, client):
    victim = signup(client)
    bystander = signup(new_client(app))
    logout(client)
    for guess in range(5):
        response = attempt(client, victim.email, f"guess-{guess}", "10.0.0.1")
        assert response.status_code == 400 and "Email or password is incorrect." in response.get_data(as_text=True)

    for browser, email in [(client, victim.email),                # the right password, from the guesser
                           (new_client(app), bystander.email)]:   # another account, from the guesser
        response = attempt(browser, email, PASSWORD, "10.0.0.1")
        assert response.status_code == 429 and LOCKED in response.get_data(as_text=True)
        assert not logged_in(browser)

    # The account has failed too often, but only for 10.0.0.1: the owner elsewhere logs in.
    owner = new_client(app)
    assert attempt(owner, victim.email, PASSWORD, "10.9.9.9").status_code == 302 and logged_in(owner)

    # The counters carry the window as their time to live: let Redis run it out now.
    keys = app.redis.keys("planman:login-failures:*")
    assert keys and all(0 < app.redis.ttl(key) <= 300 for key in keys)
    for key in keys:
        app.redis.pexpire(key, 1)
    while app.redis.keys("planman:login-failures:*"):
        time.sleep(0.01)
    assert attempt(client, victim.email, PASSWORD, "10.0.0.1").status_code == 302 and logged_in(client)


def test_a_locked_account_refuses_an_address_once_it_has_failed_for_it(app, client):
    victim = signup(client)
    logout(client)
    for n, ip in enumerate(["10.0.0.1"] * 4 + ["10.0.0.2"]):  # five failures for the account, two addresses
        assert attempt(client, victim.email, f"guess-{n}", ip).status_code == 400
    for ip in ("10.0.0.1", "10.0.0.2"):  # neither address is over its own limit, both failed for the account
        assert attempt(new_client(app), victim.email, PASSWORD, ip).status_code == 429
    assert attempt(new_client(app), victim.email, PASSWORD, "10.0.0.3").status_code == 302


def test_a_success_does_not_reset_the_guessing_addresss_count(app, client):
    first, second = signup(client), signup(new_client(app))
    attacker = signup(new_client(app), password="attackers own pw")
    logout(client)
    browser = new_client(app)
    for guess in range(4):
        assert attempt(browser, first.email, f"guess-{guess}", "10.0.0.7").status_code == 400
    assert attempt(browser, attacker.email, "attackers own pw", "10.0.0.7").status_code == 302  # their own account
    logout(browser)
    assert attempt(browser, second.email, "guess-5", "10.0.0.7").status_code == 400  # the address's 5th failure
    # Only the address is over the limit now (the second account failed once), and that is enough.
    response = attempt(browser, second.email, PASSWORD, "10.0.0.7")
    assert response.status_code == 429 and not logged_in(browser)
    assert attempt(new_client(app), second.email, PASSWORD, "10.0.0.8").status_code == 302
