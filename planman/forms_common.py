"""Form pieces shared by the core areas: text hygiene, decimal precision and the
currency list the ledgers accept."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from wtforms import DecimalField
from wtforms.validators import StopValidation, ValidationError

# The ISO 4217 codes a ledger's API accepts (the CurrencyCode enum of the first
# ledger's spec, under standins/), copied once so the app never parses a spec at runtime.
CURRENCY_CODES: tuple[str, ...] = (
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BYR", "BZD",
    "CAD", "CDF", "CHF", "CLF", "CLP", "CNY", "COP", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF",
    "DKK", "DOP", "DZD", "EEK", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "HUF", "IDR", "ILS", "INR",
    "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD",
    "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LTL", "LVL", "LYD", "MAD", "MDL", "MGA",
    "MKD", "MMK", "MNT", "MOP", "MRO", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN",
    "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN",
    "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP",
    "SKK", "SLE", "SLL", "SOS", "SRD", "STD", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT",
    "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VEF", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZMK", "ZWD",
)

# C0/C1 control characters except tab, newline and carriage return, which a
# multi-line field legitimately holds; ledgers reject or mangle the rest.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAK_RE = re.compile(r"[\t\r\n]")


def strip_filter(value):
    return value.strip() if isinstance(value, str) else value


class NoControlChars:
    """Reject control characters; single-line fields also reject tabs and line breaks."""

    def __init__(self, multiline: bool = False):
        self.multiline = multiline

    def __call__(self, form, field):
        value = field.data
        if not isinstance(value, str):
            return
        if _CONTROL_RE.search(value) or (not self.multiline and _LINE_BREAK_RE.search(value)):
            raise ValidationError("Remove the control characters (such as tabs or line breaks) from this field.")


class MaxDecimalPlaces:
    def __init__(self, places: int):
        self.places = places

    def __call__(self, form, field):
        value = field.data
        if not isinstance(value, Decimal):
            return
        if not value.is_finite():
            # Stop here: later validators cannot compare NaN (sNaN even raises).
            raise StopValidation("Enter a number.")
        # Trailing zeros do not count (1.50000 has two places). Counted from the
        # digits, not with normalize(), which under- or overflows on 1e-1000100
        # (silently 0) or 1e1000000 (an exception).
        _, digits, exponent = value.as_tuple()
        significant = "".join(map(str, digits)).rstrip("0")
        places = -(exponent + len(digits) - len(significant)) if significant else 0
        if places > self.places:
            raise ValidationError(f"Use at most {self.places} decimal places.")


class SensibleDate:
    """A date an invoice or payment can have: far-off years are typing slips, and
    date arithmetic on them (a due date 30 days after 31 Dec 9999) fails."""

    EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)

    def __call__(self, form, field):
        if isinstance(field.data, date) and not self.EARLIEST <= field.data <= self.LATEST:
            raise ValidationError("Enter a date from 1900 to 2999.")


def is_index(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def currency_choices() -> list[tuple[str, str]]:
    return [(code, code) for code in CURRENCY_CODES]


class PlainDecimalField(DecimalField):
    """A decimal shown as typed: no forced places, no exponent, no trailing zeros."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("places", None)
        super().__init__(*args, **kwargs)

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        if isinstance(self.data, Decimal) and self.data.is_finite():
            return format_decimal(self.data)
        return "" if self.data is None else str(self.data)


def format_decimal(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def parse_decimal(text) -> Decimal | None:
    """Lenient parsing for live previews: anything that is not a finite number is None."""
    try:
        value = Decimal(str(text).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return None
    # Far beyond any amount a form accepts; keeps the preview's arithmetic within
    # Decimal's precision (1e30 x 1 could not be rounded to cents: a 500).
    return value if value.is_finite() and value.copy_abs() <= PREVIEW_LIMIT else None


PREVIEW_LIMIT = Decimal("1e12")
