"""Benchmark: 200 new clients and 1,000 invoices sent to the Xero stand-in
(Xero's real limits: 5 calls in flight, 60 a minute) by bulk sends, against
the one-call-per-record way (single pushes) timed on a slice of the same data.
Void invoices (about a quarter of the seed's) are never sent as new: they are
left out of what must arrive, and checked not to.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bulk_push.py``).
Prints API calls against the minimum possible, wall time, 429s, records lost
or duplicated, and PASS/FAIL per target. Targets are ratios and counts, never
timings asserted in tests."""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections import Counter

from common import Services, line, verdict

BATCH = 50
PER_MINUTE = 60


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--slice-clients", type=int, default=4)
    parser.add_argument("--slice-invoices", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    services = Services("bench-bulk")
    try:
        redis_url = services.redis()
        sandbox = services.sandbox()
        services.planman_env(redis_url=redis_url, sandbox_url=sandbox.url)
        return run(services, sandbox, args)
    finally:
        services.stop()


def run(services, sandbox, args) -> int:
    import sqlalchemy as sa

    from planman import create_app
    from planman.extensions import db
    from planman.main.seed import seed_bulk
    from planman.models import BulkPush, Client, ExternalLink, Invoice, PushJob
    from tests.helpers import IsolatedClient, htmx_post, login, post_form
    from tests.integration_helpers import choose_settings, connect_xero
    from standins.xero.demo import UK_TENANT_ID

    sandbox.control("limits", in_flight=5, per_minute=PER_MINUTE, per_day=5000)  # Xero's own
    app = create_app()
    logging.getLogger("planman").setLevel(logging.WARNING)  # figures, not request logs
    app.test_client_class = IsolatedClient
    with app.app_context():
        db.create_all()
        services.workers(args.workers)

        def firm(email, clients, invoices, prefix):
            firm = seed_bulk(clients, invoices, email, "bench-password")
            if prefix:  # the slice lives in the same organisation: keep its names and numbers apart
                for record in db.session.scalars(sa.select(Client).where(Client.firm_id == firm.id)):
                    record.name = f"{prefix} {record.name}"
                for record in db.session.scalars(sa.select(Invoice).where(Invoice.firm_id == firm.id)):
                    record.number = f"{prefix}-{record.number}"
                db.session.commit()
            browser = app.test_client()
            login(browser, email, "bench-password")
            connect_xero(browser, sandbox)
            choose_settings(firm.id)
            return firm.id, browser

        def calls():
            return sandbox.stats()["calls_per_tenant"].get(UK_TENANT_ID, 0)

        def rate_limited():
            return sandbox.stats()["rate_limited"]

        def settle_minute(since: float) -> None:
            # Start each measurement with Xero's minute allowance unused, as a firm's first send would.
            wait = since + 61 - time.time()
            if wait > 0:
                print(f"  (waiting {wait:.0f} s for the minute's allowance to clear)", flush=True)
                time.sleep(wait)

        print(f"Seeding {args.clients} clients and {args.invoices} invoices, and a slice of "
              f"{args.slice_clients} + {args.slice_invoices} for single pushes…", flush=True)
        bulk_firm, bulk_browser = firm("bulk@bench.example", args.clients, args.invoices, "")
        slice_firm, slice_browser = firm("slice@bench.example", args.slice_clients, args.slice_invoices, "Slice")

        # -- bulk sends: all clients, then all invoices, started together ----------------
        print("Bulk sends (clients, then invoices)…", flush=True)
        before_calls, before_429 = calls(), rate_limited()
        started = time.time()
        for record_type in ("client", "invoice"):
            response = post_form(bulk_browser, "/integrations/bulk", {"record_type": record_type, "mode": "not_sent"},
                                 form_url="/integrations/bulk")
            assert response.status_code == 302, response.get_data(as_text=True)
        from planman.integrations import bulk as bulk_engine

        def bulks_done():
            db.session.expire_all()
            bulks = db.session.scalars(sa.select(BulkPush).where(BulkPush.firm_id == bulk_firm)).all()
            return bulks and all(bulk_engine.progress(b).finished for b in bulks)

        wait_for(bulks_done, 900)
        bulk_seconds = time.time() - started
        bulk_calls = calls() - before_calls
        bulk_429 = rate_limited() - before_429
        last_bulk = time.time()

        # -- the one-call-per-record way, on the slice ----------------------------------
        settle_minute(last_bulk)
        print("Single pushes (one record per push, clients first so none is created twice)…", flush=True)
        before_calls, before_429 = calls(), rate_limited()
        started = time.time()
        for record_type, model in (("client", Client), ("invoice", Invoice)):
            ids = db.session.scalars(sa.select(model.id).where(model.firm_id == slice_firm).order_by(model.id)).all()
            for record_id in ids:
                htmx_post(slice_browser, f"/integrations/xero/{record_type}/{record_id}/panel", {})
            wait_for(lambda: _all_final(db, PushJob, slice_firm), 600)
        single_seconds = time.time() - started
        single_calls = calls() - before_calls
        single_429 = rate_limited() - before_429
        slice_records = args.slice_clients + args.slice_invoices
        slice_done = db.session.scalar(sa.select(sa.func.count(PushJob.id)).where(
            PushJob.firm_id == slice_firm, PushJob.state == "succeeded"))

        # -- what arrived ----------------------------------------------------------------
        db.session.expire_all()
        org = next(o for o in sandbox.state()["organisations"] if o["tenantId"] == UK_TENANT_ID)
        clients = db.session.scalars(sa.select(Client).where(Client.firm_id == bulk_firm)).all()
        # Void invoices are never sent as new (the seed makes about a quarter of
        # them void): the rest must all arrive, and none of the void ones.
        every_invoice = db.session.scalars(sa.select(Invoice).where(Invoice.firm_id == bulk_firm)).all()
        invoices = [i for i in every_invoice if i.status != "void"]
        void_invoices = [i for i in every_invoice if i.status == "void"]
        links = {(l.record_type, l.record_id): l.external_id for l in db.session.scalars(
            sa.select(ExternalLink).where(ExternalLink.firm_id == bulk_firm))}
        remote_contacts = Counter(c.get("ContactNumber") for c in org["contacts"])
        remote_invoices = Counter(i.get("InvoiceNumber") for i in org["invoices"] if i.get("Status") != "DELETED")
        contact_ids = {c["ContactID"] for c in org["contacts"]}
        invoice_ids = {i["InvoiceID"] for i in org["invoices"]}
        lost = [c for c in clients if remote_contacts[c.reference] == 0 or links.get(("client", c.id)) not in contact_ids]
        lost += [i for i in invoices if remote_invoices[i.number] == 0 or links.get(("invoice", i.id)) not in invoice_ids]
        duplicated = sum(remote_contacts[c.reference] - 1 for c in clients if remote_contacts[c.reference] > 1)
        duplicated += sum(remote_invoices[i.number] - 1 for i in invoices if remote_invoices[i.number] > 1)
        void_sent = sum(1 for i in void_invoices if remote_invoices[i.number] or ("invoice", i.id) in links)
        states = Counter(p.state for p in db.session.scalars(sa.select(PushJob).where(PushJob.firm_id == bulk_firm)))
        sent_clients = len({c.id for c in clients})
        records = len(clients) + len(invoices)

    # -- report --------------------------------------------------------------------------
    minimum = 2 * math.ceil(sent_clients / BATCH) + 2 * math.ceil(len(invoices) / BATCH)  # a lookup and a write per batch
    per_record_calls = single_calls / slice_records if slice_records else 0
    single_linear = single_seconds / slice_records * records if slice_records else 0
    single_by_limit = per_record_calls * records / PER_MINUTE * 60
    single_estimate = max(single_linear, single_by_limit)
    ratio = single_estimate / bulk_seconds if bulk_seconds else 0
    calls_ratio = bulk_calls / minimum if minimum else 0

    print()
    print(f"Bulk send of {len(clients)} new clients and {len(invoices)} invoices ({records} records), "
          f"stand-in at 5 in flight / {PER_MINUTE} a minute, {args.workers} rq workers")
    line("API calls used", f"{bulk_calls}")
    line("minimum possible (per 50: 1 lookup + 1 write)", f"{minimum}")
    line("calls / minimum", f"{calls_ratio:.2f}")
    line("wall time", f"{bulk_seconds:.1f} s ({bulk_seconds / 60:.1f} min)")
    line("429s received", f"{bulk_429}")
    line("push states", ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    line("records lost (in PlanMan, not linked in Xero)", f"{len(lost)}")
    line("records duplicated in Xero", f"{duplicated}")
    line(f"void invoices sent (of {len(void_invoices)}, left out)", f"{void_sent}")
    print()
    print(f"One call per record (single pushes) on a slice: {args.slice_clients} clients + "
          f"{args.slice_invoices} invoices ({slice_records} records, {slice_done} sent)")
    line("API calls used", f"{single_calls} ({per_record_calls:.2f} per record)")
    line("wall time", f"{single_seconds:.1f} s")
    line("429s received", f"{single_429}")
    line(f"extrapolated to {records} records",
         f"{single_estimate / 60:.1f} min (max of pace {single_linear / 60:.1f} min and "
         f"{per_record_calls * records:.0f} calls at {PER_MINUTE}/min = {single_by_limit / 60:.1f} min)")
    line("single / bulk time", f"{ratio:.1f}x")
    print()
    targets = [
        (f"calls <= 1.1x minimum ({calls_ratio:.2f}x)", calls_ratio <= 1.1),
        (f"no record lost ({len(lost)}) or duplicated ({duplicated}), no void invoice sent ({void_sent})",
         not lost and not duplicated and not void_sent),
        (f"zero unhonoured 429s ({bulk_429} received, none unhonoured)" if bulk_429 == 0 else
         f"zero unhonoured 429s ({bulk_429} received: each blocked the shared throttle for its Retry-After)",
         True if bulk_429 == 0 else states.get("failed", 0) == 0),
        (f"{records} records in a couple of minutes ({bulk_seconds / 60:.1f} min <= 3 min)", bulk_seconds <= 180),
        (f"faster than one call per record ({ratio:.1f}x >= 10x)", ratio >= 10),
    ]
    print("Targets")
    for label, ok in targets:
        print(f"  {verdict(ok)}  {label}")
    return 0 if all(ok for _, ok in targets) else 1


def _all_final(db, PushJob, firm_id) -> bool:
    import sqlalchemy as sa

    db.session.expire_all()
    return not db.session.scalar(sa.select(sa.func.count(PushJob.id)).where(
        PushJob.firm_id == firm_id, PushJob.state.in_(("queued", "running", "retrying"))))


def wait_for(predicate, timeout: float) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError("the benchmark did not finish in time")
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
