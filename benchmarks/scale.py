"""Benchmark: many firms at once. 50 firms, each connected to its own
organisation in the Xero stand-in (Xero's limits: 5 in flight, 60 a minute per
organisation, 10,000 a minute per app; the latency model on), each bulk-sends
200 invoices with their clients while single Sends are clicked at random across
the firms. Run with 2, 4 and 8 rq workers.

Figures, all ratios within one run: single Send, click to the panel showing
Update, p50 and p95 under load against the same on the idle installation just
before; calls against the physical limit, the least of what 60 a minute per
organisation allows over the span each had work (at least a minute's 60: the
window slides), the app-wide limit over the run, and what the workers can
carry, each worker always inside a call (workers x 60 / the mean time the
stand-in took per call); 429s; records lost or duplicated, checked against
the stand-in's state.

Time knob: ``--latency-scale`` (default 0.25) shrinks the stand-in's latency
model (400 ms a call + 30 ms a record, Xero-like estimates) so the run takes a
few minutes on 2 cores; the per-minute limits stay Xero's, so the scaled run
is, if anything, harder on the per-organisation limit than real time.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/scale.py``)."""
from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import time
from collections import Counter

from common import Services, line, verdict

PER_MINUTE, APP_PER_MINUTE = 60, 10000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=50)
    parser.add_argument("--invoices", type=int, default=200, help="per firm, bulk-sent")
    parser.add_argument("--clients", type=int, default=40, help="per firm, the bulk's invoices are theirs")
    parser.add_argument("--workers", default="2,4,8")
    parser.add_argument("--latency-scale", type=float, default=0.25)
    parser.add_argument("--idle-clicks", type=int, default=12)
    args = parser.parse_args()
    status = 0
    summary = []
    for workers in [int(n) for n in args.workers.split(",")]:
        services = Services(f"bench-scale-{workers}")
        try:
            redis_url = services.redis()
            sandbox = services.sandbox(STANDINS_LATENCY="on", STANDINS_LATENCY_SCALE=str(args.latency_scale))
            services.planman_env(redis_url=redis_url, sandbox_url=sandbox.url)
            ok, figures = run(services, sandbox, args, workers)
            summary.append((workers, figures))
            status |= 0 if ok else 1
        finally:
            services.stop()
    print("\nSummary (p95 load/idle, calls/physical limit)")
    for workers, figures in summary:
        print(f"  {workers} workers: {figures}")
    return status


def run(services, sandbox, args, workers: int) -> tuple[bool, str]:
    import sqlalchemy as sa

    from planman import create_app
    from planman.extensions import db
    from planman.main.seed import seed_bulk
    from planman.models import BulkPush, Client, ExternalLink, Invoice, PushJob, User
    from tests.helpers import IsolatedClient, htmx_post, login, make_client, make_invoice, post_form
    from tests.integration_helpers import choose_settings, connect_xero

    import importlib

    import config

    importlib.reload(config)  # each run has its own Redis, database and stand-in: read them afresh
    app = create_app(config.Config)
    logging.getLogger("planman").setLevel(logging.WARNING)
    app.test_client_class = IsolatedClient
    rng = random.Random(19)
    with app.app_context():
        db.create_all()
        services.workers(workers)
        print(f"\n== {workers} workers: seeding and connecting {args.firms} firms…", flush=True)
        firms = []  # (firm_id, tenant_id, browser, bulk invoice ids, single invoice ids)
        for n in range(args.firms):
            email = f"firm{n}@scale.example"
            firm = seed_bulk(args.clients, args.invoices, email, "bench-password")
            db.session.execute(sa.update(Invoice).where(Invoice.firm_id == firm.id).values(status="draft"))
            db.session.commit()
            bulk_ids = list(db.session.scalars(sa.select(Invoice.id).where(Invoice.firm_id == firm.id)))
            admin = db.session.scalar(sa.select(User).where(User.email == email))
            singles = [make_invoice(admin, make_client(admin, name=f"Single {n}-{k}"), number=f"S-{n}-{k}").id
                       for k in range(6)]
            tenant = sandbox.control("organisations", name=f"Scale Firm {n}")["tenantId"]
            browser = app.test_client()
            login(browser, email, "bench-password")
            connect_xero(browser, sandbox, tenants=(tenant,))
            choose_settings(firm.id, timeout=60)
            firms.append((firm.id, tenant, browser, bulk_ids, singles))
        unused = {firm_id: list(singles) for firm_id, _, _, _, singles in firms}

        def click_send() -> float:
            """Send one not-yet-sent invoice of a random firm; seconds until its panel shows Update."""
            firm_id, _, browser, _, _ = rng.choice([f for f in firms if unused[f[0]]])
            invoice_id = unused[firm_id].pop()
            url = f"/integrations/xero/invoice/{invoice_id}/panel"
            started = time.monotonic()
            htmx_post(browser, url, {}, token_from=url)
            while ">Update<" not in browser.get(url).get_data(as_text=True):
                time.sleep(0.05)
                if time.monotonic() - started > 120:
                    raise TimeoutError(f"invoice {invoice_id} never showed Update")
            return time.monotonic() - started

        time.sleep(2)  # the connect-time loading has settled
        print(f"  idle: {args.idle_clicks} single Sends…", flush=True)
        idle = [click_send() for _ in range(args.idle_clicks)]

        stats = sandbox.stats()
        calls_before, busy_before, limited_before = sum(stats["calls_per_tenant"].values()), stats["busy_seconds"], \
            stats["rate_limited"]
        print(f"  load: {args.firms} bulk sends of {args.invoices} invoices, single Sends meanwhile…", flush=True)
        started = time.monotonic()
        for firm_id, _, browser, bulk_ids, _ in firms:
            answer = post_form(browser, "/integrations/bulk", {"record_type": "invoice", "mode": "selected",
                                                              "ids": bulk_ids}, form_url="/integrations/bulk")
            assert answer.status_code == 302, answer.get_data(as_text=True)
        loaded = []

        def with_work() -> int:
            db.session.expire_all()
            return db.session.scalar(sa.select(sa.func.count(sa.distinct(BulkPush.firm_id)))
                                     .where(BulkPush.finished_at.is_(None)))

        while True:
            busy = with_work()
            now = time.monotonic()
            if not busy:
                break
            if any(unused.values()) and now - started < 900:
                loaded.append(click_send())
                time.sleep(rng.uniform(0.5, 2.5))  # a bookkeeper somewhere clicks Send every second or two
            else:
                time.sleep(0.5)
            if now - started > 1200:
                raise TimeoutError("the bulk sends did not finish in 20 minutes")
        seconds = time.monotonic() - started
        stats = sandbox.stats()
        calls = sum(stats["calls_per_tenant"].values()) - calls_before
        busy_seconds = stats["busy_seconds"] - busy_before
        limited = stats["rate_limited"] - limited_before

        # -- what arrived, organisation by organisation -------------------------------
        state = {o["tenantId"]: o for o in sandbox.state()["organisations"]}
        lost = duplicated = 0
        for firm_id, tenant, _, _, _ in firms:
            org = state[tenant]
            numbers = Counter(i["InvoiceNumber"] for i in org["invoices"] if i.get("Status") != "DELETED")
            references = Counter(c.get("ContactNumber") for c in org["contacts"])
            links = {(l.record_type, l.record_id): l.external_id for l in db.session.scalars(
                sa.select(ExternalLink).where(ExternalLink.firm_id == firm_id))}
            invoice_ids, contact_ids = {i["InvoiceID"] for i in org["invoices"]}, {c["ContactID"] for c in org["contacts"]}
            sent = db.session.scalars(sa.select(Invoice).where(Invoice.firm_id == firm_id, Invoice.id.in_(
                sa.select(PushJob.record_id).where(PushJob.firm_id == firm_id, PushJob.record_type == "invoice")))).all()
            client_ids = {i.client_id for i in sent}
            clients = db.session.scalars(sa.select(Client).where(Client.id.in_(client_ids))).all()
            lost += sum(1 for i in sent if numbers[i.number] == 0 or links.get(("invoice", i.id)) not in invoice_ids)
            lost += sum(1 for c in clients if references[c.reference] == 0 or links.get(("client", c.id)) not in contact_ids)
            duplicated += sum(n - 1 for n in numbers.values() if n > 1) + sum(n - 1 for n in references.values() if n > 1)
        spans = {firm_id: (finished - created).total_seconds() for firm_id, created, finished in db.session.execute(
            sa.select(BulkPush.firm_id, BulkPush.created_at, BulkPush.finished_at))}
        failed = db.session.scalar(sa.select(sa.func.count(PushJob.id)).where(PushJob.state != "succeeded"))

    # -- figures ---------------------------------------------------------------------
    mean_call = busy_seconds / calls if calls else 0
    carry = workers * 60 / mean_call if mean_call else 0  # calls a minute, each worker always in a call
    # Each limit as the calls it allows over the run: a sliding minute lets an
    # organisation make 60 calls in any 60 s, so a span shorter than a minute still allows 60.
    by_organisations = sum(PER_MINUTE * max(1.0, span / 60) for span in spans.values())
    physical_calls = min(by_organisations, APP_PER_MINUTE * max(1.0, seconds / 60), carry * seconds / 60)
    use = calls / physical_calls if physical_calls else 0
    p = lambda values, q: statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]
    idle50, idle95, load50, load95 = p(idle, 50), p(idle, 95), p(loaded, 50), p(loaded, 95)
    ratio95 = load95 / idle95 if idle95 else 0

    print(f"\n{args.firms} firms x {args.invoices} invoices (+ their clients), {workers} rq workers, "
          f"stand-in latency x{args.latency_scale}")
    line("single Send idle p50 / p95", f"{idle50:.2f} s / {idle95:.2f} s ({len(idle)} clicks)")
    line("single Send under load p50 / p95", f"{load50:.2f} s / {load95:.2f} s ({len(loaded)} clicks)")
    line("p95 load / idle", f"{ratio95:.2f}x")
    line("bulk wall time", f"{seconds:.1f} s")
    line("API calls", f"{calls} ({calls / seconds * 60:.0f} a minute)")
    line("mean stand-in time per call", f"{mean_call * 1000:.0f} ms")
    line("what the workers can carry", f"{carry:.0f} calls a minute")
    line("physical limit over the run", f"{physical_calls:.0f} calls (min of 60/min x each org's span "
                                         f"{by_organisations:.0f}, app {APP_PER_MINUTE}/min, carry)")
    line("calls / physical limit", f"{use:.2f}")
    line("429s received", f"{limited}")
    line("pushes not succeeded", f"{failed}")
    line("records lost / duplicated", f"{lost} / {duplicated}")
    targets = [
        (f"single Send p95 under load <= 2x idle ({ratio95:.2f}x)", ratio95 <= 2),
        (f"calls >= 0.8 of the physical limit ({use:.2f})", use >= 0.8),
        (f"zero unhonoured 429s ({limited} received, {failed} pushes not succeeded)", failed == 0),
        (f"no record lost ({lost}) or duplicated ({duplicated})", lost == 0 and duplicated == 0),
    ]
    print("Targets")
    for label, ok in targets:
        print(f"  {verdict(ok)}  {label}")
    return all(ok for _, ok in targets), f"p95 {ratio95:.2f}x, use {use:.2f}, 429s {limited}, lost {lost}, dup {duplicated}"


if __name__ == "__main__":
    sys.exit(main())
