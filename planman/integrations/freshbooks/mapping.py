"""Pure functions: PlanMan records -> FreshBooks payloads, and FreshBooks' words -> ours.

No database, no HTTP (REFERENCE.md sections 4, 5 and 7): money is a decimal
string inside ``{amount, code}``, taxes go on each line by name and percent,
errors arrive as ``errno`` envelopes."""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation

from planman.integrations.errors import ValidationFailed

# Invoice v3_status words, as FreshBooks' own screens name them (REFERENCE.md section 7).
INVOICE_STATUS_LABELS = {
    "created": "Draft", "draft": "Draft", "sent": "Sent", "viewed": "Viewed", "paid": "Paid",
    "autopaid": "Auto-paid", "partial": "Partly paid", "retry": "Payment retrying", "failed": "Payment failed",
    "success": "Paid", "disputed": "Disputed", "deleted": "Deleted",
}
# Statuses a customer cannot have seen yet: drafts are invisible to them (REFERENCE.md section 4).
UNSEEN_STATUSES = {"", "created", "draft"}
# The numeric status codes, for answers that carry no v3_status.
STATUS_CODES = {0: "disputed", 1: "draft", 2: "sent", 3: "viewed", 4: "paid", 5: "autopaid", 6: "retry",
                7: "failed", 8: "partial"}
VIS_STATES = {0: "active", 1: "deleted", 2: "archived"}
# errno values of the accounting error envelope (REFERENCE.md section 5).
REQUIRED_FIELD, ACCESS_DENIED, INVALID_VALUE, DELETED_RESOURCE, UNKNOWN_RESOURCE = 1001, 1003, 1004, 1011, 1012

# The PlanMan form field a FreshBooks error's "field" is about.
FIELD_NAMES = {
    "client": {"organization": "name", "fname": "first_name", "lname": "last_name", "email": "email",
               "bus_phone": "phone", "p_street": "address_line1", "p_street2": "address_line2",
               "p_city": "city", "p_province": "region", "p_code": "postcode", "p_country": "country",
               "vat_number": "tax_number"},
    "invoice": {"invoice_number": "number", "create_date": "issue_date", "due_offset_days": "due_date",
                "currency_code": "currency", "po_number": "reference", "customerid": "client",
                "lines": "lines", "qty": "lines", "unit_cost": "lines", "name": "lines", "description": "lines",
                "taxAmount1": "lines", "taxAmount2": "lines", "taxName1": "lines", "taxName2": "lines"},
}


def _text(value) -> str:
    return (value or "").strip()


def _decimal(value: Decimal) -> str:
    """A decimal as FreshBooks takes it: a plain string, no exponent, no trailing zeros past 2 places."""
    value = Decimal(value)
    quantized = value.quantize(Decimal("0.01")) if value == value.quantize(Decimal("0.01")) else value.normalize()
    return format(quantized, "f")


def client_payload(client, *, only_held: bool = False) -> dict:
    """A FreshBooks client for a PlanMan client. PlanMan's name is the organisation.

    ``only_held``: for a client PlanMan did not create (found by the lookup),
    send only the fields PlanMan holds, so nothing typed into FreshBooks is
    cleared by an empty string."""
    payload = {
        "organization": _text(client.name),
        "fname": _text(client.first_name),
        "lname": _text(client.last_name),
        "email": _text(client.email),
        "bus_phone": _text(client.phone),
        "p_street": _text(client.address_line1),
        "p_street2": _text(client.address_line2),
        "p_city": _text(client.city),
        "p_province": _text(client.region),
        "p_code": _text(client.postcode),
        "p_country": _text(client.country),
        "vat_number": _text(client.tax_number),
    }
    if only_held:
        payload = {key: value for key, value in payload.items() if value}
    return payload


def is_same_client(remote: dict, client) -> bool:
    """The lookup key for clients (README, Design): the exact organisation and
    e-mail, compared without case or surrounding spaces. FreshBooks lets several
    clients share an e-mail (REFERENCE.md section 4), and two companies may
    share a name, so neither alone is safe; together they name one customer."""
    return (_text(remote.get("organization")).casefold() == _text(client.name).casefold()
            and _text(remote.get("email")).casefold() == _text(client.email).casefold()
            and remote.get("vis_state", 0) != 1)


CLIENT_FIELD_LABELS = {
    "organization": "Organization", "fname": "First name", "lname": "Last name", "email": "E-mail address",
    "bus_phone": "Phone", "p_street": "Address line 1", "p_street2": "Address line 2", "p_city": "Town or city",
    "p_province": "Region", "p_code": "Postcode", "p_country": "Country", "vat_number": "Tax number",
}


def changed_client_fields(remote: dict, payload: dict) -> list[str]:
    """Labels of the fields ``payload`` changes on the FreshBooks client ``remote``."""
    return [CLIENT_FIELD_LABELS[key] for key, value in payload.items()
            if key in CLIENT_FIELD_LABELS and _text(remote.get(key)) != value]


INCLUSIVE_REFUSED = (
    "FreshBooks adds tax on top of line prices, but this invoice's amounts include tax. Change “Amounts are” "
    "to “Tax exclusive” (or “No tax”) to send it to FreshBooks.")
DISCOUNT_REFUSED = (
    "FreshBooks has no discount per line, and line {n} has a {percent}% discount. Remove the line's discount "
    "(or lower its unit price instead) to send it to FreshBooks.")


def invoice_problems(invoice) -> list[str]:
    """What FreshBooks cannot hold about this invoice as it stands, said before sending."""
    problems = []
    if invoice.amounts_are == "inclusive":
        problems.append(INCLUSIVE_REFUSED)
    for n, line in enumerate(invoice.lines, start=1):
        if line.discount_percent:
            problems.append(DISCOUNT_REFUSED.format(n=n, percent=format(Decimal(line.discount_percent).normalize(), "f")))
    return problems


def _line(line, currency: str, with_tax: bool) -> dict:
    description = (line.description or "").strip()
    first, _, rest = description.partition("\n")
    item = {
        "type": 0,  # a normal line (not time)
        "name": first.strip()[:255],
        "description": rest.strip(),
        "qty": _decimal(line.quantity),
        "unit_cost": {"amount": _decimal(line.unit_price), "code": currency},
    }
    if with_tax and line.tax_rate is not None:
        item["taxName1"] = _text(line.tax_rate.name)
        item["taxAmount1"] = _decimal(line.tax_rate.percent)
    return item


def invoice_payload(invoice, *, customer_id: str) -> dict:
    """A FreshBooks invoice for a PlanMan invoice (always the complete line set:
    whether FreshBooks merges lines on update is unconfirmed, REFERENCE.md section 4).

    No status field: new invoices are drafts, and nothing here sends an
    ``action_*``, so PlanMan never emails or marks an invoice sent."""
    problems = invoice_problems(invoice)
    if problems:
        fields = {}
        if invoice.amounts_are == "inclusive":
            fields["amounts_are"] = [INCLUSIVE_REFUSED]
        if any(line.discount_percent for line in invoice.lines):
            fields["lines"] = [p for p in problems if p != INCLUSIVE_REFUSED]
        raise ValidationFailed(problems, fields)
    with_tax = invoice.amounts_are != "no_tax"
    return {
        "customerid": int(customer_id),
        "invoice_number": invoice.number,
        "create_date": invoice.issue_date.isoformat(),
        "due_offset_days": max((invoice.due_date - invoice.issue_date).days, 0),
        "currency_code": invoice.currency,
        "po_number": _text(invoice.reference),
        "lines": [_line(line, invoice.currency, with_tax) for line in invoice.lines],
    }


def money(value) -> Decimal | None:
    """The Decimal in a FreshBooks ``{amount, code}``, or None."""
    try:
        return Decimal(str((value or {})["amount"])).quantize(Decimal("0.01"))
    except (KeyError, TypeError, InvalidOperation, ValueError):
        return None


def invoice_status(invoice: dict) -> str:
    """An invoice's status word: "deleted" for a soft-deleted one, else its v3_status."""
    if invoice.get("vis_state") == 1:
        return "deleted"
    status = invoice.get("v3_status")
    if not status and isinstance(invoice.get("status"), int):
        status = STATUS_CODES.get(invoice["status"], "")
    return str(status or "")


def client_status(client: dict) -> str:
    return VIS_STATES.get(client.get("vis_state", 0), "active")


def customer_has_seen(status: str) -> bool:
    """Sent, viewed, paid...: the customer may have seen it (drafts are invisible to them)."""
    return status not in UNSEEN_STATUSES and status != "deleted"


def confirm_update_question(status: str) -> str:
    """What the panel asks before an Update that changes what the customer has seen."""
    label = INVOICE_STATUS_LABELS.get(status, status.title())
    seen = "has paid" if status in ("paid", "autopaid", "success", "partial") else "may have seen"
    return (f"This invoice is “{label}” in FreshBooks: the customer {seen} it. Update changes the invoice "
            "in FreshBooks, and so what the customer sees there. Update it anyway?")


def error_messages(body) -> list[dict]:
    """The errors of any FreshBooks error shape, as ``[{errno, field, message}]``.

    Accounting answers ``{"response": {"errors": [...]}}``; other API families
    answer ``{"errno", "message"}`` or ``{"code", "message", "details"}``
    (REFERENCE.md section 5): read all of them defensively."""
    if not isinstance(body, dict):
        return []
    found = []
    response = body.get("response") if isinstance(body.get("response"), dict) else {}
    for error in response.get("errors") or body.get("errors") or []:
        if isinstance(error, dict):
            found.append({"errno": error.get("errno"), "field": error.get("field") or "",
                          "message": str(error.get("message") or "")})
    if not found and (body.get("message") or body.get("error_description")):
        found.append({"errno": body.get("errno") or body.get("code"), "field": "",
                      "message": str(body.get("message") or body.get("error_description"))})
    return found


def field_errors(record_type: str, errors: list[dict]) -> dict[str, list[str]]:
    """FreshBooks' messages keyed by the PlanMan field each names."""
    names = FIELD_NAMES.get(record_type, {})
    fields: dict[str, list[str]] = {}
    for error in errors:
        field = names.get(error.get("field") or "")
        if field and error.get("message"):
            fields.setdefault(field, []).append(error["message"])
    return fields


def fingerprint(payload: dict) -> str:
    """Stable hash of what would be sent: differs exactly when the record changed."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def record_url(template: str, account_id: str, record_type: str, external_id: str) -> str | None:
    """A link to the record in FreshBooks from ``FRESHBOOKS_RECORD_URL`` (``{account_id}``,
    ``{kind}``: client or invoice, ``{id}``); none when not configured, because
    FreshBooks' own record URLs are not documented (README, Design)."""
    if not template:
        return None
    return template.format(account_id=account_id, kind=record_type, id=external_id)
