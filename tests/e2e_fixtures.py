"""Fixtures for end-to-end tests against the Xero stand-in with real Redis and
real rq workers. Import them into a test module:
``from tests.e2e_fixtures import app, config_overrides, connected  # noqa: F401``."""
from __future__ import annotations

import pytest

from tests.helpers import signup
from tests.integration_helpers import choose_settings, connect_xero


@pytest.fixture
def config_overrides():
    # The stand-in accepts redirect URIs on 127.0.0.1 only, as a registered app would.
    return {"PUBLIC_BASE_URL": "http://127.0.0.1:5999"}


@pytest.fixture
def app(integration_app):
    return integration_app


@pytest.fixture
def connected(client, sandbox, rq_workers):
    """An admin whose firm is connected to Demo Company (UK) through the real flow, with 2 workers running."""
    rq_workers.start(2)
    admin = signup(client)
    page = connect_xero(client, sandbox)
    assert page.status_code in (200, 302)
    choose_settings(admin.firm_id)
    return admin
