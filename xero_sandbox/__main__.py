"""python -m xero_sandbox [--host 127.0.0.1] [--port 5001] [--db PATH]"""
from __future__ import annotations

import argparse

from werkzeug.serving import run_simple

from . import create_app
from .settings import DEFAULTS


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m xero_sandbox", description="Local stand-in for Xero's APIs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--db", default=DEFAULTS["DATABASE"], help="SQLite file shared by all processes")
    args = parser.parse_args(argv)
    app = create_app({"DATABASE": args.db})
    print(f"Xero stand-in on http://{args.host}:{args.port} (state in {args.db}); "
          f"point XERO_LOGIN_URL, XERO_IDENTITY_URL and XERO_API_URL at it.", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
