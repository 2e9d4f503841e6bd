"""Pagination of the client and invoice lists (planman.pagination): rows are
counted only up to a bound, so a long list reads "more than 1,000" instead of
costing a count of every row on every visit."""
from __future__ import annotations

import re
from datetime import date

import pytest

from planman.extensions import db
from planman.models import Client, Invoice
from planman.pagination import COUNT_STEP
from tests.helpers import client, make_client, make_invoice, signup  # noqa: F401


@pytest.fixture
def config_overrides():
    return {"CLIENTS_PER_PAGE": 3, "INVOICES_PER_PAGE": 3}


@pytest.fixture
def user(client):
    return signup(client)


def add_clients(user, count: int, prefix: str = "Client"):
    """``count`` clients in one commit, named so that their order is their number."""
    db.session.add_all(Client(firm_id=user.firm_id, name=f"{prefix} {n:05d}") for n in range(count))
    db.session.commit()


def add_invoices(user, count: int):
    customer = make_client(user, name="Acme Ltd")
    db.session.add_all(
        Invoice(firm_id=user.firm_id, client_id=customer.id, number=f"N-{n:05d}", issue_date=date(2026, 1, 5),
                due_date=date(2026, 2, 4), currency="GBP", status="draft", amounts_are="exclusive")
        for n in range(count)
    )
    db.session.commit()


def nav(html: str) -> str | None:
    """The pagination bar's text, links as (rel href) pairs, or None when there is none."""
    found = re.search(r'<nav class="pagination".*?</nav>', html, re.S)
    if not found:
        return None
    links = re.findall(r'href="([^"]+)" rel="(\w+)"', found.group(0))
    status = re.search(r'<span class="muted">([^<]*)</span>', found.group(0)).group(1)
    return " ".join([status] + [f"{rel}={href.replace('&amp;', '&')}" for href, rel in links])


def names(html: str) -> list[str]:
    return re.findall(r'<a href="/clients/\d+">([^<]+)</a>', html)


def get(client, url: str, **kwargs) -> str:
    response = client.get(url, **kwargs)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def test_a_short_list_shows_its_exact_size_and_both_links(client, user):
    add_clients(user, 8)
    assert nav(get(client, "/clients/")) == "Page 1 of 3 · 8 in all next=/clients/?page=2"
    middle = get(client, "/clients/?page=2")
    assert names(middle) == ["Client 00003", "Client 00004", "Client 00005"]
    assert nav(middle) == "Page 2 of 3 · 8 in all prev=/clients/?page=1 next=/clients/?page=3"
    last = get(client, "/clients/?page=3")
    assert names(last) == ["Client 00006", "Client 00007"]
    assert nav(last) == "Page 3 of 3 · 8 in all prev=/clients/?page=2"


def test_one_page_needs_no_pagination(client, user):
    add_clients(user, 3)
    html = get(client, "/clients/")
    assert len(names(html)) == 3 and nav(html) is None


def test_a_list_longer_than_the_bound_says_more_than(client, user):
    add_clients(user, COUNT_STEP + 1)
    first = get(client, "/clients/")
    assert nav(first) == "Page 1 · more than 1,000 in all next=/clients/?page=2"
    # The bound reaches past the page being read: further on, the count goes on
    # to the next thousand, where this list ends, so it is exact again.
    page_334 = get(client, "/clients/?page=334")
    assert names(page_334) == ["Client 00999", "Client 01000"]
    assert nav(page_334) == "Page 334 of 334 · 1,001 in all prev=/clients/?page=333"


def test_exactly_as_many_rows_as_the_bound_is_an_exact_count(client, user):
    add_clients(user, COUNT_STEP)
    assert nav(get(client, "/clients/")) == "Page 1 of 334 · 1,000 in all next=/clients/?page=2"


def test_invoice_list_says_more_than_and_keeps_the_status_filter(client, user):
    add_invoices(user, COUNT_STEP + 2)
    first = get(client, "/invoices/?status=draft")
    assert nav(first) == "Page 1 · more than 1,000 in all next=/invoices/?page=2&status=draft"
    second = get(client, "/invoices/?status=draft&page=2")
    assert nav(second) == ("Page 2 · more than 1,000 in all prev=/invoices/?page=1&status=draft "
                           "next=/invoices/?page=3&status=draft")
    assert "No paid invoices" in get(client, "/invoices/?status=paid")


def test_a_page_past_the_end_says_so_and_links_to_the_last_page(client, user):
    add_clients(user, 7)
    html = get(client, "/clients/?page=9")
    assert names(html) == [] and nav(html) is None
    assert "There is no page 9: the list ends at page 3." in html
    assert '<a href="/clients/?page=3">Go to the last page</a>' in html
    make_invoice(user, make_client(user))
    invoices = get(client, "/invoices/?page=5")
    assert "There is no page 5: the list ends at page 1." in invoices


def test_an_empty_list_beyond_page_one_is_just_empty(client, user):
    assert "No clients yet." in get(client, "/clients/?page=4")
    assert "No invoices yet." in get(client, "/invoices/?page=4")
    make_client(user, name="Zed")
    assert "No clients match “nobody”" in get(client, "/clients/?q=nobody&page=2")


@pytest.mark.parametrize("page", ["0", "-3", "nonsense", ""])
def test_a_page_number_that_is_not_a_page_is_the_first(client, user, page):
    add_clients(user, 4)
    html = get(client, f"/clients/?page={page}")
    assert names(html) == ["Client 00000", "Client 00001", "Client 00002"]
    assert nav(html) == "Page 1 of 2 · 4 in all next=/clients/?page=2"


@pytest.mark.parametrize("path", ["/clients/", "/invoices/"])
def test_a_huge_page_number_is_past_the_end_not_an_error(client, user, path):
    add_invoices(user, 4)  # and a client for them
    html = get(client, f"{path}?page={10 ** 30}")
    assert "There is no page 100000:" in html


def test_search_pages_keep_the_search_and_a_partial_has_them_too(client, user):
    add_clients(user, 5, prefix="Alpha")
    add_clients(user, 5, prefix="Beta")
    first = get(client, "/clients/?q=alpha")
    assert nav(first) == "Page 1 of 2 · 5 in all next=/clients/?page=2&q=alpha"
    second = get(client, "/clients/?q=alpha&page=2", headers={"HX-Request": "true"})
    assert second.lstrip().startswith('<div id="client-results">')  # the results only
    assert names(second) == ["Alpha 00003", "Alpha 00004"]
    assert nav(second) == "Page 2 of 2 · 5 in all prev=/clients/?page=1&q=alpha"
    assert "There is no page 3:" in get(client, "/clients/?q=alpha&page=3")


def test_lists_show_only_this_firms_rows_and_count_only_them(app, client, user):
    add_clients(user, 4, prefix="Ours")
    from tests.helpers import new_client

    other_browser = new_client(app)
    other = signup(other_browser)
    add_clients(other, 20, prefix="Theirs")
    make_invoice(other, make_client(other))
    assert nav(get(client, "/clients/")) == "Page 1 of 2 · 4 in all next=/clients/?page=2"
    assert "Theirs" not in get(client, "/clients/?page=2")
    assert "No invoices yet." in get(client, "/invoices/")


def test_a_list_statement_run_without_the_firm_fails_instead_of_listing_every_firm(app, user):
    """Lists are built once with the firm as a parameter (tenancy.firm_scoped):
    forgetting ``firm_params()`` must be an error, never another firm's rows."""
    import sqlalchemy as sa

    from planman.clients.services import search_select
    from planman.invoices.services import list_select
    from planman.pagination import paginate

    for stmt in (search_select(""), list_select(None), list_select("draft")):
        with pytest.raises(sa.exc.StatementError, match="firm_id"):
            paginate(stmt, 1, 3)
        db.session.rollback()
