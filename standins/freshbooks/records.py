"""FreshBooks clients and invoices: validation, money, taxes, statuses (REFERENCE.md sections 4 and 7).

Pure rules over dicts; accounting.py reads and writes them. Money is a decimal
string inside {amount, code}; a line's taxes are by name and percent
(taxName1/taxAmount1, taxName2/taxAmount2)."""
from __future__ import annotations

import re
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from . import errors

TWO = Decimal("0.01")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CLIENT_FIELDS = ("fname", "lname", "organization", "email", "bus_phone", "mob_phone", "home_phone", "fax",
                 "p_street", "p_street2", "p_city", "p_province", "p_code", "p_country", "currency_code",
                 "vat_name", "vat_number", "note", "language", "vis_state")
INVOICE_FIELDS = ("customerid", "create_date", "invoice_number", "currency_code", "due_offset_days", "po_number",
                  "notes", "terms", "discount_value", "language", "vis_state", "address")
# status code -> v3_status (REFERENCE.md section 7)
STATUSES = {1: "draft", 2: "sent", 3: "viewed", 4: "paid", 8: "partial"}
VIS_STATES = (0, 1, 2)  # active, deleted, archived


def eastern_now() -> str:
    """Accounting timestamps are US/Eastern local time without a zone (REFERENCE.md section 4's gotcha)."""
    return datetime.now(ZoneInfo("US/Eastern")).strftime("%Y-%m-%d %H:%M:%S")


def utc_now() -> str:
    return datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S")


class Invalid(Exception):
    """A FreshBooks validation error; .response is the error envelope to answer with."""

    def __init__(self, errno: int, message: str, field: str | None, obj: str, value=None):
        super().__init__(message)
        self.response = errors.error(errno, message, field=field, obj=obj, value=value)


def _money(value, field: str, obj: str) -> Decimal:
    """{"amount": "100.00", "code": "GBP"}: the amount must be a decimal string (a number is refused: guess)."""
    amount = value.get("amount") if isinstance(value, dict) else None
    if not isinstance(amount, str):
        raise Invalid(errors.INVALID_VALUE, f"{field} must be {{amount, code}} with the amount as a decimal string.",
                      field, obj, value)
    try:
        parsed = Decimal(amount)
    except InvalidOperation:
        raise Invalid(errors.INVALID_VALUE, f"{field} amount is not a decimal number.", field, obj, amount) from None
    if not parsed.is_finite():
        raise Invalid(errors.INVALID_VALUE, f"{field} amount is not a decimal number.", field, obj, amount)
    return parsed


def money(amount: Decimal, code: str) -> dict:
    return {"amount": str(amount.quantize(TWO, ROUND_HALF_UP)), "code": code}


def client_changes(sent: dict, creating: bool) -> dict:
    """The fields of a client create/update; raises Invalid."""
    unknown_vis = "vis_state" in sent and sent["vis_state"] not in VIS_STATES
    if unknown_vis:
        raise Invalid(errors.INVALID_VALUE, "vis_state must be 0, 1 or 2.", "vis_state", "client", sent["vis_state"])
    changes = {k: sent[k] for k in CLIENT_FIELDS if k in sent}
    for key, value in changes.items():
        if key != "vis_state" and value is not None and not isinstance(value, str):
            raise Invalid(errors.INVALID_VALUE, f"{key} must be a string.", key, "client", value)
    if changes.get("email") and not EMAIL.fullmatch(changes["email"]):
        raise Invalid(errors.INVALID_VALUE, "Invalid email address.", "email", "client", changes["email"])
    if creating and not any((changes.get(k) or "").strip() for k in ("fname", "lname", "organization", "email")):
        # The exact minimum is unconfirmed (REFERENCE.md section 4): the stand-in asks for one of these.
        raise Invalid(errors.REQUIRED, "A client needs a first name, last name, organization or email.",
                      "organization", "client")
    return changes


def line_items(sent, currency: str) -> list[dict]:
    """Validated lines with amounts computed; the set sent replaces the stored one (REFERENCE.md: assumed)."""
    if not isinstance(sent, list):
        raise Invalid(errors.INVALID_VALUE, "lines must be a list.", "lines", "invoice", sent)
    out = []
    for number, line in enumerate(sent, start=1):
        if not isinstance(line, dict):
            raise Invalid(errors.INVALID_VALUE, "Each line must be an object.", "lines", "invoice", line)
        try:
            qty = Decimal(str(line.get("qty", 1)))
        except InvalidOperation:
            raise Invalid(errors.INVALID_VALUE, "qty is not a number.", "qty", "line", line.get("qty")) from None
        unit = _money(line.get("unit_cost"), "unit_cost", "line")
        code = line["unit_cost"].get("code") or currency
        if code != currency:
            raise Invalid(errors.INVALID_VALUE, f"unit_cost currency {code} differs from the invoice's {currency}.",
                          "unit_cost", "line", code)
        amount = (qty * unit).quantize(TWO, ROUND_HALF_UP)
        stored = {"lineid": number, "type": int(line.get("type", 0)), "name": str(line.get("name") or ""),
                  "description": str(line.get("description") or ""), "qty": format(qty.normalize(), "f"),
                  "unit_cost": money(unit, currency), "amount": money(amount, currency)}
        for n in (1, 2):
            name, percent = line.get(f"taxName{n}"), line.get(f"taxAmount{n}")
            if name in (None, "") and percent in (None, ""):
                stored[f"taxName{n}"], stored[f"taxAmount{n}"] = None, None
                continue
            try:
                percent = Decimal(str(percent))
            except InvalidOperation:
                raise Invalid(errors.INVALID_VALUE, f"taxAmount{n} is not a percentage.", f"taxAmount{n}", "line",
                              percent) from None
            if not (0 <= percent <= 100) or not name:
                raise Invalid(errors.INVALID_VALUE, f"taxName{n} needs a name and taxAmount{n} a percentage "
                              "from 0 to 100.", f"taxAmount{n}", "line", percent)
            stored[f"taxName{n}"], stored[f"taxAmount{n}"] = str(name), format(percent.normalize(), "f")
        out.append(stored)
    return out


def totals(lines: list[dict]) -> dict:
    """amount = Σ line amount + Σ line tax (each tax half up to 2 dp per line; rule: the stand-in's choice)."""
    subtotal, tax = Decimal(0), Decimal(0)
    for line in lines:
        amount = Decimal(line["amount"]["amount"])
        subtotal += amount
        for n in (1, 2):
            if line.get(f"taxAmount{n}") is not None:
                tax += (amount * Decimal(line[f"taxAmount{n}"]) / 100).quantize(TWO, ROUND_HALF_UP)
    return {"subtotal": subtotal, "tax": tax, "total": subtotal + tax}


def with_status(doc: dict, status: int) -> dict:
    """Set status and what follows from it: v3_status, payment_status, paid and outstanding."""
    total = Decimal(doc["amount"]["amount"])
    paid = total if status == 4 else Decimal(0)
    doc.update(status=status, v3_status=STATUSES[status], display_status=STATUSES[status],
               payment_status="paid" if status == 4 else "unpaid",
               paid=money(paid, doc["currency_code"]), outstanding=money(total - paid, doc["currency_code"]))
    return doc
