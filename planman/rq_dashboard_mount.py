"""RQ's dashboard, mounted inside PlanMan for operators only.

Every firm shares one queue, so the dashboard shows every firm's jobs: it is
not for any firm's users. Operators named in RQ_DASHBOARD_USERS open it with
HTTP basic auth; firm admins use their own Failed pushes page instead.

Its pages are PlanMan's templates (templates/rq_dashboard/), rendered on the
server from the same data its JSON endpoints serve, with Jinja's escaping:
rq-dashboard's own pages build HTML in the browser with underscore templates,
which need 'unsafe-eval' and insert a job's exc_info (which can quote record
data, e.g. a database error's parameters) unescaped."""
from __future__ import annotations

import hmac
import json
from datetime import datetime

from flask import Flask, Response, abort, current_app, request
from werkzeug.security import check_password_hash, generate_password_hash

DASHBOARD_PREFIX = "/setup/rq"
# Act on the whole shared queue, and one of them on a GET: operators use the rq command line for these.
QUEUE_WIDE_ACTIONS = {"rq_dashboard.empty_queue", "rq_dashboard.compact_queue", "rq_dashboard.requeue_all"}
REALM = 'Basic realm="PlanMan job queue (operators)", charset="UTF-8"'
# Checked when the user name is unknown, so the answer takes as long as for a known one.
_DUMMY_HASH = generate_password_hash("not a real password")


def parse_users(value: str) -> dict[str, str]:
    """``name:password-hash,name2:hash2`` (werkzeug hashes) as {name: hash}."""
    users = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, _, password_hash = entry.partition(":")
        if not name or "$" not in password_hash:
            raise ValueError(f"RQ_DASHBOARD_USERS: {name or entry[:20]!r} needs name:password-hash "
                             "(a werkzeug hash, never the password itself)")
        users[name] = password_hash
    return users


def is_operator(users: dict[str, str]) -> bool:
    """Whether the request's basic-auth credential is one of ``users``'."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        return False
    given = auth.username.encode()
    stored = next((h for name, h in users.items() if hmac.compare_digest(name.encode(), given)), None)
    matches = check_password_hash(stored or _DUMMY_HASH, auth.password)
    return stored is not None and matches


def _ask_for_credential() -> Response:
    return Response("The job queue dashboard is for PlanMan's operators.", 401,
                    {"WWW-Authenticate": REALM, "Cache-Control": "no-store"})


def _attempts_key() -> str:
    return f"planman:rq-dashboard:attempts:{request.remote_addr or 'unknown'}"


def _reserve_attempt() -> bool:
    """Count this credential check before making it (so concurrent guesses cannot
    all pass); False once an address has used up LOGIN_MAX_FAILURES in the window."""
    key, redis = _attempts_key(), current_app.redis
    pipe = redis.pipeline()
    pipe.set(key, 0, ex=current_app.config["LOGIN_LOCKOUT_SECONDS"], nx=True)  # the window starts
    pipe.incr(key)
    _, count = pipe.execute()
    if count > current_app.config["LOGIN_MAX_FAILURES"]:
        redis.decr(key)  # a refused request tested nothing
        return False
    return True


def _give_attempt_back() -> None:
    """A right credential is not a failure: the operator's page refreshes must not lock them out."""
    current_app.redis.decr(_attempts_key())


def page_data() -> dict:
    """What the page being rendered shows: exactly what its JSON endpoint serves
    (through the same JSON encoding, so statuses and times read the same)."""
    from rq_dashboard import web

    args = dict(request.view_args or {})
    instance = args.get("instance_number", 0)
    if request.endpoint == "rq_dashboard.queues_overview":
        data = web.list_queues.__wrapped__(instance)
    elif request.endpoint == "rq_dashboard.workers_overview":
        data = web.list_workers.__wrapped__(instance)
    elif request.endpoint == "rq_dashboard.jobs_overview":
        # Without a queue in the URL its view shows RQ's "default" queue: list that one too.
        data = web.list_jobs.__wrapped__(instance, args["queue_name"] or "default",
                                         args["registry_name"], args["per_page"], args["order"], args["page"])
    elif request.endpoint == "rq_dashboard.job_view":
        data = web.job_info.__wrapped__(instance, args["job_id"])
    else:
        data = {}
    return json.loads(current_app.json.dumps(data))


def dashboard_time(iso: str | None) -> str:
    """rq-dashboard's ISO UTC times as people read them."""
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).strftime("%d %b %Y %H:%M:%S UTC")


def init_app(app: Flask) -> None:
    import rq_dashboard
    from rq.job import Job
    from rq_dashboard.web import setup_rq_connection

    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"])
    # Flask 3 dropped the first-request hook rq-dashboard relied on.
    setup_rq_connection(app)
    users = parse_users(app.config.get("RQ_DASHBOARD_USERS") or "")

    # rq-dashboard's blueprint is a module-level object shared by every app,
    # so its guards hang off the app, keyed by blueprint name.
    @app.before_request
    def operators_only():
        if request.blueprint != "rq_dashboard":
            return None
        if not users:  # no operator configured: there is no dashboard
            abort(404)
        # A firm's session counts for nothing here, admin or not.
        if request.authorization is None:
            return _ask_for_credential()
        if not _reserve_attempt():
            return Response("Too many wrong operator passwords from this address; try again later.", 429,
                            {"Retry-After": str(app.config["LOGIN_LOCKOUT_SECONDS"]), "Cache-Control": "no-store"})
        if not is_operator(users):
            return _ask_for_credential()
        _give_attempt_back()
        if request.endpoint in QUEUE_WIDE_ACTIONS:
            abort(404)
        args = request.view_args or {}
        if args.get("instance_number", 0) != 0:  # one Redis is configured; others would be a 500
            abort(404)
        if "job_id" in args and not Job.exists(args["job_id"], connection=app.redis_conn):
            abort(404)
        return None

    @app.context_processor
    def dashboard_page_data():
        if request.blueprint != "rq_dashboard":
            return {}
        # A function, called by the page itself: error pages of this blueprint need no data.
        return {"dashboard_data": page_data}

    app.add_template_filter(dashboard_time)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=DASHBOARD_PREFIX)
