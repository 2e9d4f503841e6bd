"""Only admins connect, disconnect, change settings, see failed pushes or retry
them: a colleague gets 404 and a stranger the login page, and neither changes
anything. Walks every route of the integrations and setup blueprints except the
few every user needs. (RQ's dashboard is for operators, not admins:
test_rq_dashboard.py.)"""
from __future__ import annotations

import pytest

from tests.helpers import PASSWORD, client, login, new_client  # noqa: F401
from tests.security.conftest import csrf_headers, dump_database, dump_redis
from tests.security.test_csrf_walk import own_urls

pytestmark = pytest.mark.integration

ADMIN_BLUEPRINTS = ("integrations", "setup")
# What every signed-in user of a firm may use: seeing whether it is connected, Send/Update, bulk sends.
EVERY_USER = {"integrations.index", "integrations.provider", "integrations.panel", "integrations.push_record",
              "integrations.bulk_sends", "integrations.bulk_start", "integrations.bulk_push",
              "integrations.bulk_progress", "integrations.bulk_retry"}


# Admin-only routes a provider adds in its own blueprint.
ADMIN_ELSEWHERE = {"gocardless.automatic"}


def admin_only_urls(app, firm, method):
    return [(e, url) for e, url in own_urls(app, firm, method)
            if (e.split(".")[0] in ADMIN_BLUEPRINTS and e not in EVERY_USER) or e in ADMIN_ELSEWHERE]


def test_colleagues_get_404_and_strangers_the_login_page_on_every_admin_route(app, firms, real_redis):
    firm, _ = firms
    colleague = new_client(app)
    from planman.extensions import db
    from planman.models import User

    login(colleague, db.session.get(User, firm.colleague_id).email, PASSWORD)
    stranger = new_client(app)
    headers = csrf_headers(colleague)
    gets, posts = admin_only_urls(app, firm, "GET"), admin_only_urls(app, firm, "POST")
    endpoints = {e for e, _ in gets + posts}
    assert {"integrations.connect", "integrations.disconnect", "integrations.settings", "integrations.failed_pushes",
            "integrations.retry", "gocardless.automatic"} <= endpoints
    before_db, before_redis = dump_database(), dump_redis(real_redis)
    wrong = []
    for endpoint, url in gets + posts:
        method = "GET" if (endpoint, url) in gets else "POST"
        answer = colleague.open(url, method=method, headers=headers, data={"csrf_token": headers["X-CSRFToken"]})
        if answer.status_code != 404:
            wrong.append(("colleague", method, url, answer.status_code))
        if method == "GET":
            answer = stranger.get(url)
            if answer.status_code != 302 or "/login" not in answer.headers["Location"]:
                wrong.append(("stranger", method, url, answer.status_code))
    assert wrong == []
    assert dump_database() == before_db
    assert dump_redis(real_redis) == before_redis


def test_the_colleague_sees_the_connection_but_no_controls_and_the_admin_sees_them(app, firms):
    firm, _ = firms
    colleague = new_client(app)
    from planman.extensions import db
    from planman.models import User

    login(colleague, db.session.get(User, firm.colleague_id).email, PASSWORD)
    for_colleague = colleague.get("/integrations/xero").get_data(as_text=True)
    for_admin = firm.browser.get("/integrations/xero").get_data(as_text=True)
    for control in ("/integrations/xero/disconnect", "/integrations/xero/settings"):
        assert control not in for_colleague and control in for_admin
    failed = firm.browser.get("/integrations/failed")
    assert failed.status_code == 200 and "Xero is unavailable." in failed.get_data(as_text=True)
    assert f"/integrations/pushes/{firm.failed_push_id}/retry" in failed.get_data(as_text=True)
