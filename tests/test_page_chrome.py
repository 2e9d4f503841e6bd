"""What every page carries and what empty pages say, over HTTP: the favicon
and logo, dismissable flash messages, and empty states that say what to do."""
from __future__ import annotations

import re

from tests.helpers import client, make_client, signup  # noqa: F401


def test_pages_link_a_favicon_and_logo_that_are_served(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">' in page
    for path in ("/static/img/favicon.svg", "/static/img/logo.svg"):
        response = client.get(path)
        assert response.status_code == 200 and response.mimetype == "image/svg+xml", path
    # The logo sits before the brand name, drawn by the stylesheet.
    assert '<a class="brand" href="/">PlanMan</a>' in page
    assert ".brand::before" in client.get("/static/css/app.css").get_data(as_text=True)


def test_a_flash_message_has_a_labelled_close_button_for_the_script_to_show(client):
    signup(client)
    page = client.get("/clients/").get_data(as_text=True)  # the welcome message
    assert re.search(r'<div class="flash flash-success" role="status"><span>Welcome to PlanMan, Ada Admin\.[^<]*</span>\s*'
                     r'<button type="button" class="flash-close" aria-label="Dismiss message" hidden>', page)
    assert '<script src="/static/js/app.js" defer></script>' in page
    assert ".flash-close" in client.get("/static/js/app.js").get_data(as_text=True)


def test_empty_lists_say_what_to_do_next(client):
    admin = signup(client)
    invoices = client.get("/invoices/").get_data(as_text=True)
    assert re.search(r'No invoices yet\..*<a class="button" href="/invoices/new">New invoice</a>', invoices, re.S)
    customer = make_client(admin, name="Acme Ltd")
    view = client.get(f"/clients/{customer.id}").get_data(as_text=True)
    assert re.search(r'No invoices for this client yet\..*<a class="button" href="/invoices/new\?client_id='
                     rf'{customer.id}">New invoice for Acme Ltd</a>', view, re.S)


def test_a_radio_groups_error_is_tied_to_its_fieldset(client):
    signup(client)
    from tests.helpers import post_form

    response = post_form(client, "/setup/users/new", {"name": "Cy", "email": "cy@example.com", "access": "nope"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(r'<fieldset class="field has-error" aria-describedby="access-error">', html)
    assert re.search(r'<small class="error" id="access-error">[^<]+</small>', html)
