"""Fixtures of the push-provider contract suite: one connected firm per test
module and provider, shared by its cases (they each use records of their own),
with real Redis, two real ``rq worker --with-scheduler`` processes and the
provider's stand-in. ``driver`` is parametrised over ``drivers.DRIVERS``."""
from __future__ import annotations

import os

import pytest
import redis

from tests.contract.drivers import DRIVERS
from tests.fixtures.services import Sandbox, WorkerPool, _pythonpath

# The stand-ins accept redirect URIs on 127.0.0.1 only, as a registered app would.
PUBLIC_BASE_URL = "http://127.0.0.1:5999"


@pytest.fixture(scope="module", params=DRIVERS, ids=lambda driver: driver.key)
def driver(request):
    return request.param


@pytest.fixture(scope="module")
def standin(driver, standins_url):
    helper = Sandbox(f"{standins_url}/{driver.prefix}")
    helper.reset()
    yield helper
    helper.close()


@pytest.fixture(autouse=True)
def _no_faults_left(request):
    """A case that injected faults leaves none behind for the next one."""
    yield
    if "standin" in request.fixturenames:
        request.getfixturevalue("standin").control("faults/clear")


@pytest.fixture(scope="module")
def contract_config(driver, standin, redis_url):
    return {"PUBLIC_BASE_URL": PUBLIC_BASE_URL, "REDIS_URL": redis_url, **driver.config(standin.url)}


@pytest.fixture(scope="module")
def app(_schema, database_url, redis_url, contract_config):
    """The app on real Redis (flushed first) and the stand-in, for the whole module."""
    from planman import create_app
    from planman.extensions import db
    from tests.conftest import _config, _wipe_all_rows

    redis.Redis.from_url(redis_url).flushall()
    app = create_app(_config(database_url, **contract_config))
    with app.app_context():
        yield app
        db.session.remove()
        _wipe_all_rows()
        db.engine.dispose()


@pytest.fixture(scope="module")
def workers(app, database_url, contract_config, tmp_path_factory):
    """Two real workers with the module's configuration in their environment."""
    import config
    from config import TestConfig

    env = dict(os.environ)
    env.pop("TEST_DATABASE_URL", None)
    for module in config.PROVIDER_CONFIGS:  # every provider's test values, then the stand-in's
        env.update({key: str(value) for key, value in getattr(module, "TEST_SETTINGS", {}).items()})
    env.update({key: str(value) for key, value in contract_config.items()})
    env.update({"DATABASE_URL": database_url, "SECRET_KEY": TestConfig.SECRET_KEY,
                "TOKEN_ENCRYPTION_KEY": TestConfig.TOKEN_ENCRYPTION_KEY, "RQ_QUEUE": TestConfig.RQ_QUEUE,
                "RQ_BULK_QUEUE": TestConfig.RQ_BULK_QUEUE,
                "PLANMAN_INSTANCE_DIR": str(tmp_path_factory.mktemp("instance")), "PYTHONPATH": _pythonpath(),
                "PYTHONUNBUFFERED": "1"})
    pool = WorkerPool(env, tmp_path_factory.mktemp("workers"))
    pool.start(2)
    yield pool
    pool.stop()


@pytest.fixture(scope="module")
def admin_client(app):
    from tests.helpers import IsolatedClient

    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture(scope="module")
def connected(app, admin_client, driver, standin, workers):
    """An admin whose firm is connected through the stand-in's consent page, settings chosen."""
    from tests.helpers import signup

    admin = signup(admin_client)
    answer = driver.connect(admin_client, standin)
    assert answer.status_code in (200, 302), answer.get_data(as_text=True)
    driver.settle(admin.firm_id)
    return admin
