"""A local stand-in for Xero's identity and accounting APIs (development and tests).

A separate program, reached only over HTTP: `python -m xero_sandbox`, or
`create_app(config)` for in-process tests. See README.md in this package."""
from __future__ import annotations

from flask import Flask

from . import accounting, control, demo, identity, pages, settings, specval
from .store import Store

__all__ = ["create_app", "demo"]


def create_app(config: dict | None = None) -> Flask:
    """Build the stand-in. config keys: see settings.DEFAULTS (DATABASE, CLIENT_ID, ...)."""
    app = Flask(__name__)
    cfg = settings.resolve(config)
    app.config["XERO_SANDBOX"] = cfg
    app.config["TESTING"] = bool(cfg.get("TESTING"))
    app.json.sort_keys = False
    store = Store(cfg["DATABASE"])
    with store.tx() as db:
        demo.seed(db)
    app.extensions["xero_sandbox.store"] = store
    specval.api()  # load the specs now, not inside the first client's request
    specval.api("xero-identity.yaml")
    for blueprint in (identity.bp, accounting.bp, control.bp, pages.bp):
        app.register_blueprint(blueprint)
    return app
