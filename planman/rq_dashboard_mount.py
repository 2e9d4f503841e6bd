"""RQ's dashboard, mounted inside PlanMan for admins only."""
from flask import Flask, abort, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

DASHBOARD_PREFIX = "/setup/rq"


def init_app(app: Flask) -> None:
    import rq_dashboard
    from rq_dashboard.web import setup_rq_connection

    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"])
    # Flask 3 dropped the first-request hook rq-dashboard relied on.
    setup_rq_connection(app)

    # rq-dashboard's blueprint is a module-level object shared by every app,
    # so its guards hang off the app, keyed by blueprint name.
    @app.before_request
    def admins_only():
        if request.blueprint != "rq_dashboard":
            return None
        # It has no authentication of its own. A stranger gets the login page;
        # a signed-in non-admin a 404, as for anything that is not theirs.
        if not current_user.is_authenticated:
            return app.login_manager.unauthorized()
        if not current_user.is_admin:
            abort(404)
        return None

    @app.after_request
    def send_csrf_token_with_dashboard_actions(response):
        # Its buttons POST through jQuery without our CSRF token; a small
        # script of ours adds the header, so CSRF stays on for these routes too.
        if request.blueprint == "rq_dashboard" and response.mimetype == "text/html" and not response.direct_passthrough:
            html = response.get_data(as_text=True)
            snippet = (f'<meta name="csrf-token" content="{generate_csrf()}">'
                       f'<script src="{url_for("static", filename="js/rq_dashboard_csrf.js")}"></script>')
            response.set_data(html.replace("</body>", snippet + "</body>", 1))
        return response

    app.register_blueprint(rq_dashboard.blueprint, url_prefix=DASHBOARD_PREFIX)
