"""Every POST route, rq-dashboard's included, refuses a request without a valid
CSRF token (400) and changes nothing; no GET route changes anything.

Routes come from ``app.url_map``, URL values from the isolation walker's tables
(with the walking firm's own ids, so a request with a token would act)."""
from __future__ import annotations

import pytest

from tests.helpers import client  # noqa: F401
from tests.security.conftest import csrf_headers, dump_database, dump_redis
from tests.security.test_isolation_walk import NOT_RECORD_IDS, OTHER_FIRMS_ID, expand

pytestmark = pytest.mark.integration

# POST routes that take no CSRF token because no browser posts to them; each
# proves its sender another way, tested where named.
CSRF_EXEMPT = {
    "webhooks.receive",  # providers sign the raw body: tests/test_webhook_intake.py
}


def own_urls(app, firm, method):
    adapter = app.url_map.bind("localhost")
    unknown = {a for rule in app.url_map.iter_rules() for a in rule.arguments} - set(OTHER_FIRMS_ID) - set(NOT_RECORD_IDS)
    assert not unknown, f"classify these URL parameters in test_isolation_walk.py: {sorted(unknown)}"
    return [(rule.endpoint, adapter.build(rule.endpoint, args))
            for rule in app.url_map.iter_rules() if method in rule.methods for args in expand(rule, firm)]


def test_every_post_route_refuses_a_missing_or_foreign_csrf_token(app, firms, real_redis):
    me, other = firms
    posts = [(endpoint, url) for endpoint, url in own_urls(app, me, "POST") if endpoint not in CSRF_EXEMPT]
    endpoints = {endpoint for endpoint, _ in posts}
    assert {"auth.logout", "clients.new", "integrations.push_record", "integrations.disconnect",
            "rq_dashboard.delete_job_view", "rq_dashboard.empty_queue"} <= endpoints
    foreign = csrf_headers(other.browser)["X-CSRFToken"]  # valid, but another session's
    before_db, before_redis = dump_database(), dump_redis(real_redis)
    answers = []
    for endpoint, url in posts:
        for headers, data in [({}, {}), ({"X-CSRFToken": foreign}, {"csrf_token": foreign}),
                              ({"X-CSRFToken": "forged"}, {"csrf_token": "forged"})]:
            response = me.browser.post(url, headers={"HX-Request": "true", **headers}, data=data)
            answers.append((url, headers.get("X-CSRFToken", "none")[:8], response.status_code))
    assert [a for a in answers if a[2] != 400] == []
    assert dump_database() == before_db
    assert dump_redis(real_redis) == before_redis
    # Still logged in: the refused logout did not log out.
    assert me.browser.get("/clients/").status_code == 200


def test_no_get_route_changes_anything(app, firms, real_redis):
    me, _ = firms
    before_db, before_redis = dump_database(), dump_redis(real_redis)
    statuses = {url: me.browser.get(url).status_code for _, url in own_urls(app, me, "GET")}
    assert 500 not in statuses.values(), statuses
    assert statuses["/setup/rq/requeue/planman"] == 404  # rq-dashboard's queue-wide action, GET twin included
    assert dump_database() == before_db
    assert dump_redis(real_redis) == before_redis


def test_only_the_listed_routes_are_csrf_exempt(app):
    from planman.extensions import csrf

    exempt = {endpoint for endpoint, view in app.view_functions.items()
              if f"{view.__module__}.{view.__name__}" in csrf._exempt_views}
    assert exempt == CSRF_EXEMPT
