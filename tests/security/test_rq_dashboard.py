"""The job queue dashboard (/setup/rq) shows every firm's jobs, so it is for
operators only: every route of it, pages and JSON alike, is refused to
strangers and to any firm's users, admins included (401, asking for the
operator credential), and changes nothing; without RQ_DASHBOARD_USERS it does
not exist (404). For operators its pages work under the app's strict CSP and
show a job's exception text escaped."""
from __future__ import annotations

import base64

import pytest
from rq import Queue, SimpleWorker

from tests.conftest import _config
from tests.dashboard_jobs import OPERATOR, OPERATOR_PASSWORD, operator_users
from tests.helpers import PASSWORD, login, make_client, new_client
from tests.security.conftest import dump_database, dump_redis
from tests.security.test_csrf_walk import own_urls

pytestmark = pytest.mark.integration

MARKUP = "<img src=x onerror=alert(1)>"


@pytest.fixture
def config_overrides():
    # Room for the walks' many wrong passwords; the limit has tests of its own below.
    return {"RQ_DASHBOARD_USERS": operator_users(), "LOGIN_MAX_FAILURES": 1000}


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


OPERATOR_AUTH = basic(OPERATOR, OPERATOR_PASSWORD)


def operator_headers(browser) -> dict:
    """The credential and the CSRF token the dashboard's own page carries (htmx sends it)."""
    from tests.conftest import csrf_token_from

    page = browser.get("/setup/rq/", headers=OPERATOR_AUTH).get_data(as_text=True)
    return {"X-CSRFToken": csrf_token_from(page), **OPERATOR_AUTH}


def token_of(browser) -> str:
    from tests.conftest import csrf_token_from

    return csrf_token_from(browser.get("/login", follow_redirects=True).get_data(as_text=True))


def dashboard_urls(app, firm, method):
    return [(e, url) for e, url in own_urls(app, firm, method)
            if e.startswith("rq_dashboard.") and e != "rq_dashboard.static"]


def test_no_firm_user_or_stranger_opens_any_dashboard_route_and_nothing_changes(app, firms, real_redis):
    me, _ = firms
    from planman.extensions import db
    from planman.models import User

    colleague = new_client(app)
    login(colleague, db.session.get(User, me.colleague_id).email, PASSWORD)
    stranger = new_client(app)
    gets, posts = dashboard_urls(app, me, "GET"), dashboard_urls(app, me, "POST")
    assert {"rq_dashboard.queues_overview", "rq_dashboard.list_queues", "rq_dashboard.list_jobs",
            "rq_dashboard.job_info", "rq_dashboard.list_workers", "rq_dashboard.job_view",
            "rq_dashboard.requeue_job_view", "rq_dashboard.delete_job_view"} <= {e for e, _ in gets + posts}
    before_db, before_redis = dump_database(), dump_redis(real_redis)
    wrong = []
    for who, browser, extra in [("admin", me.browser, {}), ("colleague", colleague, {}), ("stranger", stranger, {}),
                                ("admin, wrong password", me.browser, basic(OPERATOR, "guess")),
                                ("admin, own login", me.browser, basic(me.admin.email, PASSWORD)),
                                ("unknown name", stranger, basic("öps", OPERATOR_PASSWORD))]:
        headers = {"X-CSRFToken": token_of(browser), **extra}  # CSRF passes, so the credential decides
        for method, urls in (("GET", gets), ("POST", posts)):
            for _, url in urls:
                answer = browser.open(url, method=method, headers=headers)
                if answer.status_code != 401 or "Basic" not in answer.headers.get("WWW-Authenticate", ""):
                    wrong.append((who, method, url, answer.status_code))
                elif me.rq_job_id in answer.get_data(as_text=True):
                    wrong.append((who, method, url, "job id in the refusal"))
    assert wrong == []
    assert dump_database() == before_db
    assert dump_redis(real_redis) == before_redis


def test_the_operator_sees_every_page_and_json_endpoint_under_the_strict_csp(app, firms, client):
    me, other = firms
    statuses, policies = {}, set()
    for endpoint, url in dashboard_urls(app, me, "GET"):
        answer = client.get(url, headers=OPERATOR_AUTH)
        statuses[url] = answer.status_code
        policies.add(answer.headers["Content-Security-Policy"])
    assert statuses.pop("/setup/rq/requeue/planman") == 404  # queue-wide: the rq command line's job
    assert set(statuses.values()) == {200}, statuses
    [policy] = policies
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in policy
    queued = client.get("/setup/rq/0/view/jobs/planman/queued/20/asc/1", headers=OPERATOR_AUTH).get_data(as_text=True)
    assert me.rq_job_id in queued and other.rq_job_id in queued  # every firm's: operators only
    assert "Loading..." not in queued


def test_queue_wide_actions_and_unknown_jobs_are_404_for_operators_too(app, firms, client, real_redis):
    me, _ = firms
    headers = operator_headers(client)
    before = dump_redis(real_redis)
    for url in ("/setup/rq/queue/planman/queued/empty", "/setup/rq/queue/planman/compact", "/setup/rq/requeue/planman"):
        assert client.post(url, headers=headers).status_code == 404, url
    assert client.get("/setup/rq/0/view/job/no-such-job", headers=OPERATOR_AUTH).status_code == 404
    assert client.get("/setup/rq/0/data/job/no-such-job.json", headers=OPERATOR_AUTH).status_code == 404
    assert client.get("/setup/rq/1/view/queues", headers=OPERATOR_AUTH).status_code == 404
    assert dump_redis(real_redis) == before


def test_operator_posts_still_need_the_csrf_token(app, firms, client, real_redis):
    me, _ = firms
    before = dump_redis(real_redis)
    assert client.post(f"/setup/rq/job/{me.rq_job_id}/delete", headers=OPERATOR_AUTH).status_code == 400
    assert dump_redis(real_redis) == before
    # With the token the page carries (htmx sends it), the operator's delete acts.
    answer = client.post(f"/setup/rq/job/{me.rq_job_id}/delete", headers=operator_headers(client))
    assert answer.status_code == 200 and answer.get_json() == {"status": "OK"}
    listed = client.get("/setup/rq/0/data/jobs/planman/queued/100/asc/1.json", headers=OPERATOR_AUTH).get_json()
    assert me.rq_job_id not in [job["id"] for job in listed["jobs"]]


def test_a_failed_jobs_exception_text_is_shown_escaped(app, firms, client, real_redis):
    me, _ = firms
    customer = make_client(me.admin, name=f"Acme {MARKUP} Ltd")
    job = Queue("planman", connection=real_redis).enqueue("tests.dashboard_jobs.save_client_copy", customer.id)
    SimpleWorker([Queue("planman", connection=real_redis)], connection=real_redis).work(burst=True)
    job.refresh()
    assert job.get_status() == "failed" and MARKUP in job.latest_result().exc_string  # RQ recorded the name
    for url in ("/setup/rq/0/view/jobs/planman/failed/20/dsc/1", f"/setup/rq/0/view/job/{job.id}"):
        page = client.get(url, headers=OPERATOR_AUTH).get_data(as_text=True)
        assert "&lt;img src=x onerror=alert(1)&gt;" in page, url
        assert "<img" not in page, url


def test_without_operators_configured_there_is_no_dashboard(database_url, redis_url):
    from planman import create_app

    app = create_app(_config(database_url, RQ_DASHBOARD_USERS="", REDIS_URL=redis_url))
    with app.test_client() as browser:
        for url in ("/setup/rq/", "/setup/rq/0/data/queues.json", "/setup/rq/0/data/workers.json"):
            assert browser.get(url, headers=OPERATOR_AUTH).status_code == 404, url


def test_operator_entries_must_be_password_hashes(database_url):
    from werkzeug.security import generate_password_hash

    from planman import create_app
    from planman.rq_dashboard_mount import parse_users

    default_hash = generate_password_hash("x")  # what the README's command makes (scrypt)
    assert set(parse_users(f"{operator_users()}, ops2:{default_hash}")) == {"ops", "ops2"}
    for bad in ("ops:plain-password", "ops", ":pbkdf2:sha256:1$a$b"):
        with pytest.raises(ValueError, match="password-hash"):
            parse_users(bad)
    with pytest.raises(ValueError, match="RQ_DASHBOARD_USERS: 'ops' needs name:password-hash"):
        create_app(_config(database_url, RQ_DASHBOARD_USERS="ops:secret"))


def test_firm_admins_have_their_own_failed_pushes_page_instead(app, firms):
    me, other = firms
    page = me.browser.get("/integrations/failed").get_data(as_text=True)
    assert "Xero is unavailable." in page  # the reason
    assert f"/integrations/pushes/{me.failed_push_id}/retry" in page  # and Retry
    assert f"/integrations/pushes/{other.failed_push_id}/retry" not in page
    assert "/setup/rq" not in page  # no link to a dashboard they may not open


@pytest.mark.parametrize("config_overrides", [{"RQ_DASHBOARD_USERS": operator_users(), "LOGIN_MAX_FAILURES": 3}])
def test_wrong_operator_passwords_are_limited_per_address(app, client):
    here, elsewhere = {"REMOTE_ADDR": "203.0.113.7"}, {"REMOTE_ADDR": "198.51.100.9"}
    for _ in range(5):  # the operator's own refreshes are not failures
        assert client.get("/setup/rq/", headers=OPERATOR_AUTH, environ_base=here).status_code == 200
    wrong = basic(OPERATOR, "guess")
    assert [client.get("/setup/rq/", headers=wrong, environ_base=here).status_code for _ in range(4)] == \
        [401, 401, 401, 429]
    # Used up: not even the right password is tested from this address; another address is unaffected.
    locked = client.get("/setup/rq/", headers=OPERATOR_AUTH, environ_base=here)
    assert locked.status_code == 429 and "Too many wrong operator passwords" in locked.get_data(as_text=True)
    assert client.get("/setup/rq/", headers=OPERATOR_AUTH, environ_base=elsewhere).status_code == 200


@pytest.mark.parametrize("config_overrides", [{"RQ_DASHBOARD_USERS": operator_users(), "LOGIN_MAX_FAILURES": 3}])
def test_concurrent_wrong_passwords_test_at_most_the_limit(app, live_server):
    from concurrent.futures import ThreadPoolExecutor

    import requests

    def guess(n):
        return requests.get(f"{live_server}/setup/rq/", auth=(OPERATOR, f"guess-{n}"), timeout=60).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(guess, range(20)))
    assert sorted(statuses) == [401] * 3 + [429] * 17  # each 401 is a password that was tested
