"""Browser tests: Debian's Chromium driven by pytest-playwright.

Every test under tests/browser is marked ``browser`` and ``slow``: ``make
test-fast`` leaves them out, and the PostgreSQL run of ``make test`` skips
them (``-m "not browser"``). Use the ``page`` fixture with ``live_server``."""
from __future__ import annotations

from pathlib import Path

import pytest

BROWSER_DIR = Path(__file__).resolve().parent

# How Chromium is launched lives in one place: tests/fixtures/services.py
# (``browser_type_launch_args``, ``chromium_launch_args``).


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BROWSER_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
