"""Clients: list, search-as-you-type, pagination, create, edit, view, validation and isolation."""
import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import Client
from tests.helpers import logout, make_client, new_client, post_form, signup  # noqa: F401

VALID = {
    "name": "Acme Ltd", "first_name": "Wile", "last_name": "Coyote", "email": "wile@acme.example",
    "phone": "+44 20 7946 0000", "address_line1": "1 Canyon Road", "address_line2": "", "city": "Leeds",
    "region": "West Yorkshire", "postcode": "LS1 1AA", "country": "United Kingdom", "tax_number": "GB123456789",
    "payment_terms_days": "14", "notes": "Prefers email.\nPays late.",
}


def clients_of(user):
    return db.session.scalars(sa.select(Client).where(Client.firm_id == user.firm_id)).all()


def test_create_view_and_list_a_client(client):
    user = signup(client)
    response = post_form(client, "/clients/new", VALID)
    assert response.status_code == 302
    [saved] = clients_of(user)
    assert response.headers["Location"] == f"/clients/{saved.id}"
    assert (saved.name, saved.email, saved.payment_terms_days, saved.revision) == ("Acme Ltd", "wile@acme.example", 14, 1)
    assert saved.notes == "Prefers email.\nPays late." and saved.reference.startswith("PM-")
    page = client.get(f"/clients/{saved.id}").get_data(as_text=True)
    assert "Acme Ltd" in page and "GB123456789" in page and 'class="record-layout"' in page
    assert "Acme Ltd" in client.get("/clients/").get_data(as_text=True)


def test_edit_bumps_revision(client):
    user = signup(client)
    record = make_client(user, name="Old Name")
    assert 'value="Old Name"' in client.get(f"/clients/{record.id}/edit").get_data(as_text=True)
    response = post_form(client, f"/clients/{record.id}/edit", {**VALID, "name": "New Name"})
    assert response.status_code == 302
    assert (record.name, record.revision, record.city) == ("New Name", 2, "Leeds")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("name", "", "This field is required."),
        ("name", "x" * 256, "Field cannot be longer than 255 characters."),
        ("name", "Tab\there", "control characters"),
        ("first_name", "y" * 256, "255"),
        ("last_name", "Nul\x00", "control characters"),
        ("email", "not an email", "Invalid email address."),
        ("email", "a" * 250 + "@x.com", "255"),
        ("phone", "1" * 51, "50"),
        ("address_line1", "a" * 501, "500"),
        ("city", "c" * 256, "255"),
        ("region", "r" * 256, "255"),
        ("postcode", "p" * 51, "50"),
        ("country", "c" * 51, "50"),
        ("tax_number", "t" * 51, "50"),
        ("payment_terms_days", "366", "between 0 and 365"),
        ("payment_terms_days", "-1", "between 0 and 365"),
        ("payment_terms_days", "soon", "Not a valid integer value."),
        ("notes", "bell\x07", "control characters"),
    ],
)
def test_invalid_input_shows_the_error_beside_the_field_and_saves_nothing(client, field, value, message):
    user = signup(client)
    response = post_form(client, "/clients/new", {**VALID, field: value})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'id="{field}-error"' in html and message in html
    assert clients_of(user) == []
    # The rest of what was typed is still in the form.
    if field != "city":
        assert 'value="Leeds"' in html


def test_invalid_edit_changes_nothing(client):
    user = signup(client)
    record = make_client(user, name="Keep Me")
    response = post_form(client, f"/clients/{record.id}/edit", {**VALID, "email": "broken"})
    assert response.status_code == 422
    assert (record.name, record.revision) == ("Keep Me", 1)


def test_names_are_unique_within_a_firm_ignoring_case(client, app):
    user = signup(client)
    make_client(user, name="Acme Ltd")
    response = post_form(client, "/clients/new", {**VALID, "name": "ACME ltd"})
    assert response.status_code == 422
    assert "Another client already has this name" in response.get_data(as_text=True)
    assert len(clients_of(user)) == 1
    # Renaming a client to its own name in another case is fine.
    [record] = clients_of(user)
    assert post_form(client, f"/clients/{record.id}/edit", {**VALID, "name": "ACME LTD"}).status_code == 302
    # Another firm may use the same name.
    other = new_client(app)
    other_user = signup(other)
    assert post_form(other, "/clients/new", VALID).status_code == 302
    assert len(clients_of(other_user)) == 1


def test_another_firms_client_is_404(client, app):
    user = signup(client)
    mine = make_client(user)
    other = new_client(app)
    signup(other)
    for url in [f"/clients/{mine.id}", f"/clients/{mine.id}/edit"]:
        assert other.get(url).status_code == 404
    assert post_form(other, f"/clients/{mine.id}/edit", VALID, form_url="/clients/new").status_code == 404
    assert mine.name != "Acme Ltd" and mine.revision == 1
    assert other.get("/clients/999999").status_code == 404
    assert mine.name not in other.get("/clients/").get_data(as_text=True)


def test_csrf_is_required(client):
    user = signup(client)
    assert client.post("/clients/new", data=VALID).status_code == 400
    assert clients_of(user) == []


def test_empty_state(client):
    signup(client)
    assert "No clients yet." in client.get("/clients/").get_data(as_text=True)


class TestSearch:
    @pytest.fixture
    def firm(self, client):
        user = signup(client)
        make_client(user, name="Brown & Sons", first_name="Alice", last_name="Brown", email="alice@brown.example")
        make_client(user, name="Green Grocers", first_name="Bob", last_name="Green", email="bob@green.example")
        make_client(user, name="100% Pure", email="info@pure.example", reference="PM-ABC123")
        return user

    def search(self, client, q, htmx=True):
        headers = {"HX-Request": "true"} if htmx else {}
        return client.get("/clients/", query_string={"q": q}, headers=headers).get_data(as_text=True)

    @pytest.mark.parametrize(
        "q, found, not_found",
        [
            ("brown", "Brown &amp; Sons", "Green Grocers"),
            ("ALICE", "Brown &amp; Sons", "Green Grocers"),  # contact first name
            ("green", "Green Grocers", "Brown"),  # last name and name
            ("bob@green", "Green Grocers", "Brown"),  # email
            ("abc123", "100% Pure", "Green"),  # reference
            ("100%", "100% Pure", "Green"),  # % is literal, not a wildcard
        ],
    )
    def test_matches_name_contacts_email_and_reference(self, client, firm, q, found, not_found):
        html = self.search(client, q)
        assert found in html and not_found not in html

    def test_htmx_gets_the_results_only_and_a_visit_gets_the_page(self, client, firm):
        partial = self.search(client, "brown")
        assert partial.lstrip().startswith('<div id="client-results">') and "<html" not in partial
        full = self.search(client, "brown", htmx=False)
        assert "<html" in full and 'id="client-search"' in full and 'value="brown"' in full
        assert 'hx-get="/clients/"' in full and 'hx-trigger="input changed delay:300ms, search"' in full
        restored = client.get("/clients/?q=brown", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
        assert "<html" in restored.get_data(as_text=True)
        assert "HX-Request" in restored.headers["Vary"]

    def test_no_match_says_so(self, client, firm):
        assert "No clients match" in self.search(client, "zebra")

    def test_does_not_find_another_firms_clients(self, client, firm, app):
        other = new_client(app)
        signup(other)
        assert "Brown" not in self.search(other, "brown")


class TestPagination:
    @pytest.fixture
    def config_overrides(self):
        return {"CLIENTS_PER_PAGE": 2}

    def test_pages_keep_the_search(self, client):
        user = signup(client)
        for name in ["Alpha One", "Alpha Two", "Alpha Three", "Beta"]:
            make_client(user, name=name)
        first = client.get("/clients/?q=alpha").get_data(as_text=True)
        assert "Alpha One" in first and "Alpha Three" in first and "Alpha Two" not in first
        assert "/clients/?page=2&amp;q=alpha" in first and "Page 1 of 2" in first
        second = client.get("/clients/?q=alpha&page=2").get_data(as_text=True)
        assert "Alpha Two" in second and "Beta" not in second
        assert client.get("/clients/?page=99").status_code == 200
        assert client.get("/clients/?page=nonsense").status_code == 200
