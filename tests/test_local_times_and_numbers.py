"""Times in the firm's zone and numbers shown alike, through the pages a user
opens: the zone chosen at sign-up (the browser's, else the currency's), changed
in Setup > Firm, and used for every time the panel shows."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from planman.extensions import db
from planman.models import ExternalLink, Firm
from planman.timezones import relative
from tests.helpers import client, make_client, make_invoice, post_form, signup  # noqa: F401
from tests.test_push_xero import TENANT, _connect, panel_url

SIGNUP = {"firm_name": "Zone & Co", "name": "Zed", "password": "long enough pw", "confirm": "long enough pw"}


def sign_up_with(client, email, **fields):
    response = post_form(client, "/signup", {**SIGNUP, "email": email, **fields})
    assert response.status_code == 302, response.get_data(as_text=True)
    return db.session.scalar(db.select(Firm).where(Firm.name == "Zone & Co"))


@pytest.mark.parametrize("fields, zone", [
    ({"currency": "GBP", "browser_time_zone": "America/New_York"}, "America/New_York"),  # the browser's wins
    ({"currency": "GBP", "browser_time_zone": ""}, "Europe/London"),
    ({"currency": "EUR"}, "Europe/Paris"),  # no script ran
    ({"currency": "GBP", "browser_time_zone": "Mars/Olympus_Mons"}, "Europe/London"),  # junk is ignored
    ({"currency": "GBP", "browser_time_zone": "../../etc/passwd"}, "Europe/London"),
])
def test_sign_up_takes_the_browsers_zone_or_the_currencys(client, fields, zone):
    assert sign_up_with(client, "zed@example.com", **fields).time_zone == zone


def test_the_sign_up_page_asks_the_browser_for_its_zone_with_a_script_file(client):
    html = client.get("/signup").get_data(as_text=True)
    assert re.search(r'<input[^>]*data-browser-time-zone[^>]*name="browser_time_zone"|'
                     r'<input[^>]*name="browser_time_zone"[^>]*data-browser-time-zone', html)
    assert '<script src="/static/js/browser_time_zone.js" defer></script>' in html
    assert "Intl.DateTimeFormat().resolvedOptions().timeZone" in client.get(
        "/static/js/browser_time_zone.js").get_data(as_text=True)


def test_setup_changes_the_firms_zone_and_refuses_one_that_does_not_exist(client):
    admin = signup(client)
    page = client.get("/setup/firm").get_data(as_text=True)
    assert re.search(r'<option selected value="Europe/London">Europe/London</option>', page)
    assert '<option value="Asia/Tokyo">Asia/Tokyo</option>' in page

    refused = post_form(client, "/setup/firm", {"time_zone": "Mars/Olympus_Mons"})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    # The message sits beside the field and is tied to it for screen readers.
    assert '<small class="error" id="time_zone-error">Choose a time zone from the list.</small>' in html
    assert re.search(r'<select[^>]*aria-describedby="time_zone-hint time_zone-error"[^>]*id="time_zone"', html)
    db.session.refresh(admin.firm)
    assert admin.firm.time_zone == "Europe/London"

    saved = post_form(client, "/setup/firm", {"time_zone": "Asia/Tokyo"}, follow_redirects=True)
    assert "Times are now shown in Asia/Tokyo." in saved.get_data(as_text=True)
    db.session.refresh(admin.firm)
    assert admin.firm.time_zone == "Asia/Tokyo"


def test_a_push_time_shows_in_the_firms_zone(client):
    admin = signup(client)
    _connect(admin)
    record = make_client(admin, name="Acme Ltd")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=record.id, external_id="c-1", pushed_at=datetime(2026, 7, 1, 12, 0)))
    admin.firm.time_zone = "America/New_York"
    db.session.commit()

    html = client.get(panel_url("client", record.id)).get_data(as_text=True)
    # 12:00 UTC on 1 July is 08:00 in New York (EDT, UTC-4).
    assert '<time datetime="2026-07-01T08:00:00-04:00" title="1 Jul 2026, 08:00 EDT">1 Jul 2026, 08:00 EDT</time>' in html
    assert " UTC" not in html

    admin.firm.time_zone = "Europe/London"
    db.session.commit()
    html = client.get(panel_url("client", record.id)).get_data(as_text=True)
    assert '<time datetime="2026-07-01T13:00:00+01:00" title="1 Jul 2026, 13:00 BST">' in html


def test_a_recent_push_reads_as_minutes_ago_with_the_exact_time_in_its_title(client):
    admin = signup(client)
    _connect(admin)
    record = make_client(admin, name="Acme Ltd")
    db.session.add(ExternalLink(firm_id=admin.firm_id, provider="xero", tenant_id=TENANT, record_type="client",
                                record_id=record.id, external_id="c-1",
                                pushed_at=datetime.utcnow() - timedelta(minutes=2, seconds=5)))
    db.session.commit()
    html = client.get(panel_url("client", record.id)).get_data(as_text=True)
    assert re.search(r'<time datetime="[^"]+" title="\d+ \w{3} \d{4}, \d\d:\d\d (GMT|BST)">2 minutes ago</time>', html)


def test_relative_words():
    now = datetime(2026, 12, 1, 12, 0).astimezone()
    assert relative(now - timedelta(seconds=10), now) == "just now"
    assert relative(now - timedelta(seconds=70), now) == "1 minute ago"
    assert relative(now - timedelta(minutes=59), now) == "59 minutes ago"
    assert relative(now - timedelta(hours=3), now) == "3 hours ago"
    assert relative(now - timedelta(hours=13), now) is None  # a date reads better
    assert relative(now + timedelta(seconds=30), now) == "in 30 seconds"
    assert relative(now + timedelta(minutes=5), now) == "in 5 minutes"


def test_quantities_and_prices_show_two_places_or_up_to_four_when_they_have_them(client):
    admin = signup(client)
    customer = make_client(admin, name="Acme Ltd")
    invoice = make_invoice(admin, customer, lines=((3, "175", None), ("1.5", "12.3456", None), ("2.125", "1000", None)))
    html = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    cells = re.findall(r'<td class="num">([^<]*)</td>', html)
    # quantity, unit price, discount, tax, amount per line
    assert cells[0:2] == ["3.00", "175.00"]
    assert cells[5:7] == ["1.50", "12.3456"]
    assert cells[10:12] == ["2.125", "1,000.00"]
