"""The firm's time zone: which zones Setup offers, the default at sign-up, and
how a stored time (naive UTC, see models.utcnow) is shown in it."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Europe/London"

# Zones a small firm is likely to be in, grouped as people look for them; any
# other valid IANA name (a browser's own, at sign-up) is accepted too.
COMMON_ZONES: tuple[str, ...] = (
    "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin", "Europe/Amsterdam",
    "Europe/Brussels", "Europe/Madrid", "Europe/Rome", "Europe/Zurich", "Europe/Stockholm", "Europe/Oslo",
    "Europe/Copenhagen", "Europe/Helsinki", "Europe/Warsaw", "Europe/Prague", "Europe/Vienna", "Europe/Athens",
    "Europe/Istanbul", "Africa/Johannesburg", "Africa/Lagos", "Africa/Nairobi", "Asia/Dubai", "Asia/Kolkata",
    "Asia/Singapore", "Asia/Hong_Kong", "Asia/Tokyo", "Australia/Perth", "Australia/Brisbane",
    "Australia/Sydney", "Australia/Melbourne", "Pacific/Auckland", "America/St_Johns", "America/Halifax",
    "America/New_York", "America/Toronto", "America/Chicago", "America/Denver", "America/Phoenix",
    "America/Los_Angeles", "America/Vancouver", "America/Anchorage", "Pacific/Honolulu", "America/Mexico_City",
    "America/Sao_Paulo", "America/Argentina/Buenos_Aires", "UTC",
)

# Where the browser gives no zone at sign-up: the zone of the firm's currency,
# when one zone is the obvious answer.
CURRENCY_ZONES = {"GBP": "Europe/London", "EUR": "Europe/Paris", "USD": "America/New_York",
                  "CAD": "America/Toronto", "AUD": "Australia/Sydney", "NZD": "Pacific/Auckland",
                  "ZAR": "Africa/Johannesburg", "INR": "Asia/Kolkata", "SGD": "Asia/Singapore",
                  "JPY": "Asia/Tokyo", "AED": "Asia/Dubai"}


@lru_cache(maxsize=64)
def zone(name: str | None) -> ZoneInfo:
    """The zone called ``name``; UTC for an unknown or empty name (never raises)."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def is_valid(name: str | None) -> bool:
    if not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def sign_up_zone(browser_zone: str | None, currency: str) -> str:
    """The browser's zone when it sent a real one, else the currency's, else London."""
    if is_valid(browser_zone):
        return browser_zone
    return CURRENCY_ZONES.get(currency, DEFAULT_ZONE)


def zone_choices(current: str | None = None) -> list[tuple[str, str]]:
    """(value, label) pairs for a select; a valid current zone outside the list is kept."""
    names = list(COMMON_ZONES)
    if current and current not in names and is_valid(current):
        names.insert(0, current)
    return [(name, name.replace("_", " ")) for name in names]


def to_local(moment: datetime, zone_name: str | None) -> datetime:
    """A stored time (naive means UTC) in the zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone(zone_name))


def relative(moment: datetime, now: datetime) -> str | None:
    """"just now", "2 minutes ago", "3 hours ago", "in 30 seconds": for times
    within 12 hours of ``now`` (both aware); None further away, where a date
    reads better."""
    seconds = (now - moment).total_seconds()
    ahead, seconds = seconds < 0, abs(seconds)
    if seconds >= 12 * 3600:
        return None
    if not ahead and seconds < 45:
        return "just now"
    if ahead and seconds < 60:
        amount, unit = max(round(seconds), 1), "second"
    elif seconds < 3600:
        amount, unit = max(round(seconds / 60), 1), "minute"
    else:
        amount, unit = round(seconds / 3600), "hour"
    words = f"{amount} {unit}{'' if amount == 1 else 's'}"
    return f"in {words}" if ahead else f"{words} ago"


def describe(moment: datetime, zone_name: str | None, style: str = "auto",
             now: datetime | None = None) -> tuple[str, str, str]:
    """(ISO 8601 with offset, text to show, full absolute text) for a time
    shown to a firm in ``zone_name``. Styles: ``auto`` (relative when near,
    else date and time), ``datetime``, ``date``, ``time``."""
    local = to_local(moment, zone_name)
    full = f"{local.day} {local:%b %Y, %H:%M} {local.tzname()}"
    if style == "date":
        text = f"{local.day} {local:%b %Y}"
    elif style == "time":
        text = f"{local:%H:%M} {local.tzname()}"
        if (now or datetime.now(timezone.utc)).astimezone(local.tzinfo).date() != local.date():
            text = f"{local.day} {local:%b}, {text}"
    else:
        text = None
        if style == "auto":
            text = relative(local, now or datetime.now(timezone.utc))
        text = text or full
    return local.isoformat(timespec="seconds"), text, full
