"""RQ's dashboard, mounted inside PlanMan for admins only."""
from flask import Flask, abort
from flask_login import current_user

DASHBOARD_PREFIX = "/setup/rq"


def init_app(app: Flask) -> None:
    import rq_dashboard
    from rq_dashboard.web import setup_rq_connection

    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"])
    # Flask 3 dropped the first-request hook rq-dashboard relied on.
    setup_rq_connection(app)

    @rq_dashboard.blueprint.before_request
    def admins_only():
        # rq-dashboard has no authentication of its own. A stranger gets the
        # login page; a signed-in non-admin gets a 404, as for anything not theirs.
        if not current_user.is_authenticated:
            return app.login_manager.unauthorized()
        if not current_user.is_admin:
            abort(404)

    app.register_blueprint(rq_dashboard.blueprint, url_prefix=DASHBOARD_PREFIX)
