"""One WSGI application serving every provider's stand-in under its own path prefix.

Each provider package builds its own Flask app (its routes unprefixed, so it can
also be tested alone); this module mounts them at /<name> with werkzeug's
DispatcherMiddleware, which moves the prefix into SCRIPT_NAME: a provider sees
the paths its real API has (what Xero's spec validation needs), and url_for and
request.url_root carry the prefix in every link and URL it hands out."""
from __future__ import annotations

import importlib
from pathlib import Path

from flask import Flask, Response, render_template
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from . import pages as core_pages

# Prefix -> package. A new provider is one package and one line here.
PROVIDERS = {"xero": "standins.xero", "freshbooks": "standins.freshbooks", "stripe": "standins.stripe",
             "gocardless": "standins.gocardless", "sage": "standins.sage"}
DEFAULT_DATABASE = "instance/standins.db"

FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
           '<rect width="16" height="16" rx="3" fill="#2f6f4f"/>'
           '<text x="8" y="12" font-size="10" text-anchor="middle" fill="#fff" font-family="sans-serif">S</text></svg>')


def provider_app(import_name: str, *, config_key: str, cfg: dict, store, seed, blueprints,
                 webhooks=None) -> Flask:
    """The Flask app of one provider's stand-in, built the same way for every provider.

    cfg: the provider's resolved settings (kept in app.config[config_key]);
    store: its core.store.Store; seed(db): its demo records, written on a new or
    reset file; blueprints: its routes (the core's page layout is added first);
    webhooks: a core.webhooks.Deliveries when the provider sends webhooks (delivered by a
    thread unless TESTING; cfg DELIVER_WEBHOOKS True/False decides otherwise)."""
    app = Flask(import_name)
    app.config[config_key] = cfg
    app.config["TESTING"] = bool(cfg.get("TESTING"))
    app.json.sort_keys = False
    with store.tx() as db:
        seed(db)
    app.extensions["standins.store"] = store
    for blueprint in (core_pages.bp, *blueprints):
        app.register_blueprint(blueprint)
    if webhooks is not None:
        webhooks.init_app(app, background=cfg.get("DELIVER_WEBHOOKS"))
    return app


def provider_database(database: str, name: str) -> str:
    """Each provider keeps its state in its own SQLite file beside `database`
    (instance/standins.db -> instance/standins.xero.db), so one provider's reset,
    write lock or schema never touches another's."""
    path = Path(database)
    return str(path.with_name(f"{path.stem}.{name}{path.suffix or '.db'}"))


def provider_modules(names=None) -> dict:
    return {name: importlib.import_module(PROVIDERS[name]) for name in (names or PROVIDERS)}


def create_app(config: dict | None = None) -> Flask:
    """config: DATABASE (the base file name), TESTING, and per provider a dict of its
    own settings under its name (e.g. {"xero": {"CLIENT_ID": ...}})."""
    config = dict(config or {})
    database = config.get("DATABASE") or DEFAULT_DATABASE
    root = Flask(__name__)
    root.config["TESTING"] = bool(config.get("TESTING"))
    modules, mounted = provider_modules(config.get("PROVIDERS")), {}
    for name, module in modules.items():
        own = {"DATABASE": provider_database(database, name), "TESTING": root.config["TESTING"],
               **(config.get(name) or {})}
        mounted[name] = module.create_app(own)
    root.extensions["standins.providers"] = mounted

    @root.get("/")
    def index():
        sections = [{"name": name, "title": modules[name].TITLE, "prefix": f"/{name}",
                     "accounts": modules[name].overview(app)} for name, app in mounted.items()]
        return render_template("core/index.html", sections=sections)

    @root.get("/favicon.ico")
    def favicon():
        return Response(FAVICON, mimetype="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    root.wsgi_app = DispatcherMiddleware(root.wsgi_app, {f"/{name}": app for name, app in mounted.items()})
    return root

