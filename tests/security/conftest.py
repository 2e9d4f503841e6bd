"""Two firms with real data on real Redis, for the URL-map walkers.

Firm B ("the other firm") owns one of everything a URL can name: a client, an
invoice, a tax rate, a colleague, a push that failed, a push still queued in
RQ. Firm A's admin is the one who walks."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from planman.extensions import db
from planman.integrations import push
from planman.integrations.tokens import store_token
from planman.models import BulkPush, Connection, User, utcnow
from tests.helpers import PASSWORD, make_client, make_invoice, new_client, post_form, signup, tax_rate

TENANT_B = "9b000000-0000-4000-8000-0000000000b2"
TENANT_A = "9a000000-0000-4000-8000-0000000000a1"


@pytest.fixture
def app(integration_app):
    """Real Redis (RQ and its dashboard need it) and Xero pointed at the stand-in."""
    return integration_app


@dataclass
class Firm:
    admin: User
    browser: object
    client_id: int
    invoice_id: int
    rate_id: int
    colleague_id: int
    failed_push_id: int
    queued_push_id: int
    rq_job_id: str
    bulk_id: int
    payment_id: int = 0
    collection_id: int = 0


def connect_directly(user, tenant_id):
    connection = Connection(
        firm_id=user.firm_id, provider="xero", state="connected", tenant_id=tenant_id, tenant_name="Org",
        remote_connection_id="conn-" + tenant_id[:4], connected_at=utcnow(),
        settings={"tenant_id": tenant_id, "sales_account_code": "200", "tax_types": {}, "no_tax_type": "NONE",
                  "invoice_status": "DRAFT", "details_state": "loaded", "details_loaded_at": "2026-01-01",
                  "xero_accounts": [{"code": "200", "name": "Sales"}],
                  "xero_tax_rates": [{"type": "NONE", "name": "No VAT"}, {"type": "OUTPUT2", "name": "20% (VAT)"}]},
    )
    store_token(connection, {"access_token": f"access-{tenant_id}", "refresh_token": f"refresh-{tenant_id}",
                             "expires_in": 1800})
    db.session.add(connection)
    db.session.commit()
    return connection


def make_firm(app, tenant_id) -> Firm:
    browser = new_client(app)
    admin = signup(browser)
    connection = connect_directly(admin, tenant_id)
    customer = make_client(admin)
    invoice = make_invoice(admin, customer)
    colleague = User(firm_id=admin.firm_id, name="Col League", email=f"col-{admin.id}@example.com")
    colleague.set_password(PASSWORD)
    db.session.add(colleague)
    db.session.commit()
    failed, _ = push.start_push(connection, "invoice", invoice.id, user_id=admin.id, enqueue=False)
    failed.state, failed.error_message, failed.finished_at = "failed", "Xero is unavailable.", utcnow()
    db.session.commit()
    queued, _ = push.start_push(connection, "client", customer.id, user_id=admin.id)  # a real RQ job, no worker
    bulk = BulkPush(firm_id=admin.firm_id, provider="xero", tenant_id=tenant_id, record_type="invoice",
                    requested_by_id=admin.id, finished_at=utcnow())
    db.session.add(bulk)
    db.session.commit()
    failed.bulk_push_id = bulk.id  # a finished bulk send with one failure, so Retry failed would act
    db.session.commit()
    from datetime import date
    from decimal import Decimal

    from planman.payments.services import record_manual_payment

    payment = record_manual_payment(invoice, amount=Decimal("1.00"), paid_on=date(2026, 1, 6), method="other",
                                    reference="", note="", user_id=admin.id)
    from planman.integrations.gocardless.models import GoCardlessCollection

    # A failed Direct Debit collection, so its Retry would act.
    collection = GoCardlessCollection(firm_id=admin.firm_id, invoice_id=invoice.id, mandate_id="MD1",
                                      idempotency_key=f"key-{tenant_id}", payment_id=f"PM-{tenant_id[:8]}",
                                      amount=Decimal("1.00"), currency="GBP", status="failed")
    db.session.add(collection)
    db.session.commit()
    return Firm(admin, browser, customer.id, invoice.id, tax_rate(admin, "VAT 20%").id, colleague.id,
                failed.id, queued.id, queued.rq_job_id, bulk.id, payment.id, collection.id)


@pytest.fixture
def firms(app):
    """(firm A, firm B): each with one of everything, both connected to Xero."""
    return make_firm(app, TENANT_A), make_firm(app, TENANT_B)


def dump_database() -> dict:
    """Every row of every table, as plain values: equal dumps mean nothing changed."""
    db.session.expire_all()
    out = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(row) for row in rows]
    return out


def dump_redis(redis) -> dict:
    """RQ's queues and registries (what a dashboard action would change)."""
    out = {}
    for key in sorted(redis.keys("rq:*")):
        kind = redis.type(key).decode()
        if kind == "list":
            out[key] = redis.lrange(key, 0, -1)
        elif kind == "zset":
            out[key] = [member for member, _ in redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "set":
            out[key] = sorted(redis.smembers(key))
        elif kind == "hash" and key.startswith(b"rq:job:"):
            job = redis.hgetall(key)
            out[key] = {k: v for k, v in job.items() if k in (b"status", b"origin", b"func_name")}
    return {k: v for k, v in out.items() if not k.startswith((b"rq:worker", b"rq:workers", b"rq:scheduler"))}


def csrf_headers(browser) -> dict:
    from tests.conftest import csrf_token_from

    token = csrf_token_from(browser.get("/clients/").get_data(as_text=True))
    return {"X-CSRFToken": token}


__all__ = ["Firm", "dump_database", "dump_redis", "csrf_headers", "post_form", "TENANT_A", "TENANT_B"]
