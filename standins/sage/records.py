"""Pure helpers for Sage records: money, links and the small {id, displayed_as, $path} references
Sage nests inside objects (REF 4: every object has id, displayed_as, $path)."""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .errors import Invalid

CENT = Decimal("0.01")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def new_id() -> str:
    return uuid.uuid4().hex


def ref(kind_path: str, record_id: str, displayed_as: str) -> dict:
    return {"id": record_id, "displayed_as": displayed_as, "$path": f"/{kind_path}/{record_id}"}


def money(value: Decimal) -> str:
    """Amounts answer as 2-decimal strings (guess: Sage's JSON shows decimals as strings)."""
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def decimal(value, source: str, *, default: Decimal | None = None) -> Decimal:
    if value is None or value == "":
        if default is None:
            raise Invalid(source, "can't be blank")
        return default
    if isinstance(value, bool):
        raise Invalid(source, "is not a number")
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise Invalid(source, "is not a number") from None
    if not out.is_finite():
        raise Invalid(source, "is not a number")
    return out


def iso_date(value, source: str) -> str:
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise Invalid(source, "is not a valid date (YYYY-MM-DD)") from None


def text(value, source: str, *, max_length: int | None = None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise Invalid(source, "must be a string")
    value = str(value)
    if max_length and len(value) > max_length:
        raise Invalid(source, f"is too long (maximum is {max_length} characters)")
    return value


def half_up(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
