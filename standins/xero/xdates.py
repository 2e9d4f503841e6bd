"""Xero's date forms: JSON dates as /Date(ms+0000)/, request dates as YYYY-MM-DD."""
from __future__ import annotations

import re
import time
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def now_ms() -> int:
    return int(time.time() * 1000)


def ms_date(ms: int, offset: bool = True) -> str:
    # Records carry "+0000"; the response envelope's DateTimeUTC carries none (as Xero sends them).
    return f"/Date({ms}+0000)/" if offset else f"/Date({ms})/"


def parse_date(value) -> date | None:
    """A request date: YYYY-MM-DD, an ISO datetime, or /Date(ms)/. None when unparseable."""
    if not isinstance(value, str) or not value:
        return None
    match = _MS_DATE.match(value)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=timezone.utc).date()
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def date_fields(day: date) -> tuple[str, str]:
    """(Xero JSON date, DateString) for a calendar date, midnight UTC like Xero."""
    ms = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)
    return ms_date(ms), f"{day.isoformat()}T00:00:00"


def parse_since(value: str | None) -> float | None:
    """If-Modified-Since as epoch seconds: Xero takes ISO (2026-03-01T12:00:00), HTTP dates work too."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def ms_of(xero_date: str) -> int:
    match = _MS_DATE.match(xero_date or "")
    return int(match.group(1)) if match else 0


def utc_iso(ts: float) -> str:
    """ISO form used by the identity API (connections' createdDateUtc)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]

