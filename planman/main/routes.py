from decimal import Decimal

from flask import current_app, redirect, url_for
from markupsafe import Markup
from flask_login import current_user

from planman.forms_common import format_decimal
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


@bp.app_template_filter("plain_decimal")
def plain_decimal(value):
    """1.5000 -> 1.5: stored decimals without the column's padding."""
    return format_decimal(value) if isinstance(value, Decimal) else value


# Filters rather than calls in templates: list pages use them on every row,
# and Jinja calls a filter directly but a method or macro through its
# (much slower) generic call path.
@bp.app_template_filter("money")
def money(value: Decimal) -> str:
    """1234.5 -> 1,234.50"""
    return f"{value:,.2f}"


STATUS_BADGES = {"draft": "", "sent": "badge-warn", "part_paid": "badge-warn", "paid": "badge-ok", "void": "badge-bad"}
STATUS_WORDS = {"part_paid": "Part paid"}


@bp.app_template_filter("status_badge")
def status_badge(status: str) -> Markup:
    """An invoice status as a coloured badge."""
    return Markup('<span class="badge {} status-{}">{}</span>').format(
        STATUS_BADGES.get(status, ""), status, STATUS_WORDS.get(status) or status.capitalize())


@bp.app_context_processor
def endpoint_helpers():
    def has_endpoint(endpoint: str) -> bool:
        # Lets a page link to an area that another part of the app may not provide yet.
        return endpoint in current_app.view_functions

    return {"has_endpoint": has_endpoint}
