"""Pages as a bookkeeper sees them, in Chromium at 1280 px and 390 px (a
phone): every page and every state of the integration tab and panel checked
by axe-core (no serious or critical finding), laid out without overflow, the
tab showing the record's state while closed, local times, dismissable
messages. One server and one set of records (tests/browser/scenes.py) serve
the whole module."""
from __future__ import annotations

import fakeredis
import pytest
from playwright.sync_api import Page, expect
from rq import Queue

from tests.browser import scenes as scene_data
from tests.browser.axe import assert_accessible

WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
PAGES = ["clients list", "new client", "client", "edit client", "invoices list", "new invoice", "invoice",
         "edit invoice", "setup", "firm settings", "users", "new user", "tax rates", "new tax rate", "integrations",
         "xero settings", "bulk sends", "bulk progress", "failed pushes", "change password"]

# state -> (chip on the tab, panel headline, the one button or None, opened without asking)
PANELS = {
    "never_sent": ("Not sent", "Not sent to Xero yet", "Send", False),
    "pushing": ("Sending…", "Sending to Xero…", None, False),
    "sent": ("Sent", "Sent to Xero.", "Update", False),
    "changed": ("Changed since sent", "Changed since last sent", "Update", True),
    "changed_invoice": ("Changed since sent", "Changed since last sent", "Update", True),
    "failed": ("Failed", "Sending failed.", "Retry", True),
    "locked": ("Awaiting payment", "Awaiting payment in Xero", None, False),
    "gone": ("Deleted", "Deleted in Xero", "Send again as a new draft", False),
    "needs_reconnect": ("Reconnect", "Xero needs reconnecting.", None, False),
    "not_connected": ("Not connected", "Not connected", None, False),
}


@pytest.fixture(scope="module")
def scenes(_schema, database_url):
    """The app with every scene's rows, served over HTTP for the module: (base URL, Scenes)."""
    from planman import create_app
    from planman.extensions import db
    from tests.conftest import _config, _wipe_all_rows

    app = create_app(_config(database_url))
    app.redis = fakeredis.FakeRedis()
    app.push_queue = Queue(app.config["RQ_QUEUE"], connection=app.redis)
    with app.app_context():
        built = scene_data.build(app.push_queue)
        db.session.remove()
        with scene_data.serve(app) as url:
            yield url, built
        db.session.remove()
        _wipe_all_rows()
        db.engine.dispose()


@pytest.fixture(scope="module")
def signed_in(browser, scenes):
    """signed_in(email) -> a page logged in as that user (one per user for the module)."""
    url, _ = scenes
    pages: dict[str, Page] = {}

    def page_for(email: str) -> Page:
        if email not in pages:
            context = browser.new_context(bypass_csp=True, viewport=dict(zip(("width", "height"), WIDTHS["desktop"])))
            page = context.new_page()
            page.goto(f"{url}/login")
            page.fill("#email", email)
            page.fill("#password", scene_data.PASSWORD)
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{url}/clients/")
            pages[email] = page
        return pages[email]

    yield page_for
    for page in pages.values():
        page.context.close()


def at_width(page: Page, width: str) -> Page:
    w, h = WIDTHS[width]
    page.set_viewport_size({"width": w, "height": h})
    return page


def assert_fits(page: Page, what: str) -> None:
    """Nothing sticks out sideways: the page never scrolls horizontally."""
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{what} is {overflow}px wider than the window"


def line_count(page: Page, selector: str) -> list[int]:
    """How many lines each matching element's text takes."""
    return page.eval_on_selector_all(selector, """els => els.map(el => {
        const range = document.createRange(); range.selectNodeContents(el);
        return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size; })""")


def test_the_scenes_cover_every_page(scenes):
    assert sorted(scenes[1].pages) == sorted(PAGES)
    assert sorted(scenes[1].panels) == sorted(PANELS)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", PAGES)
def test_every_page_is_accessible_and_fits(signed_in, scenes, name, width):
    url, built = scenes
    page = at_width(signed_in(built.admin), width)
    page.goto(url + built.pages[name])
    expect(page.locator("main h1").first).to_be_visible()
    assert_accessible(page, f"{name} at {width}")
    assert_fits(page, name)


@pytest.mark.parametrize("width", WIDTHS)
def test_public_pages_and_form_errors_are_accessible(browser, scenes, width):
    url, _ = scenes
    w, h = WIDTHS[width]
    context = browser.new_context(bypass_csp=True, viewport={"width": w, "height": h})
    page = context.new_page()
    try:
        for path in ("/login", "/signup"):
            page.goto(url + path)
            assert_accessible(page, f"{path} at {width}")
            assert_fits(page, path)
        page.click("button[type=submit]")  # sign-up with every field empty
        expect(page.locator("#firm_name-error")).to_be_visible()
        assert page.get_attribute("#firm_name", "aria-describedby") == "firm_name-error"
        assert page.get_attribute("#password", "aria-describedby") == "password-hint password-error"
        assert_accessible(page, f"sign-up with errors at {width}")
        page.goto(f"{url}/login")
        page.fill("#email", "nobody@example.com")
        page.fill("#password", "wrong password")
        page.click("button[type=submit]")
        expect(page.locator("#login-error")).to_be_visible()
        assert_accessible(page, f"log-in refused at {width}")
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("state", PANELS)
def test_the_tab_shows_the_state_and_the_panel_says_it_once(signed_in, scenes, state, width):
    url, built = scenes
    path, login = built.panels[state]
    chip, headline, button, opens_by_default = PANELS[state]
    page = at_width(signed_in(login), width)
    page.goto(url + path)

    tab = page.locator("#tab-xero")
    expect(tab.locator(".chip")).to_have_text(chip)  # readable with the panel closed
    expect(tab).to_have_attribute("aria-expanded", "true" if opens_by_default else "false")
    if not opens_by_default:
        expect(page.locator("#panel-xero")).to_have_count(0)
        tab.click()
        expect(tab).to_have_attribute("aria-expanded", "true")
    panel = page.locator("#panel-xero")
    expect(panel.locator("h2")).to_have_text(headline)
    expect(tab.locator(".chip")).to_have_text(chip)  # the fragment's copy of the tab agrees
    buttons = panel.get_by_role("button")
    if button:
        expect(buttons).to_have_count(1)
        expect(buttons).to_have_text(button)
    else:
        expect(buttons).to_have_count(0)
    text = panel.inner_text()
    assert text.count("Sent to Xero") <= 1, text
    if "changed" in state:
        assert "Sent to Xero." not in text  # no stale outcome next to "Changed since last sent"
    assert_accessible(page, f"the {state} panel at {width}")
    assert_fits(page, f"the {state} panel")
    if width == "desktop":  # the tab sits at the top right, beside the record
        # Read in one script turn: a Sending… panel's polls replace the tab, and
        # a tab found before a swap and measured after it is detached (all zeros).
        box, main = page.evaluate("() => ['#tab-xero', '.record-main'].map("
                                  "s => document.querySelector(s).getBoundingClientRect().toJSON())")
        assert box["x"] >= main["x"] + main["width"] and box["y"] < main["y"] + 80


def test_the_tab_opens_and_closes_from_the_keyboard(signed_in, scenes):
    url, built = scenes
    page = at_width(signed_in(built.admin), "desktop")
    page.goto(url + built.panels["sent"][0])
    tab = page.locator("#tab-xero")
    tab.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#panel-xero")).to_be_visible()
    expect(tab).to_have_attribute("aria-expanded", "true")
    expect(tab).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#panel-xero")).to_have_count(0)
    expect(tab).to_have_attribute("aria-expanded", "false")


def test_the_record_status_and_the_providers_say_whose_they_are(signed_in, scenes):
    url, built = scenes
    page = at_width(signed_in(built.admin), "desktop")
    page.goto(url + built.panels["locked"][0] + "?panel=xero")
    expect(page.locator("h1 .badge")).to_have_text("PlanMan: Sent")
    facts = page.locator("#panel-xero .facts")
    expect(facts).to_contain_text("In Xero")
    expect(facts).to_contain_text("Awaiting payment")


def test_invoice_headers_and_tax_names_stay_on_one_line_at_1280(signed_in, scenes):
    url, built = scenes
    page = at_width(signed_in(built.admin), "desktop")
    for path in (built.pages["invoice"], built.pages["invoice"].replace("?panel=", "?panel=xero")):
        page.goto(url + path)
        assert set(line_count(page, "#invoice-lines th")) == {1}, path
        cells = page.locator("#invoice-lines td.nowrap")
        expect(cells.first).to_have_text("VAT 20%")
        assert set(line_count(page, "#invoice-lines td.nowrap")) == {1}, path
        # Prices as stored, consistently: 175 -> 175.00, 8.3333 kept.
        expect(page.locator("#invoice-lines tbody tr").nth(0).locator("td.num").nth(1)).to_have_text("175.00")
        expect(page.locator("#invoice-lines tbody tr").nth(1).locator("td.num").nth(1)).to_have_text("8.3333")


def test_on_a_phone_wide_tables_scroll_in_their_own_box(signed_in, scenes):
    url, built = scenes
    page = at_width(signed_in(built.admin), "phone")
    page.goto(url + built.pages["edit invoice"])
    box = page.locator(".table-scroll").first
    assert box.evaluate("el => el.scrollWidth > el.clientWidth")  # the lines scroll sideways...
    assert_fits(page, "the invoice editor")  # ...the page does not


def test_line_descriptions_grow_with_their_text(signed_in, scenes):
    url, built = scenes
    page = at_width(signed_in(built.admin), "desktop")
    page.goto(url + built.pages["edit invoice"])
    description = page.locator("#lines-0-description")
    expect(description).to_have_value("Bookkeeping, October\nBank reconciliation and VAT return")
    clipped = "el => el.scrollHeight - el.clientHeight"
    assert description.evaluate(clipped) <= 1  # both lines show
    two_lines = description.bounding_box()["height"]
    description.fill("One\nTwo\nThree\nFour\nFive")
    assert description.evaluate(clipped) <= 1
    assert description.bounding_box()["height"] > two_lines * 1.8


def test_refresh_sits_beside_save_settings(signed_in, scenes):
    url, built = scenes
    page = at_width(signed_in(built.admin), "desktop")
    page.goto(url + built.pages["xero settings"])
    save, refresh = page.locator("#save-settings").bounding_box(), page.locator("#refresh-details").bounding_box()
    assert abs(save["y"] - refresh["y"]) < 4 and refresh["x"] > save["x"] + save["width"]


def test_a_flash_message_can_be_dismissed(signed_in, scenes):
    url, built = scenes
    page = at_width(signed_in(built.admin), "phone")
    page.goto(url + "/setup/firm")
    page.click("#firm-form button[type=submit]")
    flash = page.locator(".flash-success")
    expect(flash).to_contain_text("Times are now shown in Europe/London.")
    page.get_by_role("button", name="Dismiss message").click()
    expect(flash).to_have_count(0)


def test_a_new_firm_takes_the_browsers_time_zone(browser, scenes):
    url, _ = scenes
    context = browser.new_context(timezone_id="America/Toronto")
    page = context.new_page()
    try:
        page.goto(f"{url}/signup")
        page.fill("#firm_name", "Maple Books")
        page.select_option("#currency", "GBP")  # the browser's zone wins over the currency's
        page.fill("#name", "Mo Maple")
        page.fill("#email", "mo@maple.example")
        page.fill("#password", scene_data.PASSWORD)
        page.fill("#confirm", scene_data.PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{url}/clients/")
        page.goto(f"{url}/setup/firm")
        expect(page.locator("#time_zone")).to_have_value("America/Toronto")
    finally:
        context.close()
