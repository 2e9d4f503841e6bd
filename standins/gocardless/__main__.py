"""python -m standins.gocardless [--host 127.0.0.1] [--port 5002] [--db instance/standins.db]

The GoCardless stand-in at the root of its own port: the gocardless-pro SDK
joins its absolute paths (/payments) onto the base URL's host, dropping any
prefix, so its API cannot live under /gocardless. It shares its state file
with `python -m standins` (the same --db), which serves its pages there."""
from __future__ import annotations

import argparse

from werkzeug.serving import run_simple

from ..core.app import DEFAULT_DATABASE, provider_database
from . import create_app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standins.gocardless")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5002)
    parser.add_argument("--db", default=DEFAULT_DATABASE)
    args = parser.parse_args(argv)
    database = provider_database(args.db, "gocardless")
    app = create_app({"DATABASE": database})
    print(f"gocardless stand-in on http://{args.host}:{args.port}/ (state in {database})", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
