"""RQ's dashboard, mounted inside PlanMan for admins only."""
import json

from flask import Flask, abort, current_app, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

DASHBOARD_PREFIX = "/setup/rq"
QUEUE_WIDE_ACTIONS = {"rq_dashboard.empty_queue", "rq_dashboard.compact_queue", "rq_dashboard.requeue_all"}


def _job_firm_id(job_id: str):
    """The firm a PlanMan job works for (from its function and id argument), else None."""
    from rq.job import Job

    from planman.extensions import db
    from planman.models import BulkPush, Connection, ExternalLink, PushJob

    try:
        job = Job.fetch(job_id, connection=current_app.redis_conn)
        func_name, args = job.func_name, job.args
    except Exception:  # unknown (NoSuchJobError) or unreadable: nobody's
        return None
    owner = {"planman.jobs.run_push": PushJob, "planman.jobs.refresh_tenant_details": Connection,
             "planman.jobs.check_remote_status": ExternalLink, "planman.jobs.run_bulk_step": BulkPush}.get(func_name)
    if owner is None or len(args) != 1 or not isinstance(args[0], int):
        return None
    row = db.session.get(owner, args[0])
    return row.firm_id if row is not None else None


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
        # The queue is shared by every firm: emptying, compacting or requeueing all
        # of it would act on other firms' pushes, so no firm's admin may (operators
        # have the rq command line). Jobs are handled one by one, below.
        if request.endpoint in QUEUE_WIDE_ACTIONS:
            abort(404)
        # One job names one firm's record: another firm's job is a 404, as
        # everywhere else (view, data, delete, requeue).
        job_id = (request.view_args or {}).get("job_id")
        if job_id is not None and _job_firm_id(job_id) != current_user.firm_id:
            abort(404)
        return None

    @app.after_request
    def only_this_firms_jobs_in_lists(response):
        # The job lists come from one shared queue: keep the signed-in firm's jobs.
        if request.endpoint == "rq_dashboard.list_jobs" and response.is_json and current_user.is_authenticated:
            data = response.get_json()
            firm_id = current_user.firm_id
            data["jobs"] = [job for job in data.get("jobs", []) if _job_firm_id(job.get("id", "")) == firm_id]
            response.set_data(json.dumps(data))
        return response

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
