"""Benchmark: many firms at once. 50 firms, each connected to its own
organisation in the Xero stand-in (Xero's limits: 5 in flight, 60 a minute per
organisation, 10,000 a minute per app; the latency model on), each bulk-sends
200 invoices with their clients while single Sends are clicked at random across
the firms. Run with 2, 4 and 8 rq workers on both queues, plus one on the
interactive queue alone (as README, Production runs them).

Figures, all ratios within one run: single Send, click to the panel showing
Update, p50 and p95 under load against the same on the idle installation just
before; the bulk sends' calls (all calls less the clicks', each click costing
what it did idle) against the physical limit, the least of: what 60 a minute
per organisation allows over the span each had work (at least a minute's 60:
the window slides), the app-wide limit over the run, what the workers can
carry (each always inside a call: workers x 60 / the mean time the stand-in
took per call), and what the machine's cores can carry (the calls made, scaled
to every core busy, from the CPU time all the run's processes used); 429s;
records lost or duplicated, checked against the stand-in's state.

The bulk sends are all waiting when the run starts (the workers are suspended
while this process posts the forms), as at month end.

Time knob: ``--latency-scale`` (default 0.5) shrinks the stand-in's latency
model (400 ms a call + 30 ms a record, Xero-like estimates) so the run takes a
few minutes on 2 cores; the per-minute limits stay Xero's, so the scaled run
is, if anything, harder on the per-organisation limit than real time, and
PlanMan's own time per batch weighs twice what it would against real latency.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/scale.py``)."""
from __future__ import annotations

import argparse
import os
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import Services, line, verdict

PER_MINUTE, APP_PER_MINUTE = 60, 10000
SINGLE_PREFIX = "S-"  # the numbers of the invoices kept for single Sends
INTERACTIVE_WORKERS = 1  # besides the ones measured: on the interactive queue alone (README, Production)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=50)
    parser.add_argument("--invoices", type=int, default=200, help="per firm, bulk-sent")
    parser.add_argument("--clients", type=int, default=40, help="per firm, the bulk's invoices are theirs")
    parser.add_argument("--workers", default="2,4,8")
    parser.add_argument("--latency-scale", type=float, default=0.5)
    parser.add_argument("--idle-clicks", type=int, default=12)
    args = parser.parse_args()
    status = 0
    summary = []
    seeded = Path(tempfile.mkdtemp(prefix="planman-bench-scale-seed-")) / "planman.db"
    for workers in [int(n) for n in args.workers.split(",")]:
        services = Services(f"bench-scale-{workers}")
        try:
            redis_url = services.redis()
            sandbox = services.sandbox(STANDINS_LATENCY="on", STANDINS_LATENCY_SCALE=str(args.latency_scale))
            services.planman_env(redis_url=redis_url, sandbox_url=sandbox.url)
            ok, figures = run(services, sandbox, args, workers, seeded)
            summary.append((workers, figures))
            status |= 0 if ok else 1
        finally:
            services.stop()
    shutil.rmtree(seeded.parent, ignore_errors=True)
    print("\nSummary (p95 load/idle, calls/physical limit)")
    for workers, figures in summary:
        print(f"  {workers} workers: {figures}")
    return status


def seed_firms(args) -> None:
    """The firms: each a bulk of ``args.invoices`` draft invoices of ``args.clients``
    clients, and six invoices of new clients kept for single Sends."""
    import sqlalchemy as sa

    from planman.extensions import db
    from planman.main.seed import seed_bulk
    from planman.models import Invoice, User
    from tests.helpers import make_client, make_invoice

    for n in range(args.firms):
        email = f"firm{n}@scale.example"
        firm = seed_bulk(args.clients, args.invoices, email, "bench-password")
        db.session.execute(sa.update(Invoice).where(Invoice.firm_id == firm.id).values(status="draft"))
        db.session.commit()
        admin = db.session.scalar(sa.select(User).where(User.email == email))
        for k in range(6):
            make_invoice(admin, make_client(admin, name=f"Single {n}-{k}"), number=f"{SINGLE_PREFIX}{n}-{k}")


def _copy_database(source: str, target) -> None:
    """A consistent copy of a SQLite database (SQLite's backup API)."""
    import sqlite3

    with sqlite3.connect(str(source)) as src, sqlite3.connect(str(target)) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def run(services, sandbox, args, workers: int, seeded: Path) -> tuple[bool, str]:
    import sqlalchemy as sa
    from rq import Worker
    from rq.suspension import resume, suspend

    from planman import create_app
    from planman.extensions import db
    from planman.models import BulkPush, Client, ExternalLink, Invoice, PushJob, User
    from tests.helpers import IsolatedClient, htmx_post, login, post_form
    from tests.integration_helpers import choose_settings, connect_xero

    import config  # reloaded by planman_env: this run's Redis, database and stand-in

    app = create_app(config.Config)
    logging.getLogger("planman").setLevel(logging.WARNING)
    app.test_client_class = IsolatedClient
    rng = random.Random(19)
    with app.app_context():
        if seeded.exists():
            _copy_database(seeded, db.engine.url.database)
        else:
            print(f"\nSeeding {args.firms} firms (once, copied into each run)…", flush=True)
            db.create_all()
            seed_firms(args)
            _copy_database(db.engine.url.database, seeded)
        services.workers(workers, interactive=INTERACTIVE_WORKERS)
        print(f"\n== {workers} workers: connecting {args.firms} firms…", flush=True)
        sandbox.control("latency", enabled=False)  # connecting is set-up, not measured
        firms = []  # (firm_id, tenant_id, browser, bulk invoice ids, single invoice ids)
        for n in range(args.firms):
            email = f"firm{n}@scale.example"
            firm_id = db.session.scalar(sa.select(User.firm_id).where(User.email == email))
            invoices = db.session.execute(sa.select(Invoice.id, Invoice.number).where(Invoice.firm_id == firm_id)).all()
            bulk_ids = [i for i, number in invoices if not number.startswith(SINGLE_PREFIX)]
            singles = [i for i, number in invoices if number.startswith(SINGLE_PREFIX)]
            tenant = sandbox.control("organisations", name=f"Scale Firm {n}")["tenantId"]
            browser = app.test_client()
            login(browser, email, "bench-password")
            connect_xero(browser, sandbox, tenants=(tenant,))
            choose_settings(firm_id, timeout=60)
            firms.append((firm_id, tenant, browser, bulk_ids, singles))
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
        sandbox.control("latency", enabled=True)
        print(f"  idle: {args.idle_clicks} single Sends…", flush=True)
        stats = sandbox.stats()
        idle_calls, idle_busy = sum(stats["calls_per_tenant"].values()), stats["busy_seconds"]
        idle = [click_send() for _ in range(args.idle_clicks)]

        stats = sandbox.stats()
        # What one single Send costs the provider, to tell the clicks' calls from the bulk sends' below.
        calls_per_click = (sum(stats["calls_per_tenant"].values()) - idle_calls) / len(idle)
        busy_per_click = (stats["busy_seconds"] - idle_busy) / len(idle)
        print(f"  load: {args.firms} bulk sends of {args.invoices} invoices, single Sends meanwhile…", flush=True)
        # Month end: every firm's bulk send is waiting when the run starts. The
        # workers are suspended while this process posts the 50 forms one by one
        # (no one's real pace); a worker already waiting for a job takes one step
        # meanwhile, whose calls are left out of the figures.
        suspend(app.redis)
        for firm_id, _, browser, bulk_ids, _ in firms:
            answer = post_form(browser, "/integrations/bulk", {"record_type": "invoice", "mode": "selected",
                                                              "ids": bulk_ids}, form_url="/integrations/bulk")
            assert answer.status_code == 302, answer.get_data(as_text=True)
        while any(w.get_state() == "busy" for w in Worker.all(connection=app.redis)):
            time.sleep(0.2)
        stats = sandbox.stats()
        calls_before, busy_before, limited_before = sum(stats["calls_per_tenant"].values()), stats["busy_seconds"], \
            stats["rate_limited"]
        resume(app.redis)
        started, cpu_before = time.monotonic(), services.cpu_seconds()
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
        cpu_used = services.cpu_seconds() - cpu_before
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
    # The bulk sends' calls: all calls less the clicks' (each click costs what it did idle).
    bulk_calls = calls - round(calls_per_click * len(loaded))
    bulk_busy = busy_seconds - busy_per_click * len(loaded)
    mean_call = bulk_busy / bulk_calls if bulk_calls else 0
    # Calls a minute the workers that take bulk work can carry, each always inside a
    # call (the worker on the interactive queue alone is kept for clicks).
    carry = workers * 60 / mean_call if mean_call else 0
    # Each limit as the calls it allows over the run: a sliding minute lets an
    # organisation make 60 calls in any 60 s, so a span shorter than a minute still allows 60.
    by_organisations = sum(PER_MINUTE * max(1.0, span / 60) for span in spans.values())
    # The machine: the bulk calls it could have carried with every core busy at
    # the CPU each call cost (PlanMan, the stand-in and Redis alike, all on these cores).
    cores = os.cpu_count() or 1
    by_cores = bulk_calls * cores * seconds / cpu_used if cpu_used else float("inf")
    by_named = min(by_organisations, APP_PER_MINUTE * max(1.0, seconds / 60), carry * seconds / 60)
    physical_calls = min(by_named, by_cores)
    use = bulk_calls / physical_calls if physical_calls else 0
    p = lambda values, q: statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]
    idle50, idle95, load50, load95 = p(idle, 50), p(idle, 95), p(loaded, 50), p(loaded, 95)
    ratio95 = load95 / idle95 if idle95 else 0

    print(f"\n{args.firms} firms x {args.invoices} invoices (+ their clients), {workers} rq workers on both "
          f"queues + {INTERACTIVE_WORKERS} on the interactive queue alone, stand-in latency x{args.latency_scale}")
    line("single Send idle p50 / p95", f"{idle50:.2f} s / {idle95:.2f} s ({len(idle)} clicks)")
    line("single Send under load p50 / p95", f"{load50:.2f} s / {load95:.2f} s ({len(loaded)} clicks)")
    line("p95 load / idle", f"{ratio95:.2f}x")
    line("bulk wall time", f"{seconds:.1f} s")
    line("API calls", f"{calls} ({calls / seconds * 60:.0f} a minute)")
    line("  of which the bulk sends'", f"{bulk_calls} (clicks: {calls_per_click:.1f} calls each, as idle)")
    line("mean stand-in time per bulk call", f"{mean_call * 1000:.0f} ms")
    line("what the workers can carry", f"{carry:.0f} calls a minute")
    line("what the cores can carry", f"{by_cores:.0f} bulk calls ({cpu_used / seconds / cores:.0%} of "
                                      f"{cores} cores busy)")
    line("physical limit over the run", f"{physical_calls:.0f} bulk calls (min of 60/min x each org's span "
                                         f"{by_organisations:.0f}, app {APP_PER_MINUTE}/min, workers, cores)")
    line("bulk calls / physical limit", f"{use:.2f} (without the cores' bound: {bulk_calls / by_named:.2f})")
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
