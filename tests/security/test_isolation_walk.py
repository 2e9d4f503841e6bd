"""Another firm's ids are 404 on every route that takes one, for every method
the route allows, and nothing of the other firm changes.

The walker reads ``app.url_map``: a new route whose URL carries a parameter
this file does not know fails the test until someone says how to make a real
id of another firm for it (``OTHER_FIRMS_ID``) or why it is not a record id
(``NOT_RECORD_IDS``)."""
from __future__ import annotations

import pytest

from planman.integrations import push
from tests.helpers import client  # noqa: F401
from tests.security.conftest import csrf_headers, dump_database, dump_redis

pytestmark = pytest.mark.integration

# How to name a record of the other firm, by URL parameter.
OTHER_FIRMS_ID = {
    "client_id": lambda firm, args: firm.client_id,
    "invoice_id": lambda firm, args: firm.invoice_id,
    "record_id": lambda firm, args: {"client": firm.client_id, "invoice": firm.invoice_id}[args["record_type"]],
    "push_id": lambda firm, args: firm.failed_push_id,
    "user_id": lambda firm, args: firm.colleague_id,
    "rate_id": lambda firm, args: firm.rate_id,
    "job_id": lambda firm, args: firm.rq_job_id,
    "bulk_id": lambda firm, args: firm.bulk_id,
    "payment_id": lambda firm, args: firm.payment_id,
    "collection_id": lambda firm, args: firm.collection_id,
}

# Parameters that name no firm's record, with the values to walk.
NOT_RECORD_IDS = {
    "provider": ["xero"],
    "provider_key": ["xero"],
    "record_type": sorted(push.RECORD_MODELS),  # every kind of record the panel serves
    "instance_number": [0],                     # rq-dashboard: which Redis
    "queue_name": ["planman"],
    "registry_name": ["queued"],
    "per_page": [10],
    "order": ["asc"],
    "page": [1],
    "filename": ["x.js"],                        # static files
    "token": ["x"],                              # invite and payment links are capabilities, tested in
                                                 # test_setup and test_payments_page
}


def id_routes(app):
    """(rule, methods) for every rule with a record id; fails on a parameter nobody classified."""
    unknown = {(rule.rule, arg) for rule in app.url_map.iter_rules() for arg in rule.arguments
               if arg not in OTHER_FIRMS_ID and arg not in NOT_RECORD_IDS}
    assert not unknown, f"routes with URL parameters this walker cannot produce an id for: {sorted(unknown)}"
    return [rule for rule in app.url_map.iter_rules() if set(rule.arguments) & set(OTHER_FIRMS_ID)]


def expand(rule, other):
    """Every combination of fixed values, with the other firm's id filled in."""
    combos = [{}]
    for arg in sorted(rule.arguments, key=lambda a: a in OTHER_FIRMS_ID):
        if arg in NOT_RECORD_IDS:
            combos = [{**c, arg: value} for c in combos for value in NOT_RECORD_IDS[arg]]
        else:
            combos = [{**c, arg: OTHER_FIRMS_ID[arg](other, c)} for c in combos]
    return combos


def test_every_id_route_is_404_for_another_firms_id(app, firms, real_redis):
    me, other = firms
    routes = id_routes(app)
    assert len(routes) >= 15, [r.rule for r in routes]  # the walker really found the id routes
    before_db, before_redis = dump_database(), dump_redis(real_redis)
    headers = csrf_headers(me.browser)
    adapter = app.url_map.bind("localhost")
    answers = []
    for rule in routes:
        for args in expand(rule, other):
            url = adapter.build(rule.endpoint, args, force_external=False)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if method == "GET":
                    response = me.browser.get(url)
                else:
                    response = me.browser.open(url, method=method, headers={**headers, "HX-Request": "true"},
                                               data={"csrf_token": headers["X-CSRFToken"]})
                answers.append((method, url, response.status_code))
    wrong = [a for a in answers if a[2] != 404]
    assert not wrong, f"another firm's id did not give 404: {wrong}"
    assert dump_database() == before_db
    assert dump_redis(real_redis) == before_redis


def test_the_same_routes_answer_for_the_firms_own_ids(app, firms):
    """The 404s above are about ownership: the owner's GETs of the same URLs work."""
    _, owner = firms
    adapter = app.url_map.bind("localhost")
    for rule in id_routes(app):
        if "GET" not in rule.methods or rule.endpoint.startswith("rq_dashboard."):
            continue  # the dashboard is no firm's: operators only (test_rq_dashboard.py)
        for args in expand(rule, owner):
            url = adapter.build(rule.endpoint, args)
            assert owner.browser.get(url).status_code == 200, url


def test_another_firms_client_is_not_offered_on_a_new_invoice(firms):
    me, other = firms
    from planman.extensions import db
    from planman.models import Client

    name = db.session.get(Client, other.client_id).name
    page = me.browser.get(f"/invoices/new?client_id={other.client_id}").get_data(as_text=True)
    assert name not in page


def test_a_bulk_send_of_another_firms_ids_sends_nothing_of_theirs(app, firms, real_redis):
    me, other = firms
    headers = csrf_headers(me.browser)
    before = dump_database()
    for record_type, record_id in (("client", other.client_id), ("invoice", other.invoice_id)):
        response = me.browser.post("/integrations/bulk", headers=headers, data={
            "csrf_token": headers["X-CSRFToken"], "record_type": record_type, "mode": "selected",
            "ids": [str(record_id)], "provider": "xero"})
        assert response.status_code == 302
        assert "Select at least one" in me.browser.get(response.headers["Location"]).get_data(as_text=True)
    assert dump_database() == before


def test_no_firm_can_empty_or_requeue_the_queue_all_firms_share(app, firms, real_redis):
    me, other = firms
    from rq.job import Job

    headers = csrf_headers(me.browser)
    before = dump_redis(real_redis)
    for url in ("/setup/rq/queue/planman/queued/empty", "/setup/rq/queue/planman/compact",
                "/setup/rq/requeue/planman"):
        assert me.browser.post(url, headers=headers).status_code == 404, url
        assert me.browser.get(url).status_code in (404, 405), url
    assert Job.exists(other.rq_job_id, connection=real_redis)
    assert dump_redis(real_redis) == before


def test_no_firm_reads_the_dashboards_job_lists(app, firms):
    # The shared queue's dashboard is for operators only (test_rq_dashboard.py walks it with one configured).
    me, other = firms
    answer = me.browser.get("/setup/rq/0/data/jobs/planman/queued/100/asc/1.json")
    assert answer.status_code == 404
    assert other.rq_job_id not in answer.get_data(as_text=True)
