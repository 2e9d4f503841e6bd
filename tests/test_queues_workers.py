"""Queue priority and fairness with a real `rq worker` (real Redis, the Xero
stand-in), as production runs them (README, Production: queues).

The work is queued while no worker runs, then one worker is started: the order
it takes the work in is then the queues' rule alone, read back from when each
push started (never timed)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.models import BulkPush, PushJob
from tests.e2e_fixtures import app, config_overrides  # noqa: F401
from tests.helpers import htmx_post, make_client, post_form, signup
from tests.integration_helpers import choose_settings, connect_xero
from tests.fixtures.services import wait_until
from tests.test_bulk_e2e import wait_for_bulk
from standins.xero.demo import UK_TENANT_ID, US_TENANT_ID

pytestmark = pytest.mark.integration


@pytest.fixture
def two_firms(app, client, sandbox, rq_workers):
    """Two firms, each connected to its own organisation; no worker left running."""
    rq_workers.start(1)  # loads each organisation's details after connecting
    firms = []
    for tenant, browser in ((UK_TENANT_ID, client), (US_TENANT_ID, app.test_client())):
        admin = signup(browser)
        connect_xero(browser, sandbox, tenants=(tenant,))
        choose_settings(admin.firm_id)
        firms.append((admin, browser))
    rq_workers.stop()
    return firms


def bulk_send(browser, records) -> int:
    answer = post_form(browser, "/integrations/bulk", {"record_type": "client", "mode": "selected",
                                                      "ids": [r.id for r in records]}, form_url="/integrations/bulk")
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return db.session.scalar(sa.select(sa.func.max(BulkPush.id)))


def batches_in_order(firm_ids) -> list[tuple[int, int]]:
    """(firm, batch) in the order the worker sent them: pushes started together are one batch."""
    db.session.expire_all()
    started = db.session.execute(sa.select(PushJob.firm_id, PushJob.started_at).where(
        PushJob.firm_id.in_(firm_ids)).order_by(PushJob.started_at)).all()
    order = []
    for firm_id, at in started:
        if not order or order[-1][1] != at:
            order.append((firm_id, at))
    return [firm_id for firm_id, _ in order]


def test_a_send_clicked_after_a_bulk_send_is_taken_before_the_bulk_batches(two_firms, rq_workers, sandbox):
    (admin, browser), _ = two_firms
    bulk_id = bulk_send(browser, [make_client(admin, name=f"Bulk {n:03d}") for n in range(150)])  # 3 batches
    single = make_client(admin, name="Clicked Ltd")
    assert htmx_post(browser, f"/integrations/xero/client/{single.id}/panel", {}).status_code == 200

    rq_workers.start(1)
    wait_for_bulk(browser, bulk_id)
    db.session.expire_all()
    clicked = db.session.scalar(sa.select(PushJob).where(PushJob.record_id == single.id, PushJob.bulk_push_id.is_(None)))
    first_batch = db.session.scalar(sa.select(sa.func.min(PushJob.started_at)).where(PushJob.bulk_push_id == bulk_id))
    assert clicked.state == "succeeded"
    assert clicked.started_at < first_batch  # queued last, taken first
    assert ">Update<" in browser.get(f"/integrations/xero/client/{single.id}/panel").get_data(as_text=True)


def test_a_worker_on_the_interactive_queue_alone_sends_a_click_while_the_others_are_inside_a_batch(
        two_firms, rq_workers, sandbox):
    (admin, browser), _ = two_firms
    # Xero answers a batch of 50 in 4 s (80 ms a record), a single record at once.
    sandbox.control("latency", enabled=True, base_ms=0, per_record_ms=80, jitter=0)
    bulk_id = bulk_send(browser, [make_client(admin, name=f"Bulk {n:03d}") for n in range(100)])  # 2 batches
    # The interactive worker first, so it is up before the batch starts (a
    # worker can take seconds to start on a busy machine; nothing here is timed).
    rq_workers.start(1, interactive_only=True)
    rq_workers.start(1)
    wait_until(lambda: _pushes_in(bulk_id, "running"), 30, "the first batch to be sent")

    single = make_client(admin, name="Clicked Ltd")
    assert htmx_post(browser, f"/integrations/xero/client/{single.id}/panel", {}).status_code == 200
    wait_for_bulk(browser, bulk_id)
    db.session.expire_all()
    clicked = db.session.scalar(sa.select(PushJob).where(PushJob.record_id == single.id, PushJob.bulk_push_id.is_(None)))
    first_batch_done = db.session.scalar(sa.select(sa.func.min(PushJob.finished_at)).where(
        PushJob.bulk_push_id == bulk_id))
    assert clicked.state == "succeeded"
    assert clicked.finished_at < first_batch_done  # sent while the only bulk-taking worker was inside its batch
    assert ">Update<" in browser.get(f"/integrations/xero/client/{single.id}/panel").get_data(as_text=True)


def _pushes_in(bulk_id: int, state: str) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count(PushJob.id)).where(PushJob.bulk_push_id == bulk_id,
                                                                     PushJob.state == state))


def test_two_firms_bulk_sends_take_turns_batch_by_batch(two_firms, rq_workers, sandbox):
    (first, first_browser), (second, second_browser) = two_firms
    big = bulk_send(first_browser, [make_client(first, name=f"Big {n:03d}") for n in range(200)])  # 4 batches
    small = bulk_send(second_browser, [make_client(second, name=f"Small {n:03d}") for n in range(100)])  # 2

    rq_workers.start(1)
    wait_for_bulk(first_browser, big)
    wait_for_bulk(second_browser, small)

    order = batches_in_order([first.firm_id, second.firm_id])
    assert len(order) == 6
    # The second firm's first batch runs right after the first firm's first batch, then they alternate.
    assert order == [first.firm_id, second.firm_id, first.firm_id, second.firm_id, first.firm_id, first.firm_id]
    organisations = {o["tenantId"]: o for o in sandbox.state()["organisations"]}
    assert len({c["ContactNumber"] for c in organisations[UK_TENANT_ID]["contacts"]}) == 200
    assert len({c["ContactNumber"] for c in organisations[US_TENANT_ID]["contacts"]}) == 100
    assert len(organisations[US_TENANT_ID]["contacts"]) == 100 and sandbox.stats()["rate_limited"] == 0
