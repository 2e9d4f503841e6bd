"""python -m standins [--host 127.0.0.1] [--port 5001] [--db instance/standins.db] [--only xero,...]"""
from __future__ import annotations

import argparse

from werkzeug.serving import run_simple

from .core.app import DEFAULT_DATABASE, PROVIDERS, create_app, provider_database


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standins",
                                     description="Local stand-ins for PlanMan's providers, one per path prefix.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--db", default=DEFAULT_DATABASE,
                        help="base SQLite file; each provider keeps FILE-stem.<provider>.db beside it, "
                             "shared by every process started on the same --db")
    parser.add_argument("--only", default=",".join(PROVIDERS), help="comma-separated providers to serve")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(PROVIDERS)
    if unknown:
        parser.error(f"unknown provider(s) {', '.join(sorted(unknown))}; known: {', '.join(PROVIDERS)}")
    app = create_app({"DATABASE": args.db, "PROVIDERS": names})
    base = f"http://{args.host}:{args.port}"
    for name in names:
        print(f"{name} stand-in on {base}/{name} (state in {provider_database(args.db, name)})", flush=True)
    print(f"Stand-ins running at {base}/ (see what each holds there)", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
