"""Sign-up, login, logout, throttling and who may see what."""
import pytest
import sqlalchemy as sa

import planman.models

from planman.extensions import db
from planman.models import Firm, TaxRate, User
from tests.conftest import csrf_token_from
from tests.helpers import PASSWORD, client, login, logout, new_client, post_form, signup  # noqa: F401

SIGNUP = {"firm_name": "Smith & Co", "currency": "EUR", "name": "Jane Smith", "email": "Jane@Example.com",
          "password": PASSWORD, "confirm": PASSWORD}


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_signup_creates_firm_admin_and_default_tax_rates_and_logs_in(client):
    response = post_form(client, "/signup", SIGNUP)
    assert response.status_code == 302
    assert response.headers["Location"] == "/clients/"
    user = db.session.scalar(sa.select(User))
    assert user.email == "jane@example.com" and user.is_admin and user.name == "Jane Smith"
    assert user.password_hash != PASSWORD and user.check_password(PASSWORD)
    firm = db.session.get(Firm, user.firm_id)
    assert (firm.name, firm.currency) == ("Smith & Co", "EUR")
    rates = {r.name: r.percent for r in db.session.scalars(sa.select(TaxRate).where(TaxRate.firm_id == firm.id))}
    assert rates == {"VAT 20%": 20, "Reduced 5%": 5, "Zero rated": 0}
    page = client.get("/clients/").get_data(as_text=True)
    assert "Jane Smith" in page and "Smith &amp; Co" in page


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"password": "short", "confirm": "short"}, "password", "Use at least 8 characters."),
        ({"confirm": "something else"}, "confirm", "The passwords do not match."),
        ({"email": "not-an-email"}, "email", "Invalid email address."),
        ({"firm_name": ""}, "firm_name", "This field is required."),
        ({"firm_name": "Bad\x07Name"}, "firm_name", "control characters"),
        ({"currency": "ZZZ"}, "currency", "Not a valid choice."),
    ],
)
def test_signup_rejects_invalid_input_next_to_the_field(client, changes, field, message):
    response = post_form(client, "/signup", {**SIGNUP, **changes})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f'id="{field}-error"' in html and message in html
    assert count(Firm) == 0 and count(User) == 0
    # What the user typed is kept (except passwords).
    if field != "firm_name":
        assert 'value="Smith &amp; Co"' in html


def test_signup_rejects_an_email_already_used_in_any_case(client):
    signup(client, email="taken@example.com")
    logout(client)
    response = post_form(client, "/signup", {**SIGNUP, "email": "TAKEN@example.com"})
    assert response.status_code == 400
    assert "An account with this email already exists" in response.get_data(as_text=True)
    assert count(Firm) == 1


def test_a_sign_up_sent_twice_at_once_answers_the_second_plainly(client, monkeypatch):
    signup(client, email="twice@example.com")
    logout(client)
    # The second request checked before the first had committed, so it found the e-mail free.
    monkeypatch.setattr("planman.auth.services.email_taken", lambda email: False)
    response = post_form(client, "/signup", {**SIGNUP, "email": "twice@example.com"})
    assert response.status_code == 400  # not a 500
    assert "An account with this email already exists" in response.get_data(as_text=True)
    assert count(Firm) == 1


def test_signup_without_csrf_token_is_refused(client):
    response = client.post("/signup", data=SIGNUP)
    assert response.status_code == 400
    assert count(Firm) == 0


def test_login_with_any_case_of_email(client):
    signup(client, email="casey@example.com")
    logout(client)
    response = login(client, "  CASEY@Example.COM ")
    assert response.status_code == 302
    assert client.get("/clients/").status_code == 200


def test_wrong_password_or_unknown_email_give_the_same_clear_message(client):
    signup(client, email="known@example.com")
    logout(client)
    for email, password in [("known@example.com", "wrong password"), ("nobody@example.com", PASSWORD)]:
        response = login(client, email, password)
        assert response.status_code == 400
        assert "Email or password is incorrect." in response.get_data(as_text=True)
    assert client.get("/clients/").status_code == 302


def test_invited_user_without_password_cannot_log_in(client):
    user = signup(client)
    db.session.add(User(firm_id=user.firm_id, name="Pending", email="pending@example.com"))
    db.session.commit()
    logout(client)
    assert login(client, "pending@example.com", "").status_code == 400
    assert login(client, "pending@example.com", "anything-at-all").status_code == 400


@pytest.mark.parametrize(
    "next_url, expected",
    [
        ("/invoices/?status=paid", "/invoices/?status=paid"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_login_redirects_only_within_the_site(client, next_url, expected):
    signup(client, email="nexter@example.com")
    logout(client)
    page = client.get("/login", query_string={"next": next_url})
    token = csrf_token_from(page.get_data(as_text=True))
    response = client.post("/login", query_string={"next": next_url},
                           data={"csrf_token": token, "email": "nexter@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_logout_needs_post_with_csrf(client):
    signup(client)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no token
    response = logout(client)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/clients/").status_code == 302


@pytest.mark.parametrize("url", ["/clients/", "/clients/new", "/invoices/", "/invoices/new", "/setup/",
                                 "/setup/users", "/setup/tax-rates"])
def test_pages_need_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_home_sends_visitors_to_login_and_users_to_clients(client):
    assert client.get("/").headers["Location"] == "/login"
    signup(client)
    assert client.get("/").headers["Location"] == "/clients/"


class TestThrottle:
    @pytest.fixture
    def config_overrides(self):
        return {"LOGIN_MAX_FAILURES": 3, "LOGIN_LOCKOUT_SECONDS": 120}

    @pytest.fixture
    def account(self, client):
        signup(client, email="target@example.com")
        logout(client)
        return "target@example.com"

    def test_a_locked_account_is_closed_to_the_guessing_address_but_not_to_a_clean_one(self, app, client, account):
        for _ in range(3):
            assert login(client, account, "guess-guess").status_code == 400
        # The right password is refused from the address that guessed...
        response = login(client, account)
        assert response.status_code == 429, response.get_data(as_text=True)
        assert "Too many failed attempts" in response.get_data(as_text=True)
        assert client.get("/clients/").status_code == 302
        assert 0 < app.redis.ttl("planman:login-failures:email:target@example.com") <= 120
        # ...but not from one that has not failed: guessing cannot lock the owner out.
        owner = new_client(app)
        owner.environ_base["REMOTE_ADDR"] = "10.9.9.9"
        assert login(owner, account).status_code == 302
        assert owner.get("/clients/").status_code == 200

    def test_locks_an_address_that_guesses_many_accounts(self, client, account):
        for n in range(3):
            assert login(client, f"someone{n}@example.com", "guess-guess").status_code == 400
        response = login(client, account)
        assert response.status_code == 429

    def test_lockout_ends_when_the_window_expires(self, app, client, account):
        for _ in range(3):
            login(client, account, "guess-guess")
        for key in app.redis.keys("planman:login-failures:*"):
            app.redis.delete(key)  # as Redis does when the TTL runs out
        assert login(client, account).status_code == 302

    def test_success_forgives_earlier_failures_of_that_email(self, app, client, account):
        for _ in range(2):
            login(client, account, "guess-guess")
        assert login(client, account).status_code == 302
        assert app.redis.get("planman:login-failures:email:target@example.com") is None


class TestNothingTellsWhichEmailsHaveAccounts:
    @pytest.fixture
    def hash_checks(self, monkeypatch):
        """Which hashes a log-in verified (counting is how the test sees the cost, not a clock)."""
        checked = []
        real = planman.models.check_password_hash

        def counting(pwhash, password):
            checked.append(pwhash)
            return real(pwhash, password)

        monkeypatch.setattr(planman.models, "check_password_hash", counting)
        return checked

    def test_an_unknown_email_costs_a_password_check_like_a_known_one(self, client, hash_checks):
        user = signup(client, email="known@example.com")
        logout(client)
        assert login(client, "known@example.com", "wrong-password").status_code == 400
        assert hash_checks == [user.password_hash]
        assert login(client, "nobody@example.com", "wrong-password").status_code == 400
        assert len(hash_checks) == 2 and hash_checks[1].startswith(user.password_hash.split("$")[0])
        db.session.add(User(firm_id=user.firm_id, name="Invited", email="invited@example.com"))
        db.session.commit()
        assert login(client, "invited@example.com", "wrong-password").status_code == 400
        assert len(hash_checks) == 3  # an invited user (no password yet) costs the same too


class TestSignupThrottle:
    @pytest.fixture
    def config_overrides(self):
        return {"LOGIN_MAX_FAILURES": 3, "LOGIN_LOCKOUT_SECONDS": 120}

    def _signup(self, browser, email):
        return post_form(browser, "/signup", {"firm_name": "Probe", "currency": "GBP", "name": "Pro Be",
                                              "email": email, "password": PASSWORD, "confirm": PASSWORD})

    def test_already_exists_answers_are_limited_per_address(self, app, client):
        for n in range(4):  # successful sign-ups do not count
            signup(new_client(app), email=f"taken{n}@example.com")
        prober = new_client(app)
        for n in range(3):
            response = self._signup(prober, f"taken{n}@example.com")
            assert response.status_code == 400 and "already exists" in response.get_data(as_text=True)
        for email in ("taken3@example.com", "brand-new@example.com"):
            response = self._signup(prober, email)
            assert response.status_code == 429
            assert "Too many attempts" in response.get_data(as_text=True)
            assert "already exists" not in response.get_data(as_text=True)
        elsewhere = new_client(app)
        elsewhere.environ_base["REMOTE_ADDR"] = "10.9.9.9"
        assert self._signup(elsewhere, "brand-new@example.com").status_code == 302

    def test_adding_colleagues_cannot_probe_emails_without_limit(self, app, client):
        for n in range(4):
            signup(new_client(app), email=f"taken{n}@example.com")
        prober = new_client(app)
        signup(prober)  # any sign-up makes an admin, who may add colleagues
        for n in range(3):
            response = post_form(prober, "/setup/users/new", {"name": "Pro Be", "email": f"taken{n}@example.com",
                                                              "access": "invite"})
            assert "Someone already uses this email address" in response.get_data(as_text=True)
        response = post_form(prober, "/setup/users/new", {"name": "Pro Be", "email": "taken3@example.com",
                                                          "access": "invite"})
        assert response.status_code == 429 and "Someone already uses" not in response.get_data(as_text=True)
