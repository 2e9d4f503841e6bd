"""Shared fixtures. The schema is created once per session on a file database
(SQLite by default, PostgreSQL when TEST_DATABASE_URL says so) so that worker
processes started by integration tests see the same data; rows are wiped after
each test."""
from __future__ import annotations

import os
import re
from contextlib import contextmanager

import fakeredis
import jinja2
import pytest
import sqlalchemy as sa
import werkzeug.security
from flask import Flask
from rq import Queue
from sqlalchemy.engine import make_url

from config import TestConfig
from planman import create_app
from planman.extensions import db

pytest_plugins = ["tests.fixtures.services"]

# Password hashes at a lower work factor in the test process: the same
# algorithm (werkzeug's scrypt) and the same code paths, at about 1/30 of the
# CPU. At werkzeug's default (N=2**15) every sign-up and log-in of every test
# cost a tenth of a second or more of CPU, a large share of the whole suite.
# Only this process's default changes: PlanMan itself, and the worker
# processes tests start, keep werkzeug's default.
assert werkzeug.security.generate_password_hash.__defaults__ == ("scrypt", 16), "werkzeug changed its defaults"
werkzeug.security.generate_password_hash.__defaults__ = ("scrypt:1024:8:1", 16)


class _SharedTemplateCache(jinja2.BytecodeCache):
    """Compiled templates kept in memory for the whole test process. Every test
    builds a new app and so a new Jinja environment, which would parse and
    compile each template again; entries are keyed by the template's file and
    checked against its source, as Jinja's own caches are."""

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket):
        self._code[bucket.key] = bucket.bytecode_to_string()


Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": _SharedTemplateCache()}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """The tests' database: a temporary SQLite file, or TEST_DATABASE_URL. Under
    pytest-xdist each worker process gets a database of its own (SQLite: its own
    temporary directory; PostgreSQL: ``<name>_<worker>``, created here and
    dropped at the end), so parallel tests never see each other's rows."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'planman-test.db'}"
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or make_url(url).get_backend_name() != "postgresql":
        yield url
        return
    with _own_postgres_database(make_url(url), worker) as own:
        yield own


@contextmanager
def _own_postgres_database(url, suffix: str):
    name = f"{url.database}_{suffix}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))  # left by a killed run
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:  # FORCE: a worker process may still hold a connection
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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


def pytest_collection_modifyitems(config, items):
    # `database`: the test depends on `database_url` (directly, or through app,
    # client, integration_app, service_env, rq_workers...). That fixture is how
    # tests reach PlanMan's database: the apps they build, the workers'
    # service_env and the migration tests all take their URL from it. A test
    # without it runs the same whatever TEST_DATABASE_URL says (stand-ins'
    # own tests, pure mapping and money, `make run`/`make reset`), so the
    # PostgreSQL run of scripts/test.sh selects `database` tests only.
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.database)
