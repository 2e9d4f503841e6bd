"""Setup: admins only; colleagues, invite links, admin rights, tax rates."""
import re

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import TaxRate, User
from tests.helpers import PASSWORD, client, login, logout, new_client, post_form, signup, tax_rate  # noqa: F401

SETUP_PAGES = ["/setup/", "/setup/users", "/setup/users/new", "/setup/tax-rates", "/setup/tax-rates/new"]


@pytest.fixture
def admin(client):
    return signup(client)


def add_colleague(client, follow_redirects=False, **changes):
    data = {"name": "Bob Member", "email": "bob@example.com", "access": "password", "password": PASSWORD, **changes}
    return post_form(client, "/setup/users/new", data, follow_redirects=follow_redirects)


def user_by_email(email):
    return db.session.scalar(sa.select(User).where(User.email == email))


@pytest.mark.parametrize("url", SETUP_PAGES)
def test_admin_sees_every_setup_page(client, admin, url):
    assert client.get(url).status_code == 200


def test_setup_index_links_to_users_tax_rates_and_integrations(client, admin, app):
    html = client.get("/setup/").get_data(as_text=True)
    assert 'href="/setup/users"' in html and 'href="/setup/tax-rates"' in html and "Integrations" in html
    if "integrations.index" in app.view_functions:
        with app.test_request_context():
            from flask import url_for

            assert f'href="{url_for("integrations.index")}"' in html


def test_non_admins_get_404_everywhere_in_setup(client, admin, app):
    add_colleague(client)
    member = new_client(app)
    assert login(member, "bob@example.com").status_code == 302
    for url in SETUP_PAGES + [f"/setup/tax-rates/{tax_rate(admin, 'VAT 20%').id}/edit"]:
        assert member.get(url).status_code == 404, url
    # Nor can they grant themselves rights.
    bob = user_by_email("bob@example.com")
    response = post_form(member, f"/setup/users/{bob.id}/admin", {}, form_url="/clients/")
    assert response.status_code == 404 and not bob.is_admin
    assert "/setup/" not in member.get("/clients/").get_data(as_text=True)


def test_add_colleague_with_a_password(client, admin, app):
    response = add_colleague(client, email="Bob@Example.com", is_admin="y")
    assert response.status_code == 302 and response.headers["Location"] == "/setup/users"
    bob = user_by_email("bob@example.com")
    assert bob.firm_id == admin.firm_id and bob.is_admin and bob.check_password(PASSWORD)
    assert "Bob Member" in client.get("/setup/users").get_data(as_text=True)
    other = new_client(app)
    assert login(other, "bob@example.com").status_code == 302


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"name": ""}, "name", "This field is required."),
        ({"email": "bob"}, "email", "Invalid email address."),
        ({"password": "short"}, "password", "Use at least 8 characters."),
        ({"access": "telepathy"}, "access", "Not a valid choice."),
    ],
)
def test_add_colleague_rejects_invalid_input(client, admin, changes, field, message):
    response = add_colleague(client, **changes)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    if field != "access":
        assert f'id="{field}-error"' in html
    assert user_by_email("bob@example.com") is None


def test_an_email_in_use_anywhere_is_refused(client, admin, app):
    other = new_client(app)
    signup(other, email="someone@elsewhere.example")
    response = add_colleague(client, email="SOMEONE@elsewhere.example")
    assert response.status_code == 422 and "already uses this email" in response.get_data(as_text=True)


def test_invite_link_is_shown_once_and_works_once(client, admin, app):
    response = add_colleague(client, access="invite", password="", follow_redirects=True)
    assert response.status_code == 200
    url = re.search(r'id="invite-url" value="([^"]+)"', response.get_data(as_text=True)).group(1)
    token = url.rsplit("/", 1)[1]
    assert url.startswith("http://") and "/invite/" in url
    bob = user_by_email("bob@example.com")
    assert bob.password_hash is None and bob.invite_token_hash and token not in bob.invite_token_hash
    assert "Invited" in client.get("/setup/users").get_data(as_text=True)

    invitee = new_client(app)
    page = invitee.get(f"/invite/{token}")
    assert page.status_code == 200 and "bob@example.com" in page.get_data(as_text=True)
    short = post_form(invitee, f"/invite/{token}", {"password": "short", "confirm": "short"})
    assert short.status_code == 400 and 'id="password-error"' in short.get_data(as_text=True)
    done = post_form(invitee, f"/invite/{token}", {"password": "a new password", "confirm": "a new password"})
    assert done.status_code == 302
    assert invitee.get("/clients/").status_code == 200
    assert bob.check_password("a new password") and bob.invite_token_hash is None
    assert new_client(app).get(f"/invite/{token}").status_code == 404


def test_unknown_invite_token_is_404(client):
    assert client.get("/invite/not-a-token").status_code == 404


def test_a_new_invite_link_replaces_the_old_one(client, admin, app):
    first = add_colleague(client, access="invite", password="", follow_redirects=True).get_data(as_text=True)
    old_token = re.search(r'/invite/([^"]+)"', first).group(1)
    bob = user_by_email("bob@example.com")
    again = post_form(client, f"/setup/users/{bob.id}/invite", {}, form_url="/setup/users", follow_redirects=True)
    assert again.status_code == 200
    new_token = re.search(r'/invite/([^"]+)"', again.get_data(as_text=True)).group(1)
    assert new_token != old_token
    assert client.get(f"/invite/{old_token}").status_code == 404


def test_refreshing_the_invite_link_page_neither_shows_it_again_nor_breaks_it(client, admin, app):
    made = add_colleague(client, access="invite", password="")
    assert made.status_code == 302  # the link is shown on the page after the form, not in the form's answer
    shown = client.get(made.headers["Location"]).get_data(as_text=True)
    token = re.search(r'/invite/([^"]+)"', shown).group(1)
    refreshed = " ".join(client.get(made.headers["Location"]).get_data(as_text=True).split())
    assert "/invite/" not in refreshed and "This link was shown once, when it was made, and still works" in refreshed
    assert client.get(f"/invite/{token}").status_code == 200  # the link already sent still works


def test_make_and_remove_admin_but_never_the_last_one(client, admin, app):
    add_colleague(client)
    bob = user_by_email("bob@example.com")
    assert post_form(client, f"/setup/users/{bob.id}/admin", {}, form_url="/setup/users").status_code == 302
    assert bob.is_admin
    assert post_form(client, f"/setup/users/{admin.id}/admin/remove", {}, form_url="/setup/users").status_code == 302
    assert not admin.is_admin
    # The admin just removed themselves: Setup is gone for them.
    assert client.get("/setup/").status_code == 404
    bob_client = new_client(app)
    login(bob_client, "bob@example.com")
    response = post_form(bob_client, f"/setup/users/{bob.id}/admin/remove", {}, form_url="/setup/users",
                         follow_redirects=True)
    assert "at least one administrator" in response.get_data(as_text=True)
    assert bob.is_admin


def test_a_colleague_who_recorded_payments_can_be_removed_and_the_payments_stay(client, admin, app):
    from datetime import date
    from decimal import Decimal

    from planman.models import Payment, PaymentLink
    from tests.helpers import make_client, make_invoice

    add_colleague(client)
    bob = user_by_email("bob@example.com")
    invoice = make_invoice(admin, make_client(admin, name="Acme Ltd"), status="sent")
    db.session.add_all([
        Payment(firm_id=admin.firm_id, invoice_id=invoice.id, amount=Decimal("10"), currency="GBP",
                paid_on=date(2026, 12, 1), method="bank_transfer", state="reversed", recorded_by_id=bob.id,
                reversed_by_id=bob.id),
        PaymentLink(firm_id=admin.firm_id, invoice_id=invoice.id, nonce="n" * 32, token_hash="h" * 64,
                    created_by_id=bob.id)])
    db.session.commit()
    bob_id = bob.id
    response = post_form(client, f"/setup/users/{bob_id}/remove", {}, form_url="/setup/users", follow_redirects=True)
    assert "Bob Member has been removed" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, bob_id) is None
    payment = db.session.scalar(sa.select(Payment))
    assert (payment.amount, payment.recorded_by_id, payment.reversed_by_id) == (10, None, None)  # kept, naming no one
    assert db.session.scalar(sa.select(PaymentLink)).created_by_id is None


def test_an_admin_invited_but_not_in_yet_does_not_count_as_the_firms_other_admin(client, admin, app):
    add_colleague(client, access="invite", password="", is_admin="y")
    bob = user_by_email("bob@example.com")
    assert bob.is_admin and bob.password_hash is None
    response = post_form(client, f"/setup/users/{admin.id}/admin/remove", {}, form_url="/setup/users",
                         follow_redirects=True)
    assert "at least one administrator who can log in" in response.get_data(as_text=True)
    assert db.session.get(User, admin.id).is_admin
    # Removing the invited one is fine: the firm keeps the admin who can log in.
    post_form(client, f"/setup/users/{bob.id}/admin/remove", {}, form_url="/setup/users")
    db.session.expire_all()
    assert not db.session.get(User, bob.id).is_admin


def test_admin_actions_need_csrf_and_stay_within_the_firm(client, admin, app):
    add_colleague(client)
    bob = user_by_email("bob@example.com")
    assert client.post(f"/setup/users/{bob.id}/admin").status_code == 400
    assert not bob.is_admin
    other = new_client(app)
    signup(other)
    for path in [f"/setup/users/{bob.id}/admin", f"/setup/users/{bob.id}/admin/remove", f"/setup/users/{bob.id}/invite"]:
        assert post_form(other, path, {}, form_url="/setup/users").status_code == 404
    assert "Bob Member" not in other.get("/setup/users").get_data(as_text=True)


class TestTaxRates:
    def test_list_add_and_edit(self, client, admin):
        html = client.get("/setup/tax-rates").get_data(as_text=True)
        assert "VAT 20%" in html and "20%" in html and "Zero rated" in html
        assert post_form(client, "/setup/tax-rates/new", {"name": "GST 12.5%", "percent": "12.5"}).status_code == 302
        gst = tax_rate(admin, "GST 12.5%")
        assert str(gst.percent) == "12.5000"
        assert "12.5%" in client.get("/setup/tax-rates").get_data(as_text=True)
        edit = f"/setup/tax-rates/{gst.id}/edit"
        assert 'value="12.5"' in client.get(edit).get_data(as_text=True)
        assert post_form(client, edit, {"name": "GST", "percent": "15.1234"}).status_code == 302
        assert (gst.name, str(gst.percent)) == ("GST", "15.1234")

    def test_the_percentage_of_a_rate_on_sent_invoices_stays(self, client, admin):
        from tests.helpers import make_client, make_invoice

        vat = tax_rate(admin, "VAT 20%")
        sent = make_invoice(admin, make_client(admin, name="Acme Ltd"), lines=((1, "100.00", vat),), status="sent")
        edit = f"/setup/tax-rates/{vat.id}/edit"
        response = post_form(client, edit, {"name": "VAT 20%", "percent": "17.5"})
        assert response.status_code == 422
        page = " ".join(response.get_data(as_text=True).split())
        assert "1 invoice already sent uses this rate, and a new percentage would change its total. Add a new tax " \
               "rate for the new percentage instead" in page
        db.session.expire_all()
        assert (str(db.session.get(TaxRate, vat.id).percent), db.session.get(type(sent), sent.id).total) == \
            ("20.0000", 120)
        # Renaming it is fine: no total changes.
        assert post_form(client, edit, {"name": "VAT 20% (until 2027)", "percent": "20"}).status_code == 302

    @pytest.mark.parametrize(
        "data, field, message",
        [
            ({"name": "", "percent": "5"}, "name", "This field is required."),
            ({"name": "Big", "percent": "100.01"}, "percent", "between 0 and 100"),
            ({"name": "Neg", "percent": "-1"}, "percent", "between 0 and 100"),
            ({"name": "Fine", "percent": "1.23456"}, "percent", "at most 4 decimal places"),
            ({"name": "Empty", "percent": ""}, "percent", "Enter a percentage."),
            ({"name": "vat 20%", "percent": "20"}, "name", "Another tax rate already has this name."),
        ],
    )
    def test_invalid_rates_are_refused(self, client, admin, data, field, message):
        response = post_form(client, "/setup/tax-rates/new", data)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert f'id="{field}-error"' in html and message in html
        assert db.session.scalar(sa.select(sa.func.count()).select_from(TaxRate).where(
            TaxRate.firm_id == admin.firm_id)) == 3

    def test_another_firms_rate_is_404(self, client, admin, app):
        rate = tax_rate(admin, "VAT 20%")
        other = new_client(app)
        signup(other)
        assert other.get(f"/setup/tax-rates/{rate.id}/edit").status_code == 404
        response = post_form(other, f"/setup/tax-rates/{rate.id}/edit", {"name": "Mine", "percent": "1"},
                             form_url="/setup/tax-rates/new")
        assert response.status_code == 404 and rate.name == "VAT 20%"
