"""The integration tab over HTTP: its chip says where the record stands with
the panel closed, it opens by itself on a failed push or unsent changes, and
the panel fragment keeps the tab and the page's live region up to date."""
from __future__ import annotations

import re

from planman.extensions import db
from planman.models import ExternalLink, PushJob, utcnow
from tests.helpers import client, htmx_post, make_client, signup  # noqa: F401
from tests.test_push_xero import TENANT, _connect, panel_url


def tab(html: str) -> str:
    return re.search(r'<a class="integration-tab" id="tab-xero".*?</a>', html, re.S).group(0)


def test_a_records_tab_shows_its_state_and_opens_on_a_failure(client):
    admin = signup(client)
    _connect(admin)
    quiet = make_client(admin, name="Quiet Ltd")
    failed = make_client(admin, name="Failed Ltd")
    db.session.add(PushJob(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                           record_id=failed.id, state="failed", outcome="failed", finished_at=utcnow(),
                           error_message="Xero refused the contact."))
    db.session.commit()

    closed = client.get(f"/clients/{quiet.id}").get_data(as_text=True)
    assert 'aria-expanded="false"' in tab(closed) and '<span class="chip chip-idle">Not sent</span>' in tab(closed)
    assert 'id="panel-xero"' not in closed

    opened = client.get(f"/clients/{failed.id}").get_data(as_text=True)
    assert 'aria-expanded="true"' in tab(opened) and '<span class="chip chip-bad">Failed</span>' in tab(opened)
    assert re.search(r'<h2 class="panel-headline tone-bad" id="panel-xero-headline">Sending failed\.</h2>', opened)
    # ?panel= (empty) is how the open tab closes without JavaScript.
    assert f'href="/clients/{failed.id}?panel="' in tab(opened)
    assert 'id="panel-xero"' not in client.get(f"/clients/{failed.id}?panel=").get_data(as_text=True)


def test_unsent_changes_open_the_tab_and_the_panel_says_so_once(client):
    admin = signup(client)
    _connect(admin)
    record = make_client(admin, name="Changed Ltd")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=record.id, external_id="c-1", record_revision=0))
    db.session.commit()
    page = client.get(f"/clients/{record.id}").get_data(as_text=True)
    assert 'aria-expanded="true"' in tab(page) and ">Changed since sent<" in tab(page)
    assert page.count("Changed since last sent") == 1 and "Sent to Xero" not in page


def test_the_panel_fragment_updates_its_tab_and_announces_a_push(client):
    admin = signup(client)
    _connect(admin)
    record = make_client(admin, name="Acme Ltd")
    fragment = client.get(panel_url("client", record.id), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'hx-swap-oob="true"' in tab(fragment) and 'aria-expanded="true"' in tab(fragment)
    assert 'id="panel-news-xero"' not in fragment  # opening the tab is not news

    started = htmx_post(client, panel_url("client", record.id), {}).get_data(as_text=True)
    assert ">Sending…<" in tab(started)
    assert '<span id="panel-news-xero" hx-swap-oob="innerHTML">Sending to Xero…</span>' in started
    # The record page holds the live region the fragment fills.
    page = client.get(f"/clients/{record.id}").get_data(as_text=True)
    assert '<span class="visually-hidden" id="panel-news-xero" aria-live="polite"></span>' in page


def test_the_invoice_says_whose_status_is_whose(client):
    from tests.helpers import make_invoice

    admin = signup(client)
    _connect(admin)
    invoice = make_invoice(admin, make_client(admin, name="Acme Ltd"), number="INV-9")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="invoice",
                                record_id=invoice.id, external_id="i-1", remote_status="AUTHORISED",
                                status_checked_at=utcnow(), record_revision=invoice.revision))
    db.session.commit()
    page = client.get(f"/invoices/{invoice.id}?panel=xero").get_data(as_text=True)
    assert '<span class="badge  status-draft">PlanMan: Draft</span>' in page
    assert re.search(r"<dt>In Xero</dt>\s*<dd><span class=\"remote-status\">Awaiting payment</span>", page)
    assert ">Awaiting payment<" in tab(page)
