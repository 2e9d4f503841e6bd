"""Password guessing through /login: after LOGIN_MAX_FAILURES wrong passwords an
account is refused even with the right password, from any address; an address
that keeps guessing is refused for every account; the lock lifts by itself."""
from __future__ import annotations

import time

import pytest

from tests.helpers import PASSWORD, client, logout, new_client, post_form, signup  # noqa: F401

pytestmark = pytest.mark.integration  # the package's app: counters on a real Redis

LOCKED = "Too many failed attempts"


@pytest.fixture
def config_overrides():
    return {"LOGIN_MAX_FAILURES": 5, "LOGIN_LOCKOUT_SECONDS": 2}


def attempt(browser, email, password, ip):
    return post_form(browser, "/login", {"email": email, "password": password},
                     environ_base={"REMOTE_ADDR": ip})


def logged_in(browser) -> bool:
    return browser.get("/clients/").status_code == 200


def test_guessing_locks_the_account_everywhere_and_the_address_for_everyone(app, client):
    victim = signup(client)
    bystander = signup(new_client(app))
    logout(client)
    for guess in range(5):
        response = attempt(client, victim.email, f"guess-{guess}", "10.0.0.1")
        assert response.status_code == 400 and "Email or password is incorrect." in response.get_data(as_text=True)

    for browser, email, ip in [(client, victim.email, "10.0.0.1"),      # the right password, too late
                               (new_client(app), victim.email, "10.9.9.9"),  # from elsewhere
                               (new_client(app), bystander.email, "10.0.0.1")]:  # the guessing address
        response = attempt(browser, email, PASSWORD, ip)
        assert response.status_code == 429 and LOCKED in response.get_data(as_text=True)
        assert not logged_in(browser)

    other = new_client(app)
    assert attempt(other, bystander.email, PASSWORD, "10.9.9.9").status_code == 302 and logged_in(other)

    time.sleep(2.2)  # LOGIN_LOCKOUT_SECONDS
    assert attempt(client, victim.email, PASSWORD, "10.0.0.1").status_code == 302 and logged_in(client)


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
