"""Behind a reverse proxy, PlanMan sees each person's own address (log-in throttling counts per address)."""
import pytest
from flask import request


@pytest.fixture
def config_overrides():
    return {"TRUSTED_PROXY_COUNT": 1}


def test_client_address_comes_from_the_trusted_proxy(app):
    seen = []
    app.add_url_rule("/_address", "address", lambda: seen.append(request.remote_addr) or "ok")
    app.test_client().get("/_address", headers={"X-Forwarded-For": "203.0.113.9"})
    assert seen == ["203.0.113.9"]
