"""Client names are unique per firm the way Xero compares contact names: case
ignored in every script, so "ülf" is refused beside the field when "Ülf"
exists, on SQLite and PostgreSQL alike (the suite runs on both through
TEST_DATABASE_URL); the database's unique index has the last word."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from planman.clients import services
from planman.extensions import db
from planman.models import Client
from tests.helpers import make_client, new_client, post_form, signup

VALID = {"name": "", "payment_terms_days": "30"}


def names_of(user):
    return db.session.scalars(sa.select(Client.name).where(Client.firm_id == user.firm_id).order_by(Client.id)).all()


@pytest.mark.parametrize("existing, clash", [
    ("Ülf", "ülf"),
    ("Ülf Consulting", "ÜLF CONSULTING"),
    ("Ærø Bakery", "ærø bakery"),
    ("Δέλτα ΑΕ", "δέλτα αε"),
    ("Straße GmbH", "STRASSE GMBH"),
    ("Café Noir", "Cafe\u0301 noir"),  # the accent typed as a separate combining mark
])
def test_a_name_differing_only_in_case_is_refused_beside_the_field(client, existing, clash):
    user = signup(client)
    assert post_form(client, "/clients/new", {**VALID, "name": existing}).status_code == 302
    response = post_form(client, "/clients/new", {**VALID, "name": clash})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="name-error"' in html and "Another client already has this name" in html
    assert names_of(user) == [existing]


def test_renaming_to_another_case_of_its_own_name_is_fine_and_other_firms_are_separate(app, client):
    user = signup(client)
    record = make_client(user, name="Ülf")
    assert post_form(client, f"/clients/{record.id}/edit", {**VALID, "name": "ÜLF"}).status_code == 302
    other = new_client(app)
    other_user = signup(other)
    assert post_form(other, "/clients/new", {**VALID, "name": "ülf"}).status_code == 302
    assert names_of(user) == ["ÜLF"] and names_of(other_user) == ["ülf"]


def test_two_saves_racing_past_the_check_are_stopped_by_the_database(client, monkeypatch):
    user = signup(client)
    make_client(user, name="Ülf")
    # As if another request saved "Ülf" between this form's check and its commit.
    monkeypatch.setattr("planman.clients.forms.name_in_use", lambda name, exclude_id=None: False)
    response = post_form(client, "/clients/new", {**VALID, "name": "ülf"})
    assert response.status_code == 422
    assert "Another client already has this name" in response.get_data(as_text=True)
    assert names_of(user) == ["Ülf"]
    record = make_client(user, name="Bob")
    response = post_form(client, f"/clients/{record.id}/edit", {**VALID, "name": "ÜLF"})
    assert response.status_code == 422 and "Another client already has this name" in response.get_data(as_text=True)
    assert names_of(user) == ["Ülf", "Bob"]


def test_bulk_inserts_get_their_key_too(client):
    user = signup(client)
    db.session.execute(sa.insert(Client), [{"firm_id": user.firm_id, "name": "ÅSA"}])
    db.session.commit()
    response = post_form(client, "/clients/new", {**VALID, "name": "åsa"})
    assert response.status_code == 422
