"""PlanMan: practice management with accounting integrations."""
from __future__ import annotations

import logging

from flask import Flask
from redis import Redis
from rq import Queue

from config import Config
from planman.extensions import csrf, db, login_manager, migrate


def create_app(config_class: type = Config) -> Flask:
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.from_object(config_class)
    if app.config["TRUSTED_PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A database server can drop idle connections, hence the ping before
        # each use; a SQLite file cannot, and the ping would cost every request.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            k: v for k, v in app.config["SQLALCHEMY_ENGINE_OPTIONS"].items() if k != "pool_pre_ping"
        }
    db.init_app(app)
    # Batch mode lets later migrations alter SQLite tables (it cannot ALTER in place).
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"), render_as_batch=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    csrf.init_app(app)

    # A Redis host that has gone away answers nothing: give up connecting after a
    # few seconds (the request then gets the "briefly unavailable" page).
    app.redis = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=5)
    app.push_queue = Queue(app.config["RQ_QUEUE"], connection=app.redis)

    from planman import models  # noqa: F401  (register tables)
    from planman.auth import bp as auth_bp
    from planman.clients import bp as clients_bp
    from planman.integrations.views import bp as integrations_bp
    from planman.invoices import bp as invoices_bp
    from planman.main import bp as main_bp
    from planman.payments import bp as payments_bp
    from planman.payments import public_bp as pay_bp
    from planman.integrations.webhooks import bp as webhooks_bp
    from planman.setup import bp as setup_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(clients_bp, url_prefix="/clients")
    app.register_blueprint(invoices_bp, url_prefix="/invoices")
    app.register_blueprint(setup_bp, url_prefix="/setup")
    app.register_blueprint(integrations_bp, url_prefix="/integrations")
    app.register_blueprint(payments_bp, url_prefix="/invoices")
    app.register_blueprint(pay_bp)
    app.register_blueprint(webhooks_bp)

    from planman.integrations import registry

    registry.init_app(app)

    from planman import rq_dashboard_mount

    rq_dashboard_mount.init_app(app)

    from planman import security

    security.init_app(app)

    from planman.cli import register_cli

    register_cli(app)
    from planman.integrations import keepalive, webhooks

    webhooks.register_cli(app)
    keepalive.register_cli(app)
    from planman.payments import pages

    pages.register_cli(app)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return app
