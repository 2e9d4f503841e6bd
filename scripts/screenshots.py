"""Regenerate the README's screenshots (docs/screenshots/*.png).

    .venv/bin/python scripts/screenshots.py

The same records and browser as the browser tests: tests/browser/scenes.py
builds a firm with a record in every integration panel state in a throwaway
SQLite database, PlanMan serves it on a free port, and Debian's Chromium
(/usr/bin/chromium, the tests' launch arguments) photographs it at 1280 px.
The PNGs are reduced to a 256-colour palette (Pillow) to keep the repository
small."""
from __future__ import annotations

import base64
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fakeredis  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from rq import Queue  # noqa: E402

from config import TestConfig  # noqa: E402
from planman import create_app  # noqa: E402
from planman.extensions import db  # noqa: E402
from tests.browser import scenes as scene_data  # noqa: E402
from tests.fixtures.services import chromium_launch_args  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
WIDTH = 1280
# The panel states shown side by side in one picture, in a user's order.
PANEL_STATES = [("never_sent", "Not sent"), ("pushing", "Sending"), ("sent", "Sent"),
                ("changed", "Changed since sent"), ("failed", "Failed"), ("locked", "Approved in Xero")]


def optimise(path: Path) -> None:
    image = Image.open(path).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def shoot(page, name: str, **options) -> None:
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), **options)
    optimise(path)
    print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = type("ScreenshotConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shots.db",
                                                          "PLANMAN_INSTANCE_DIR": tmp})
        app = create_app(config)
        app.redis = fakeredis.FakeRedis()
        app.push_queue = Queue(app.config["RQ_QUEUE"], connection=app.redis)
        with app.app_context():
            db.create_all()
            built = scene_data.build(app.push_queue)
            db.session.remove()
            with scene_data.serve(app) as url, sync_playwright() as playwright:
                browser = playwright.chromium.launch(**chromium_launch_args())
                try:
                    photograph(browser, url, built)
                finally:
                    browser.close()


def photograph(browser, url: str, built) -> None:
    context = browser.new_context(viewport={"width": WIDTH, "height": 760}, timezone_id="Europe/London")
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("#email", built.admin)
    page.fill("#password", scene_data.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/clients/")

    # A client's page, its Xero tab open on a recent send.
    page.goto(url + built.panels["sent"][0] + "?panel=xero")
    shoot(page, "client-page")

    # An invoice's page: lines, totals, and the tab closed but saying where it stands.
    page.goto(url + built.pages["invoice"])
    shoot(page, "invoice-page")

    # The panel in each main state, side by side.
    tiles = []
    for state, caption in PANEL_STATES:
        page.goto(url + built.panels[state][0] + "?panel=xero")
        page.locator("#panel-xero").wait_for()
        png = page.locator(".integration").first.screenshot()
        tiles.append((caption, base64.b64encode(png).decode()))
    board = context.new_page()
    cells = "".join(f'<figure><img src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>'
                    for caption, data in tiles)
    board.set_content(
        "<style>body{margin:0;padding:16px;background:#f7f8fa;font:14px system-ui,sans-serif;color:#596377}"
        "main{display:grid;grid-template-columns:repeat(3,1fr);gap:20px 16px;align-items:start;justify-items:center}"
        "figure{margin:0}img{display:block}figcaption{margin-top:6px;text-align:center}</style>"
        f"<main>{cells}</main>")
    board.set_viewport_size({"width": WIDTH, "height": 400})
    shoot(board, "panel-states", full_page=True)

    # A bulk send under way.
    page.goto(url + built.pages["bulk progress"])
    page.locator("#bulk-failures").wait_for()
    shoot(page, "bulk-progress")
    context.close()


if __name__ == "__main__":
    main()
