"""Every core page renders for its audience and keeps to the strict CSP: no inline
scripts, styles or event handlers (the browser would block them)."""
import re

import pytest

from tests.helpers import PASSWORD, client, htmx_post, logout, make_client, make_invoice, signup, tax_rate  # noqa: F401

INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"<style", re.I), "<style> element"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"\s(?:data-)?hx-on", re.I), "hx-on handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def assert_csp_clean(html, url):
    for pattern, what in INLINE:
        match = pattern.search(html)
        assert match is None, f"{url}: {what}: {html[max(0, match.start() - 80):match.end() + 80]}"


@pytest.fixture
def pages(client):
    user = signup(client)
    acme = make_client(user, name="Acme", notes="line one\nline two")
    invoice = make_invoice(user, acme, lines=[(1, "10", tax_rate(user, "VAT 20%"))])
    return [
        "/clients/", "/clients/?q=ac", "/clients/new", f"/clients/{acme.id}", f"/clients/{acme.id}/edit",
        "/invoices/", "/invoices/?status=draft", "/invoices/new", f"/invoices/{invoice.id}",
        f"/invoices/{invoice.id}/edit", "/setup/", "/setup/users", "/setup/users/new", "/setup/tax-rates",
        "/setup/tax-rates/new", f"/setup/tax-rates/{tax_rate(user, 'VAT 20%').id}/edit",
    ]


def test_signed_in_pages_render_cleanly(client, pages):
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert_csp_clean(html, url)
        assert 'href="/clients/"' in html and 'href="/invoices/"' in html and 'href="/setup/"' in html
        assert "Log out" in html


def test_htmx_fragments_render_cleanly(client, pages):
    for url, data in [("/invoices/totals", {"lines-0-quantity": "1", "lines-0-unit_price": "2"}),
                      ("/invoices/lines", {})]:
        response = htmx_post(client, url, data)
        assert response.status_code == 200
        assert_csp_clean(response.get_data(as_text=True), url)
    partial = client.get("/clients/?q=a", headers={"HX-Request": "true"})
    assert_csp_clean(partial.get_data(as_text=True), "clients partial")


@pytest.mark.parametrize("url", ["/login", "/signup"])
def test_public_pages_render_cleanly(client, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert_csp_clean(html, url)
    assert 'name="csrf_token"' in html and "Log out" not in html


def test_unknown_pages_are_404(client, pages):
    for url in ["/clients/abc", "/invoices/0", "/invoices/999999/edit", "/setup/tax-rates/999999/edit"]:
        assert client.get(url).status_code == 404, url
