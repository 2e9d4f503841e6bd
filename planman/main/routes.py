from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from flask import current_app, redirect, url_for
from markupsafe import Markup
from flask_login import current_user

from planman import timezones
from planman.forms_common import format_decimal
from planman.main import bp
from planman.money import format_quantity


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


@bp.app_template_filter("quantity")
def quantity(value):
    """Quantities and unit prices: 175 -> 175.00, 1.2345 stays (planman.money)."""
    return format_quantity(value) if isinstance(value, Decimal) else value


@bp.app_template_filter("local_time")
def local_time(moment: datetime | str | None, style: str = "auto") -> Markup:
    """A stored time in the signed-in firm's zone, in a <time> element whose
    title gives the full date, time and zone. ``auto`` reads "2 minutes ago"
    for times within a few hours, else "1 Dec 2026, 14:05 GMT"; ``datetime``,
    ``date`` and ``time`` ask for one form (planman.timezones.describe)."""
    if not moment:
        return Markup("")
    if isinstance(moment, str):  # kept in JSON settings as ISO 8601, UTC
        moment = datetime.fromisoformat(moment)
    zone_name = current_user.firm.time_zone if current_user.is_authenticated else "UTC"
    iso, text, full = timezones.describe(moment, zone_name, style)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, full, text)


STATUS_BADGES = {"draft": "", "sent": "badge-warn", "part_paid": "badge-warn", "paid": "badge-ok", "void": "badge-bad"}
STATUS_WORDS = {"part_paid": "Part paid"}


@bp.app_template_filter("status_badge")
@lru_cache(maxsize=256)  # a few statuses x owners; every list row asks (formatting Markup is slow)
def status_badge(status: str, owner: str = "") -> Markup:
    """An invoice status as a coloured badge; ``owner`` says whose status it
    is where another system's sits near ("PlanMan: Draft" by the ledger's own word)."""
    words = STATUS_WORDS.get(status) or status.capitalize()
    if owner:
        words = f"{owner}: {words}"
    return Markup('<span class="badge {} status-{}">{}</span>').format(STATUS_BADGES.get(status, ""), status, words)


@bp.app_context_processor
def endpoint_helpers():
    def has_endpoint(endpoint: str) -> bool:
        # Lets a page link to an area that another part of the app may not provide yet.
        return endpoint in current_app.view_functions

    return {"has_endpoint": has_endpoint}
