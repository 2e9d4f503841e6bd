"""Pushing one record to Xero: dependencies first, link before create, then
create or update. Every create is preceded by a lookup and carries an
Idempotency-Key, so a retry after a lost response finds instead of duplicating."""
from __future__ import annotations

from typing import Optional

from planman.extensions import db
from planman.integrations import links
from planman.integrations.base import PushResult
from planman.integrations.errors import (BlockedByDependency, RecordLocked, RemoteNotFound, ValidationFailed,
                                         client_not_sent)
from planman.integrations.records import at_one_revision
from planman.integrations.xero import mapping
from planman.integrations.xero.client import XeroClient, validation_messages


def _element_or_fail(record_type: str, elements: list[dict]) -> dict:
    """The single element of a batch answer, or Xero's own words why it failed."""
    if not elements:
        raise ValidationFailed(["Xero returned no record."])
    element = elements[0]
    if element.get("HasValidationErrors") or element.get("HasErrors") or element.get("ValidationErrors"):
        messages = mapping.plain_refusal(validation_messages(element) or ["Xero refused the record."])
        raise ValidationFailed(messages, mapping.field_errors(record_type, messages))
    return element


def _refuse(record_type: str, error: ValidationFailed) -> ValidationFailed:
    """Re-raise a refusal with the PlanMan fields it names."""
    plain = mapping.plain_refusal(error.messages)
    if plain != error.messages:
        error = ValidationFailed(plain, error.field_errors)
    if not error.field_errors:
        error.field_errors = mapping.field_errors(record_type, error.messages)
    return error


def export_client(api: XeroClient, client, link, *, intent: str) -> PushResult:
    """Create or update the Contact for ``client`` (``link``: its current link or None)."""
    # A contact PlanMan did not create keeps whatever PlanMan does not hold.
    only_held = bool(link is not None and link.linked_existing)
    payload, revision = at_one_revision(client, lambda: mapping.contact_payload(client, only_held=only_held))
    return _for_revision(revision, _export_client(api, client, link, payload, intent))


def _for_revision(revision: int, result: PushResult) -> PushResult:
    result.record_revision = revision  # the revision of what was built and sent, read with it
    return result


def _export_client(api: XeroClient, client, link, payload: dict, intent: str) -> PushResult:
    digest = mapping.fingerprint(payload)
    key = lambda action: mapping.idempotency_key(intent, "client", client.id, action, digest)  # noqa: E731

    if link is not None:
        try:
            contact = api.update_contact(link.external_id, payload, key("update"))
        except ValidationFailed as error:
            raise _refuse("client", error)
        return PushResult(contact.get("ContactID", link.external_id), "updated", digest,
                          external_number=contact.get("ContactNumber", ""), remote_status=contact.get("ContactStatus", ""))

    # Link before create: PlanMan's reference first (a contact we made before,
    # perhaps on a lost response: "created"), then the name (one the firm already had).
    contact, outcome = find_contact(api, client, payload["Name"])
    if contact is not None:
        update, changed = link_payload(client, contact, outcome)
        try:
            contact = api.update_contact(contact["ContactID"], update, key("link"))
        except ValidationFailed as error:
            raise _refuse("client", error)
        return PushResult(contact["ContactID"], outcome, mapping.fingerprint(update),
                          external_number=contact.get("ContactNumber", ""), remote_status=contact.get("ContactStatus", ""),
                          changed_fields=changed)

    try:
        created = _element_or_fail("client", api.create_contacts([payload], key("create")))
    except ValidationFailed as error:
        raise _refuse("client", error)
    return PushResult(created["ContactID"], "created", digest,
                      external_number=created.get("ContactNumber", ""), remote_status=created.get("ContactStatus", ""))


def link_payload(client, contact: dict, outcome: str) -> tuple[dict, Optional[list[str]]]:
    """What to send to a contact found before create, and (for one PlanMan did
    not create) the fields that changes there. Ours, found by ContactNumber,
    gets the whole record; another's gets only what PlanMan holds (empty
    strings would clear what Xero has), and never loses its own ContactNumber."""
    if outcome != "linked":
        return mapping.contact_payload(client), None
    theirs = contact.get("ContactNumber") or ""
    update = mapping.contact_payload(client, include_contact_number=theirs in ("", client.reference), only_held=True)
    return update, mapping.changed_contact_fields(contact, update)


def find_contact(api: XeroClient, client, name: str) -> tuple[Optional[dict], str]:
    """The Xero contact for a client not linked yet, and how it was found:
    ("created", ours by ContactNumber: PlanMan made it, perhaps on a create whose
    answer was lost) or ("linked", an active contact of the
    same name, ignoring case). Names a ``where`` filter cannot hold (quotes) are
    found through ``searchTerm`` and compared here, so any name works."""
    if mapping.filterable(client.reference):
        by_number = api.find_contacts(where=mapping.where_equals("ContactNumber", client.reference))
    else:
        by_number = [c for c in api.search_contacts(client.reference) if c.get("ContactNumber") == client.reference]
    if by_number:
        return by_number[0], "created"
    return mapping.active_contact_named(api.search_contacts(name), name), "linked"


def export_invoice(api: XeroClient, connection, invoice, *, invoice_url: str, user_id: Optional[int],
                   intent: str) -> PushResult:
    """Create or update the ACCREC invoice for ``invoice``, pushing its client first if needed."""
    contact_link = links.find_link(connection, "client", invoice.client_id)
    if contact_link is None:
        try:
            result = export_client(api, invoice.client, None, intent=intent)  # keyed to this invoice's push
        except ValidationFailed as error:
            raise client_not_sent(error, "Xero") from error
        links.record_link(connection, "client", invoice.client_id, result, user_id)
        # The contact exists in Xero now: keep that fact even if the invoice fails.
        db.session.commit()
        contact_link = links.find_link(connection, "client", invoice.client_id)

    contact_id, settings = contact_link.external_id, connection.settings or {}
    link = links.find_link(connection, "invoice", invoice.id)
    # Xero's own line ids on an update, so it keeps its lines (and what a bookkeeper added to them).
    line_ids = link.line_ids if link is not None and link.remote_status != "DELETED" else None
    payload, revision = at_one_revision(invoice, lambda: mapping.invoice_payload(
        invoice, contact_id=contact_id, settings=settings, url=invoice_url, line_item_ids=line_ids))
    try:
        result = _export_invoice(api, invoice, link, payload, invoice_url, intent)
    except ValidationFailed as error:
        if is_archived_contact_refusal(error.messages):
            raise archived_contact(invoice) from error
        raise
    return _for_revision(revision, result)


def _export_invoice(api: XeroClient, invoice, link, payload: dict, invoice_url: str, intent: str) -> PushResult:
    if link is not None and link.remote_status != "DELETED":
        digest = mapping.fingerprint(payload)
        key = mapping.idempotency_key(intent, "invoice", invoice.id, "update", digest)
        try:
            return _update_invoice(api, link.external_id, payload, key, "updated", digest, invoice=invoice)
        except RemoteNotFound:
            payload = mapping.without_line_ids(payload)  # gone from Xero altogether: send it again as new

    digest = mapping.fingerprint(payload)
    key = lambda action: mapping.idempotency_key(intent, "invoice", invoice.id, action, digest)  # noqa: E731

    # Link before create: an invoice with our number that points back at this
    # PlanMan invoice is ours (a create whose answer was lost).
    same_number = [i for i in api.find_invoices(numbers=[invoice.number]) if i.get("Status") != "DELETED"]
    if same_number:
        found = same_number[0]
        if not is_ours(found, invoice_url):
            raise number_taken(invoice.number)
        # Made by PlanMan (our number and our link back), not someone else's: "created".
        return _update_invoice(api, found["InvoiceID"], payload, key("link"), "created", digest, invoice=invoice)

    try:
        created = _element_or_fail("invoice", api.create_invoices([payload], key("create")))
    except ValidationFailed as error:
        raise _refuse("invoice", error)
    return PushResult(created["InvoiceID"], "created", digest,
                      external_number=created.get("InvoiceNumber", ""), remote_status=created.get("Status", ""),
                      line_ids=mapping.line_item_ids(invoice, created), remote_total=mapping.invoice_total(created))


ARCHIVED_CONTACT_NOTICE = (
    "This contact is archived in Xero, so Xero will not take new invoices for it. Restore it in Xero "
    "(Contacts > Archived: select it, then Restore), then click Update here.")


def archived_contact(invoice) -> BlockedByDependency:
    return BlockedByDependency(
        f"Xero refused this invoice because its contact “{invoice.client.name}” is archived in Xero. "
        "Restore the contact in Xero (Contacts > Archived: select it, then Restore), then click Update on the "
        "client's page here; this invoice can be retried after that.", "client", invoice.client_id, "ARCHIVED")


def is_archived_contact_refusal(messages: list[str]) -> bool:
    """Xero's words for an invoice whose contact is archived."""
    return any("contact" in message.lower() and "archived" in message.lower() for message in messages)


def void_invoice(api: XeroClient, link, *, intent: str) -> PushResult:
    """Close in Xero an invoice PlanMan voided: a draft or submitted one is
    deleted, an approved one voided, one with payments refused (Xero does not
    void an invoice with payments applied: they must be removed first)."""
    try:
        current = api.get_invoice(link.external_id)
    except RemoteNotFound:
        return PushResult(link.external_id, "voided", link.fingerprint, remote_status="DELETED")
    status = current.get("Status", "")
    if status in ("DELETED", "VOIDED"):
        return PushResult(link.external_id, "voided", link.fingerprint, remote_status=status)
    if status == "PAID" or float(current.get("AmountPaid") or 0) > 0:
        raise RecordLocked(
            "This invoice has payments in Xero, and Xero does not void an invoice with payments. "
            "Remove the payments in Xero first (or credit it there), then click Void in Xero again.", status,
            link.external_id)
    target = "DELETED" if status in mapping.EDITABLE_INVOICE_STATUSES else "VOIDED"
    key = mapping.idempotency_key(intent, "invoice", link.record_id, target.lower(), link.external_id)
    result = _update_invoice(api, link.external_id, {"InvoiceID": link.external_id, "Status": target}, key,
                             "voided", link.fingerprint, keep_status=True)
    return result


def is_locked_refusal(messages: list[str]) -> bool:
    """Xero's words for "this invoice can no longer be changed" (approved, paid, voided)."""
    return any("not of valid status" in message.lower() for message in messages)


def is_ours(remote_invoice: dict, invoice_url: str) -> bool:
    """An invoice with our number is ours only if it links back to this PlanMan invoice."""
    return remote_invoice.get("Url") == invoice_url


def number_taken(number: str) -> ValidationFailed:
    return ValidationFailed(
        [f"Xero already has an invoice numbered {number} that was not sent from this PlanMan invoice. "
         "Give this invoice a different number, or remove the other one in Xero."],
        {"number": [f"{number} is already used by another invoice in Xero."]},
    )


def update_payload(payload: dict) -> dict:
    """What an update sends: everything but the status. Only the first Send sets
    the status chosen in settings; after that Xero's status is the bookkeeper's
    (an invoice submitted for approval in Xero stays submitted)."""
    return {field: value for field, value in payload.items() if field != "Status"}


def _update_invoice(api: XeroClient, invoice_id: str, payload: dict, key: str, outcome: str, digest: str,
                    *, invoice=None, keep_status: bool = False) -> PushResult:
    try:
        updated = api.update_invoice(invoice_id, payload if keep_status else update_payload(payload), key)
    except ValidationFailed as error:
        if is_locked_refusal(error.messages):
            status = api.get_invoice(invoice_id).get("Status", "")
            raise RecordLocked(mapping.locked_invoice_message(status), status, invoice_id) from error
        raise _refuse("invoice", error)
    if updated.get("HasValidationErrors") or updated.get("ValidationErrors"):
        _element_or_fail("invoice", [updated])
    return PushResult(updated.get("InvoiceID", invoice_id), outcome, digest,
                      external_number=updated.get("InvoiceNumber", ""), remote_status=updated.get("Status", ""),
                      line_ids=mapping.line_item_ids(invoice, updated) if invoice is not None else None,
                      remote_total=mapping.invoice_total(updated))
