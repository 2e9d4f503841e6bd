from flask import redirect, url_for
from flask_login import current_user

from planman.main import bp


@bp.get("/")
def index():
    if current_user.is_authenticated:
        return redirect(url_for("clients.index"))
    return redirect(url_for("auth.login"))


@bp.get("/healthz")
def healthz():
    """A constant answer: the baseline the page benchmarks compare against."""
    return "ok"
