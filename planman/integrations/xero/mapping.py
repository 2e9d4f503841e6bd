"""Pure functions: PlanMan records -> Xero payloads, and Xero's words -> ours.

No database, no HTTP: everything a mapper needs is passed in, so each can be
tested on plain objects and reused by single and bulk pushes alike."""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from urllib.parse import quote

from planman.integrations.errors import ValidationFailed

LINE_AMOUNT_TYPES = {"exclusive": "Exclusive", "inclusive": "Inclusive", "no_tax": "NoTax"}

# Xero's invoice statuses, as Xero's own screens name them.
INVOICE_STATUS_LABELS = {
    "DRAFT": "Draft",
    "SUBMITTED": "Awaiting approval",
    "AUTHORISED": "Awaiting payment",
    "PAID": "Paid",
    "VOIDED": "Voided",
    "DELETED": "Deleted",
}
EDITABLE_INVOICE_STATUSES = {"DRAFT", "SUBMITTED"}
PUSHABLE_INVOICE_STATUSES = {"DRAFT": "Draft", "SUBMITTED": "Awaiting approval", "AUTHORISED": "Awaiting payment"}

# Which PlanMan form field a Xero validation message is about, by a phrase in it.
_FIELD_HINTS = {
    "client": [
        ("contact name", "name"),
        ("email address", "email"),
        ("tax number", "tax_number"),
        ("phone", "phone"),
        ("postal code", "postcode"),
        ("country", "country"),
    ],
    "invoice": [
        ("invoice #", "number"),
        ("invoicenumber", "number"),
        ("invoice number", "number"),
        ("due date", "due_date"),
        ("currency", "currency"),
        ("reference", "reference"),
        ("description", "lines"),
        ("taxtype", "lines"),
        ("tax type", "lines"),
        ("account code", "lines"),
        ("contact", "client"),
    ],
}


def _text(value: str | None) -> str:
    return (value or "").strip()


def contact_payload(client, *, include_contact_number: bool = True, only_held: bool = False) -> dict:
    """A Xero Contact for a PlanMan client. Empty strings clear a field on update.

    ``only_held``: for a contact PlanMan did not create, send only what PlanMan
    holds, so nothing a bookkeeper typed into Xero is cleared: no empty fields,
    no phone without a number, no address without any of its fields."""
    address = {
        "AddressType": "STREET",
        "AddressLine1": _text(client.address_line1),
        "AddressLine2": _text(client.address_line2),
        "City": _text(client.city),
        "Region": _text(client.region),
        "PostalCode": _text(client.postcode),
        "Country": _text(client.country),
    }
    payload = {
        "Name": _text(client.name),
        "FirstName": _text(client.first_name),
        "LastName": _text(client.last_name),
        "EmailAddress": _text(client.email),
        "TaxNumber": _text(client.tax_number),
        "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": _text(client.phone)}],
        "Addresses": [address],
    }
    if only_held:
        payload = {key: value for key, value in payload.items() if value}
        if not _text(client.phone):
            del payload["Phones"]
        if not any(value for key, value in address.items() if key != "AddressType"):
            del payload["Addresses"]
    if include_contact_number:
        # PlanMan's stable reference: how a retry finds a contact it created.
        payload["ContactNumber"] = client.reference
    return payload


# What a person calls each Contact field PlanMan sends (for "changed in Xero").
CONTACT_FIELD_LABELS = {
    "Name": "Name", "FirstName": "First name", "LastName": "Last name", "EmailAddress": "E-mail address",
    "TaxNumber": "Tax number", "ContactNumber": "Contact number", "PhoneNumber": "Phone",
    "AddressLine1": "Address line 1", "AddressLine2": "Address line 2", "City": "Town or city",
    "Region": "Region", "PostalCode": "Postcode", "Country": "Country",
}


def _contact_fields(contact: dict) -> dict[str, str]:
    """A Contact's fields as PlanMan sends them, flattened (DEFAULT phone, STREET address)."""
    fields = {key: _text(contact.get(key)) for key in ("Name", "FirstName", "LastName", "EmailAddress",
                                                        "TaxNumber", "ContactNumber") if key in contact}
    for phone in contact.get("Phones") or []:
        if phone.get("PhoneType") == "DEFAULT" and "PhoneNumber" in phone:
            fields["PhoneNumber"] = _text(phone["PhoneNumber"])
    for address in contact.get("Addresses") or []:
        if address.get("AddressType") == "STREET":
            fields.update({key: _text(value) for key, value in address.items()
                           if key in CONTACT_FIELD_LABELS and isinstance(value, str)})
    return fields


def changed_contact_fields(existing: dict, payload: dict) -> list[str]:
    """The labels of the fields ``payload`` changes on the Xero contact ``existing``."""
    before = _contact_fields(existing)
    return [CONTACT_FIELD_LABELS[key] for key, value in _contact_fields(payload).items()
            if before.get(key, "") != value]


def _number(value: Decimal) -> float | int:
    value = Decimal(value).normalize()
    return int(value) if value == value.to_integral_value() else float(value)


def invoice_payload(invoice, *, contact_id: str, settings: dict, url: str,
                    line_item_ids: dict | None = None) -> dict:
    """A Xero ACCREC invoice for a PlanMan invoice.

    ``settings`` is the connection's: ``sales_account_code``, ``tax_types``
    (PlanMan tax rate id -> Xero TaxType, as strings), ``no_tax_type`` and
    ``invoice_status``. Missing mappings are refused here, before any call.
    ``line_item_ids`` (PlanMan line id -> Xero LineItemID, from the last push)
    makes an update keep Xero's lines: a line sent with its LineItemID is
    changed in place, a new line goes without one, a line left out is removed."""
    line_item_ids = line_item_ids or {}
    account_code = settings.get("sales_account_code")
    if not account_code:
        raise ValidationFailed(
            ["Choose the Xero sales account for invoices under Setup > Integrations > Xero."],
            {"settings": ["No sales account chosen."]},
        )
    tax_types = settings.get("tax_types") or {}
    lines = []
    for line in invoice.lines:
        known = line_item_ids and line_item_ids.get(str(line.id))
        item = {"LineItemID": known} if known else {}
        item |= {
            "Description": _text(line.description),
            "Quantity": _number(line.quantity),
            "UnitAmount": _number(line.unit_price),
            "AccountCode": account_code,
        }
        if line.discount_percent:
            item["DiscountRate"] = _number(line.discount_percent)
        if invoice.amounts_are != "no_tax":
            if line.tax_rate_id is None:
                item["TaxType"] = settings.get("no_tax_type") or "NONE"
            else:
                tax_type = tax_types.get(str(line.tax_rate_id))
                if not tax_type:
                    name = line.tax_rate.name if line.tax_rate else f"#{line.tax_rate_id}"
                    raise ValidationFailed(
                        [f"Choose the Xero tax type for the tax rate “{name}” under Setup > Integrations > Xero."],
                        {"lines": [f"Tax rate “{name}” has no Xero tax type yet."]},
                    )
                item["TaxType"] = tax_type
        lines.append(item)
    payload = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "InvoiceNumber": invoice.number,
        "Reference": _text(invoice.reference),
        "Date": invoice.issue_date.isoformat(),
        "DueDate": invoice.due_date.isoformat(),
        "CurrencyCode": invoice.currency,
        "LineAmountTypes": LINE_AMOUNT_TYPES[invoice.amounts_are],
        "Status": settings.get("invoice_status") or "DRAFT",
        "Url": url,
        "LineItems": lines,
    }
    return payload


def without_line_ids(payload: dict) -> dict:
    """The payload as a new invoice: Xero's line ids of a vanished invoice mean nothing."""
    return {**payload, "LineItems": [{k: v for k, v in item.items() if k != "LineItemID"}
                                     for item in payload.get("LineItems", [])]}


def line_item_ids(invoice, answer: dict) -> dict[str, str]:
    """Xero's LineItemID of each PlanMan line, from Xero's answer to a push.

    Xero answers with the lines in the order sent; a line is paired with its
    answer only where the descriptions agree, so an answer that differs (a
    line Xero added) never gives a PlanMan line someone else's id."""
    pairs = zip(invoice.lines, answer.get("LineItems") or [])
    return {str(line.id): item["LineItemID"] for line, item in pairs
            if item.get("LineItemID") and _text(item.get("Description")) == _text(line.description)}


def invoice_total(answer: dict) -> Decimal | None:
    """The Total Xero worked out for an invoice it answered with, if it gave one."""
    try:
        return Decimal(str(answer["Total"])).quantize(Decimal("0.01"))
    except (KeyError, ArithmeticError, ValueError):
        return None


def fingerprint(payload: dict) -> str:
    """Stable hash of what would be sent: differs exactly when the record changed."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def idempotency_key(intent: str, record_type: str, record_id: int, action: str, payload_fingerprint: str) -> str:
    """One key per intended write: ``intent`` names the push a person asked for
    (every retry of that push repeats it, every new click gets a new one), and
    the content is part of it because Xero refuses a reused key with a
    different body (an edit between two attempts). At most 128 characters."""
    return f"planman-{intent}-{record_type}-{record_id}-{action}-{payload_fingerprint[:24]}"


def filterable(value: str) -> bool:
    """Whether a ``where`` string literal can hold ``value``. Xero's filter
    parser has no working escape for a double quote (REFERENCE.md section 11),
    and a backslash's meaning is undocumented: such values are looked up another way."""
    return '"' not in value and "\\" not in value


def where_equals(field: str, value: str) -> str:
    """A Xero ``where`` clause matching one value (only for ``filterable`` values)."""
    if not filterable(value):
        raise ValueError(f"{field} value cannot be written in a Xero where filter")
    return f'{field}=="{value}"'


def same_name(a: str | None, b: str | None) -> bool:
    """Contact names compare as Xero's uniqueness rule does: without case
    (REFERENCE.md section 11), and ignoring surrounding spaces."""
    return _text(a).casefold() == _text(b).casefold()


def is_name_taken(messages: list[str]) -> bool:
    """Xero's refusal of a contact whose name an active contact already has."""
    return any("is already assigned to another contact" in message for message in messages)


def active_contact_named(contacts: list[dict], name: str, taken: set[str] = frozenset()) -> dict | None:
    """The active contact among ``contacts`` whose name is ``name`` (ignoring case), not already taken."""
    return next((c for c in contacts if c.get("ContactStatus", "ACTIVE") == "ACTIVE"
                 and same_name(c.get("Name"), name) and c.get("ContactID") not in taken), None)


CURRENCY_NOT_ENABLED = (
    "Xero's organisation does not take invoices in {currency}. Add {currency} under Settings > Currencies in Xero "
    "(then click Refresh from Xero under Setup > Integrations > Xero), or change the invoice's currency.")


def currency_not_enabled(currency: str, enabled: list[str] | None) -> str:
    """Why Xero will refuse an invoice in ``currency``, or "" (also when the
    organisation's currencies are not known yet)."""
    if not enabled or currency in enabled:
        return ""
    return CURRENCY_NOT_ENABLED.format(currency=currency)


def plain_refusal(messages: list[str]) -> list[str]:
    """Xero's refusal, led by plain words where Xero's own are about the
    invoice's currency (Xero refuses currencies the organisation has not enabled)."""
    if messages and messages[0] == CURRENCY_REFUSAL:
        return messages  # already said plainly (a refusal passes through more than one layer)
    about_currency = [m for m in messages if "currency" in m.lower() and "rate" not in m.lower()]
    if not about_currency:
        return messages
    return [CURRENCY_REFUSAL] + [f"Xero said: {m}" for m in messages]


CURRENCY_REFUSAL = (
    "Xero refused this invoice's currency: the organisation has probably not enabled it. Add it under "
    "Settings > Currencies in Xero (then click Refresh from Xero under Setup > Integrations > Xero), "
    "or change the invoice's currency.")


def field_errors(record_type: str, messages: list[str]) -> dict[str, list[str]]:
    """Xero's messages keyed by the PlanMan field they are about, where one is named."""
    errors: dict[str, list[str]] = {}
    for message in messages:
        lowered = message.lower()
        for phrase, field in _FIELD_HINTS.get(record_type, []):
            if phrase in lowered:
                errors.setdefault(field, []).append(message)
                break
    return errors


def locked_invoice_message(status: str) -> str:
    label = INVOICE_STATUS_LABELS.get(status, status.title())
    if status == "DELETED":
        return "This invoice was deleted in Xero. You can send it again as a new draft."
    if status == "PAID":
        why = "it has been paid"
    elif status == "VOIDED":
        why = "it has been voided"
    else:
        why = "it has been approved"
    return (
        f"This invoice is “{label}” in Xero, and Xero does not allow changes once {why}. "
        "Make any correction in Xero (for example with a credit note)."
    )


def deep_link(app_url: str, short_code: str, record_type: str, external_id: str) -> str:
    """A link that opens the record in Xero, in the right organisation (REFERENCE.md section 8)."""
    if record_type == "invoice":
        target = f"/AccountsReceivable/View.aspx?InvoiceID={external_id}"
    else:
        target = f"/Contacts/View/{external_id}"
    return (
        f"{app_url.rstrip('/')}/organisationlogin/default.aspx?shortcode={quote(short_code or '')}"
        f"&redirecturl={quote(target, safe='')}"
    )


# -- payments (planman/integrations/xero/payments.py) ----------------------------

NO_PAYMENT_ACCOUNT = ("Not recorded in Xero: choose the account for payments received in Xero's settings "
                      "(Setup > Integrations > Xero), a bank account or a clearing account such as “Stripe clearing”.")
PAYMENT_INVOICE_GONE = "Not recorded in Xero: the invoice no longer exists in Xero."
_PAYMENT_REFUSALS = {
    "DRAFT": ("Not recorded in Xero: the invoice is still a draft there, and Xero takes payments only on approved "
              "invoices. Approve it in Xero, or send invoices as “Awaiting payment” (Xero's settings); "
              "then reverse this payment here and record it again, or record it in Xero by hand."),
    "SUBMITTED": ("Not recorded in Xero: the invoice is awaiting approval there, and Xero takes payments only on "
                  "approved invoices. Approve it in Xero, or send invoices as “Awaiting payment” (Xero's settings); "
                  "then reverse this payment here and record it again, or record it in Xero by hand."),
    "PAID": "Not recorded in Xero: the invoice is already paid there, so this payment was not added twice.",
    "VOIDED": "Not recorded in Xero: the invoice is voided there.",
    "DELETED": PAYMENT_INVOICE_GONE,
}


def payment_reference(payment) -> str:
    """What PlanMan finds its payment by in Xero: the payment provider's id (a Stripe
    payment), else PlanMan's own payment id. Neither can hold a double quote (where=)."""
    if payment.provider and payment.provider_payment_id:
        return payment.provider_payment_id
    return f"PlanMan payment {payment.id}"


def payment_payload(payment, invoice_id: str, account_code: str) -> dict:
    return {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": account_code},
            "Date": payment.paid_on.isoformat(), "Amount": float(payment.amount),
            "Reference": payment_reference(payment)}


def our_payment(found: list[dict], invoice_id: str) -> dict | None:
    """The live payment, among those with our reference, that is on this invoice."""
    return next((p for p in found if p.get("Status") != "DELETED"
                 and (p.get("Invoice") or {}).get("InvoiceID", "").lower() == invoice_id.lower()), None)


def payment_refusal(invoice_status: str) -> str | None:
    """Why Xero would not take a payment on an invoice with this status, or None."""
    return _PAYMENT_REFUSALS.get(invoice_status)


def payment_accounts(accounts: list[dict]) -> list[dict]:
    """The accounts Xero takes payments into: bank accounts and those with payments enabled."""
    return [{"code": a["Code"], "name": a.get("Name", "")} for a in accounts
            if a.get("Code") and a.get("Status", "ACTIVE") == "ACTIVE"
            and (a.get("Type") == "BANK" or a.get("EnablePaymentsToAccount"))]
