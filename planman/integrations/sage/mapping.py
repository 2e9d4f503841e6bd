"""Pure functions: PlanMan records -> Sage Accounting payloads, and Sage's words -> ours.

No database, no HTTP (REFERENCE.md sections 4, 5 and 7): bodies wrap the
object (``{"contact": {...}}``), money is a decimal string, every invoice line
names an INCOME ledger account and a Sage tax rate by id, and errors arrive as
an array of ``$severity``/``$dataCode``/``$message``/``$source``."""
from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation

from planman.integrations.errors import ValidationFailed
from planman.money import LineInput, line_totals

CUSTOMER = "CUSTOMER"

# Sales invoice statuses, as Sage's screens name them (REFERENCE.md section 7).
INVOICE_STATUS_LABELS = {"DRAFT": "Draft", "UNPAID": "Unpaid", "PART_PAID": "Part paid", "PAID": "Paid",
                         "VOID": "Void", "DELETED": "Deleted"}
# Paid or part-paid: Sage's money is tied to it, so PlanMan changes nothing (section 7).
LOCKED_STATUSES = {"PAID", "PART_PAID"}
CLOSED_STATUSES = {"VOID", "DELETED"}

# The PlanMan form field a Sage error's ``$source`` is about (indices and nesting dropped:
# ``invoice_lines[0].tax_rate_id`` and ``main_contact_person.email`` read as their last part).
SOURCE_FIELDS = {
    "client": {"name": "name", "email": "email", "telephone": "phone", "mobile": "phone",
               "tax_number": "tax_number", "address_line_1": "address_line1", "address_line_2": "address_line2",
               "city": "city", "region": "region", "postal_code": "postcode", "country_id": "country",
               "credit_days": "payment_terms_days", "notes": "notes"},
    "invoice": {"invoice_number": "number", "date": "issue_date", "due_date": "due_date", "reference": "reference",
                "contact_id": "client", "currency_id": "currency", "invoice_lines": "lines",
                "description": "lines", "quantity": "lines", "unit_price": "lines", "ledger_account_id": "lines",
                "tax_rate_id": "lines", "tax_amount": "lines"},
}


def _text(value) -> str:
    return (value or "").strip()


def decimal_string(value) -> str:
    """A Decimal as Sage writes one: a plain string, no exponent."""
    value = Decimal(value)
    return format(value.quantize(Decimal("0.01")) if value == value.quantize(Decimal("0.01")) else value.normalize(),
                  "f")


def money(value) -> Decimal | None:
    """A Sage money string ("120.0") as a Decimal to the cent, or None."""
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, TypeError, ValueError):
        return None


# -- contacts -------------------------------------------------------------------

def contact_payload(client, *, only_held: bool = False) -> dict:
    """A Sage customer contact for a PlanMan client. ``reference`` carries PlanMan's
    stable client reference: the lookup that finds it again after a lost answer.

    ``only_held``: for a contact PlanMan did not create (found by the lookup),
    send only what PlanMan holds, so nothing typed into Sage is cleared."""
    person = {"name": " ".join(filter(None, (_text(client.first_name), _text(client.last_name)))),
              "email": _text(client.email), "telephone": _text(client.phone)}
    address = {"address_line_1": _text(client.address_line1), "address_line_2": _text(client.address_line2),
               "city": _text(client.city), "region": _text(client.region), "postal_code": _text(client.postcode)}
    country = country_id(client.country)
    if country:
        address["country_id"] = country
    payload = {
        "name": _text(client.name),
        "contact_type_ids": [CUSTOMER],
        "reference": client.reference,
        "tax_number": _text(client.tax_number),
        "credit_days": int(client.payment_terms_days or 0),
        "main_contact_person": person,
        "main_address": address,
    }
    if only_held:
        payload = {key: value for key, value in payload.items() if value not in ("", None)}
        for nested in ("main_contact_person", "main_address"):
            held = {key: value for key, value in payload.get(nested, {}).items() if value}
            if held:
                payload[nested] = held
            else:
                payload.pop(nested, None)
    return payload


def contact_body(payload: dict) -> dict:
    return {"contact": payload}


def is_our_contact(remote: dict, client) -> bool:
    """A contact carrying this client's PlanMan reference (compared exactly, as Sage's
    ``search`` also matches parts of names and references)."""
    return _text(remote.get("reference")) == client.reference


CONTACT_FIELD_LABELS = {"name": "Name", "reference": "Reference", "tax_number": "Tax number",
                        "credit_days": "Credit days", "email": "E-mail address", "telephone": "Phone",
                        "address_line_1": "Address line 1", "address_line_2": "Address line 2",
                        "city": "Town or city", "region": "Region", "postal_code": "Postcode",
                        "country_id": "Country"}


def _flat_contact(contact: dict) -> dict:
    flat = {key: contact.get(key) for key in ("name", "reference", "tax_number", "credit_days") if key in contact}
    for nested in ("main_contact_person", "main_address"):
        for key, value in (contact.get(nested) or {}).items():
            if key in CONTACT_FIELD_LABELS:
                flat[key] = value.get("id") if isinstance(value, dict) else value
    return flat


def changed_contact_fields(remote: dict, payload: dict) -> list[str]:
    """Labels of the fields ``payload`` changes on the Sage contact ``remote``."""
    before = _flat_contact(remote)
    return [CONTACT_FIELD_LABELS[key] for key, value in _flat_contact(payload).items()
            if str(before.get(key) or "").strip() != str(value or "").strip()]


# -- invoices ---------------------------------------------------------------------

NO_LEDGER_ACCOUNT = "Choose the Sage income account for invoice lines under Setup > Integrations > Sage."
NO_TAX_RATE = "Choose the Sage tax rate for the tax rate “{name}” under Setup > Integrations > Sage."
NO_NO_TAX_RATE = "Choose the Sage tax rate for lines without a tax rate under Setup > Integrations > Sage."


INCLUSIVE_REFUSED = (
    "Sage works out each line's amount as quantity × unit price before tax, but this invoice's amounts include "
    "tax. Change “Amounts are” to “Tax exclusive” (or “No tax”) to send it to Sage.")
DISCOUNT_REFUSED = (
    "Sage takes no discount on a line from PlanMan, and line {n} has a {percent}% discount. Remove the line's "
    "discount (or lower its unit price instead) to send it to Sage.")


def country_id(country) -> str | None:
    """Sage's country id (ISO 3166 alpha-2) for what the client form holds; None when
    it is not such a code. "UK", as people write it, is GB in ISO."""
    code = _text(country).upper()
    code = "GB" if code == "UK" else code
    return code if re.fullmatch(r"[A-Z]{2}", code) else None


def client_problems(client) -> list[str]:
    """What Sage cannot hold about this client as it stands, said before sending."""
    if _text(client.country) and country_id(client.country) is None:
        return [f"Sage takes the country as a two-letter code (such as GB or IE), so “{_text(client.country)}” "
                "is not sent: edit the client to use one."]
    return []


def currency_problem(currency: str, business_currency: str | None) -> str:
    """Why PlanMan does not send an invoice in ``currency`` to a business that works
    in ``business_currency``, or "" (also while the business's currency is not known).
    Sage books another currency only with an exchange rate, which PlanMan does not
    have: sent without one, the figures would be wrong in the ledger."""
    if not business_currency or currency == business_currency:
        return ""
    return (f"Your Sage business works in {business_currency}, and PlanMan sends invoices to Sage only in that "
            f"currency: Sage would need an exchange rate for {currency}, which PlanMan does not keep. Change the "
            "invoice's currency, or enter this invoice in Sage yourself.")


def invoice_problems(invoice, business_currency: str | None = None) -> list[str]:
    """What Sage cannot hold about this invoice as it stands, said before sending."""
    problems = [INCLUSIVE_REFUSED] if invoice.amounts_are == "inclusive" else []
    if currency_problem(invoice.currency, business_currency):
        problems.append(currency_problem(invoice.currency, business_currency))
    for n, line in enumerate(invoice.lines, start=1):
        if line.discount_percent:
            problems.append(DISCOUNT_REFUSED.format(n=n, percent=format(Decimal(line.discount_percent).normalize(),
                                                                          "f")))
    return problems


def invoice_payload(invoice, *, contact_id: str, settings: dict) -> dict:
    """A Sage sales invoice for a PlanMan invoice, created as a draft.

    ``settings`` is the connection's: ``ledger_account_id`` (an INCOME account),
    ``tax_rates`` (PlanMan tax rate id -> Sage tax rate id, as strings) and
    ``no_tax_rate_id`` (lines without a rate, and invoices of "no tax"). Each
    line carries PlanMan's own tax (Decimal, rounded per line as PlanMan
    shows it), so Sage holds the amounts the invoice says; what Sage cannot
    hold and missing mappings are refused here, before any call."""
    problems = invoice_problems(invoice)
    if problems:
        fields = {"amounts_are": [INCLUSIVE_REFUSED]} if invoice.amounts_are == "inclusive" else {}
        if any(line.discount_percent for line in invoice.lines):
            fields["lines"] = [p for p in problems if p != INCLUSIVE_REFUSED]
        raise ValidationFailed(problems, fields)
    ledger_account = settings.get("ledger_account_id")
    if not ledger_account:
        raise ValidationFailed([NO_LEDGER_ACCOUNT], {"settings": ["No income account chosen."]})
    mapped = settings.get("tax_rates") or {}
    lines = []
    for line in invoice.lines:
        with_tax = invoice.amounts_are != "no_tax" and line.tax_rate is not None
        if with_tax:
            tax_rate_id = mapped.get(str(line.tax_rate_id))
            if not tax_rate_id:
                raise ValidationFailed([NO_TAX_RATE.format(name=line.tax_rate.name)],
                                       {"lines": [f"Tax rate “{line.tax_rate.name}” has no Sage tax rate yet."]})
        else:
            tax_rate_id = settings.get("no_tax_rate_id")
            if not tax_rate_id:
                raise ValidationFailed([NO_NO_TAX_RATE], {"settings": ["No tax rate chosen for untaxed lines."]})
        totals = line_totals(LineInput(quantity=line.quantity, unit_price=line.unit_price,
                                       tax_percent=line.tax_rate.percent if with_tax else None), "exclusive")
        lines.append({
            "description": _text(line.description) or "-",
            "ledger_account_id": ledger_account,
            "quantity": decimal_string(line.quantity),
            "unit_price": decimal_string(line.unit_price),
            "tax_rate_id": tax_rate_id,
            "tax_amount": decimal_string(totals.tax),
        })
    return {
        "contact_id": contact_id,
        "invoice_number": invoice.number,
        "date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "reference": _text(invoice.reference),
        "currency_id": invoice.currency,
        "status_id": "DRAFT",  # PlanMan never posts an invoice: an accountant releases it in Sage
        "invoice_lines": lines,
    }


def update_payload(payload: dict, invoice, line_ids: dict | None, remote: dict) -> dict:
    """``payload`` as an update of the Sage invoice ``remote``. Sage merges lines by
    id on PUT (a line without one is added, unmentioned ones stay), so each line
    PlanMan sent before goes with its Sage id, and every other line Sage holds is
    removed: the invoice ends with exactly PlanMan's lines. ``status_id`` cannot
    change on PUT and is left out."""
    held = [str(item.get("id")) for item in remote.get("invoice_lines") or [] if item.get("id")]
    known = {str(key): str(value) for key, value in (line_ids or {}).items() if str(value) in held}
    lines, kept = [], set()
    for line, item in zip(invoice.lines, payload["invoice_lines"]):
        sage_id = known.get(str(line.id))
        lines.append({"id": sage_id, **item} if sage_id else dict(item))
        kept.add(sage_id)
    lines += [{"id": sage_id, "_destroy": True} for sage_id in held if sage_id not in kept]
    return {**{k: v for k, v in payload.items() if k != "status_id"}, "invoice_lines": lines}


def line_ids(invoice, answer: dict) -> dict[str, str]:
    """Sage's id of each PlanMan line, from Sage's answer (lines in the order sent,
    paired only where the descriptions agree)."""
    pairs = zip(invoice.lines, answer.get("invoice_lines") or [])
    return {str(line.id): str(item["id"]) for line, item in pairs
            if item.get("id") and _text(item.get("description")) == (_text(line.description) or "-")}


def invoice_body(payload: dict) -> dict:
    return {"sales_invoice": payload}


def invoice_status(invoice: dict) -> str:
    """A sales invoice's status id (``status`` is ``{id, displayed_as}``)."""
    status = invoice.get("status")
    if isinstance(status, dict):
        return str(status.get("id") or "")
    return str(status or invoice.get("status_id") or "")


def contact_id_of(invoice: dict) -> str:
    contact = invoice.get("contact")
    return str((contact or {}).get("id") if isinstance(contact, dict) else invoice.get("contact_id") or "")


def same_number(remote: dict, number: str) -> bool:
    return _text(remote.get("invoice_number")).casefold() == _text(number).casefold()


def locked_invoice_message(status: str) -> str:
    label = INVOICE_STATUS_LABELS.get(status, status.title())
    if status == "VOID":
        return ("This invoice was voided in Sage, so nothing was changed there. Send again makes a new draft; "
                "if Sage says its number is taken (the voided invoice may keep it), give it a new number here first.")
    return (f"This invoice is “{label}” in Sage: a payment is recorded against it, so Sage's figures depend on it "
            "and PlanMan does not change it. Make any correction in Sage (for example with a credit note).")


VOID_REASON = "Voided in PlanMan"


# -- errors -------------------------------------------------------------------------

def error_items(body) -> list[dict]:
    """Sage's error array as ``[{severity, code, message, source}]`` (also the
    single object and OAuth shapes, read defensively)."""
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        message = item.get("$message") or item.get("message") or item.get("error_description") or ""
        if not message and not item.get("$dataCode"):
            continue
        found.append({"severity": str(item.get("$severity") or "error"), "code": str(item.get("$dataCode") or ""),
                      "message": str(message), "source": str(item.get("$source") or "")})
    return found


def source_field(record_type: str, source: str) -> str:
    """The PlanMan field a ``$source`` names, or "" ("invoice_lines[1].tax_rate_id" -> "lines")."""
    names = SOURCE_FIELDS.get(record_type, {})
    parts = [p for p in re.split(r"[.\[\]/]+", source or "") if p and not p.isdigit()]
    for part in reversed(parts):
        if part in names:
            return names[part]
    return names.get(parts[0], "") if parts else ""


def field_errors(record_type: str, errors: list[dict]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in errors:
        field = source_field(record_type, error.get("source", ""))
        if field and error.get("message"):
            fields.setdefault(field, []).append(error["message"])
    return fields


def fingerprint(payload: dict) -> str:
    """Stable hash of what would be sent: differs exactly when the record changed."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def record_url(template: str, business_id: str, record_type: str, external_id: str) -> str | None:
    """A link to the record from ``SAGE_RECORD_URL`` (``{business_id}``, ``{kind}``:
    contact or sales_invoice, ``{id}``), or none: Sage documents no record URLs."""
    if not template:
        return None
    kind = "sales_invoice" if record_type == "invoice" else "contact"
    return template.format(business_id=business_id, kind=kind, id=external_id)
