"""Shared fixtures. The schema is created once per session on a file database
(SQLite by default, PostgreSQL when TEST_DATABASE_URL says so) so that worker
processes started by integration tests see the same data; rows are wiped after
each test."""
from __future__ import annotations

import os
import re

import fakeredis
import pytest
from rq import Queue

from config import TestConfig
from planman import create_app
from planman.extensions import db

pytest_plugins = ["tests.fixtures.services"]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'planman-test.db'}"


@pytest.fixture(scope="session")
def _schema(database_url):
    app = create_app(_config(database_url))
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _config(database_url, **overrides):
    attrs = {"SQLALCHEMY_DATABASE_URI": database_url, **overrides}
    return type("PerTestConfig", (TestConfig,), attrs)


@pytest.fixture
def config_overrides():
    """Override in a test module to change the app's configuration."""
    return {}


@pytest.fixture
def app(_schema, database_url, config_overrides):
    app = create_app(_config(database_url, **config_overrides))
    # In-process Redis for ordinary tests; integration tests swap in a real server.
    app.redis = fakeredis.FakeRedis()
    app.push_queue = Queue(app.config["RQ_QUEUE"], connection=app.redis)
    with app.app_context():
        yield app
        db.session.remove()
        _wipe_all_rows()
        db.engine.dispose()


def _wipe_all_rows():
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def client(app):
    """A test client whose requests each run in their own app context, as in production."""
    from tests.helpers import IsolatedClient

    app.test_client_class = IsolatedClient
    return app.test_client()


_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


def csrf_token_from(html: str) -> str:
    match = _CSRF_RE.search(html)
    assert match, "page carries no CSRF token"
    return match.group(1) or match.group(2)
