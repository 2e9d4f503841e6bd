"""Redis going away: log-in (which Redis throttles) says plainly that sign-in
is briefly unavailable (503, never a 500), and works again when Redis is back.
A real redis-server is stopped and started again on the same port."""
from __future__ import annotations

import pytest
from redis import Redis
from rq import Queue

from tests.fixtures.services import free_port, redis_server_binary, start_process, wait_until
from tests.helpers import PASSWORD, login, logout, signup

pytestmark = pytest.mark.integration


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, which it may stop: ``.start()``, ``.stop()``, ``.url``."""
    port = free_port()

    class Server:
        url = f"redis://127.0.0.1:{port}/0"
        process = None

        def start(self):
            self.process = start_process(
                "redis-server", [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(tmp_path)], tmp_path / "redis.log")
            wait_until(Redis.from_url(self.url).ping, 10, "redis-server to answer", self.process)

        def stop(self):
            self.process.stop()

    server = Server()
    server.start()
    yield server
    server.stop()


def test_log_in_says_sign_in_is_briefly_unavailable_while_redis_is_down(app, client, own_redis):
    app.redis = Redis.from_url(own_redis.url)
    app.push_queue = Queue(app.config["RQ_QUEUE"], connection=app.redis)
    user = signup(client)
    logout(client)

    own_redis.stop()
    response = login(client, user.email)
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "Sign-in is briefly unavailable" in html and "try again in a minute" in html
    assert response.headers["Retry-After"] == "30"
    assert "Traceback" not in html and "Connection refused" not in html
    assert client.get("/clients/").status_code == 302  # not logged in

    own_redis.start()
    assert login(client, user.email, PASSWORD).status_code == 302
    assert client.get("/clients/").status_code == 200
