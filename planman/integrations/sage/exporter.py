"""Pushing one record to Sage: dependencies first, lookup before create, then
create or update.

Sage has no idempotency keys (REFERENCE.md section 5), so exactly-once rests
on the push being recorded before any call (the shared PushJob), a lookup
before every create (contacts by PlanMan's client reference, which the
contact carries; invoices by number), and a create noted in Redis just before
it is sent (``CreateMarks``), so a record found after a lost answer counts as
PlanMan's own."""
from __future__ import annotations

from typing import Optional

from planman.extensions import db
from planman.integrations import links
from planman.integrations.base import PushResult
from planman.integrations.create_marks import CreateMarks
from planman.integrations.errors import (BlockedByDependency, RecordLocked, RemoteNotFound, ValidationFailed,
                                         client_not_sent)
from planman.integrations.records import at_one_revision
from planman.integrations.sage import mapping
from planman.integrations.sage.client import Refused, SageClient


def _invoice_result(remote: dict, outcome: str, digest: str, invoice=None, **extra) -> PushResult:
    return PushResult(str(remote.get("id") or ""), outcome, digest, remote_status=mapping.invoice_status(remote),
                      external_number=str(remote.get("invoice_number") or ""),
                      remote_total=mapping.money(remote.get("total_amount")),
                      line_ids=mapping.line_ids(invoice, remote) if invoice is not None else None, **extra)


def _update(api: SageClient, invoice, current: dict, payload: dict, line_ids, outcome: str, digest: str):
    update = mapping.update_payload(payload, invoice, line_ids, current)
    return _invoice_result(api.update_invoice(str(current["id"]), update), outcome, digest, invoice)


# -- contacts -----------------------------------------------------------------------

def export_client(api: SageClient, client, link, marks: CreateMarks) -> PushResult:
    only_held = bool(link is not None and link.linked_existing)
    payload, revision = at_one_revision(client, lambda: mapping.contact_payload(client, only_held=only_held))
    result = _export_client(api, client, link, payload, marks)
    result.record_revision = revision
    return result


def _export_client(api: SageClient, client, link, payload: dict, marks: CreateMarks) -> PushResult:
    digest = mapping.fingerprint(payload)
    if link is not None:
        try:
            updated = api.update_contact(link.external_id, payload)
            return PushResult(str(updated.get("id") or link.external_id), "updated", digest)
        except RemoteNotFound:
            pass  # deleted in Sage: look up, then create again

    # Lookup before create: the contact that carries this client's PlanMan reference.
    found = next((c for c in api.find_contacts(client.reference) if mapping.is_our_contact(c, client)), None)
    if found is not None:
        ours = marks.sent_before("client", client.id)  # our create, whose answer was lost
        update = payload if ours else mapping.contact_payload(client, only_held=True)
        changed = None if ours else mapping.changed_contact_fields(found, update)
        updated = api.update_contact(str(found["id"]), update)
        return PushResult(str(updated.get("id") or found["id"]), "created" if ours else "linked",
                          mapping.fingerprint(update), changed_fields=changed)

    marks.note("client", client.id)
    created = api.create_contact(payload)
    return PushResult(str(created.get("id") or ""), "created", digest)


# -- sales invoices -------------------------------------------------------------------

def export_invoice(api: SageClient, connection, invoice, marks: CreateMarks, *, user_id: Optional[int]) -> PushResult:
    """Create or update the Sage sales invoice for ``invoice``, its contact first."""
    wrong_currency = mapping.currency_problem(invoice.currency, (connection.settings or {}).get("sage_currency"))
    if wrong_currency:  # refused before anything is sent, the client included
        raise ValidationFailed([wrong_currency], {"currency": [wrong_currency]}, provider="Sage")
    client_link = links.find_link(connection, "client", invoice.client_id)
    if client_link is None:
        try:
            result = export_client(api, invoice.client, None, marks)
        except ValidationFailed as error:
            raise client_not_sent(error, "Sage") from error
        links.record_link(connection, "client", invoice.client_id, result, user_id)
        db.session.commit()  # the contact exists in Sage now: keep that even if the invoice fails
        client_link = links.find_link(connection, "client", invoice.client_id)

    settings = connection.settings or {}
    payload, revision = at_one_revision(invoice, lambda: mapping.invoice_payload(
        invoice, contact_id=client_link.external_id, settings=settings))
    digest = mapping.fingerprint(payload)
    link = links.find_link(connection, "invoice", invoice.id)
    try:
        result = _export_invoice(api, invoice, link, payload, digest, marks)
    except Refused as error:
        if error.about("contact_id"):
            raise BlockedByDependency(
                f"Sage refused this invoice because of its client “{invoice.client.name}” there "
                f"({' '.join(error.messages)}). Check the contact in Sage, then click Update on the client's page "
                "here; this invoice can be retried after that.", "client", invoice.client_id, "refused") from error
        raise
    if result.record_revision is None:
        result.record_revision = revision
    return result


def _export_invoice(api: SageClient, invoice, link, payload: dict, digest: str, marks: CreateMarks) -> PushResult:
    if link is not None and link.remote_status not in mapping.CLOSED_STATUSES:
        try:
            current = api.get_invoice(link.external_id)
        except RemoteNotFound:
            current = None  # deleted in Sage (a draft): look up, then create again
        if current is not None:
            status = mapping.invoice_status(current)
            if status in mapping.LOCKED_STATUSES or status == "VOID":
                raise RecordLocked(mapping.locked_invoice_message(status), status, link.external_id)
            return _update(api, invoice, current, payload, link.line_ids, "updated", digest)

    # Lookup before create: a live invoice with our number.
    same = [i for i in api.find_invoices(invoice.number)
            if mapping.same_number(i, invoice.number) and mapping.invoice_status(i) not in mapping.CLOSED_STATUSES]
    if same:
        found = same[0]
        if mapping.contact_id_of(found) != payload["contact_id"]:
            raise number_taken(invoice.number)
        ours = marks.sent_before("invoice", invoice.id)
        outcome = "created" if ours else "linked"
        status = mapping.invoice_status(found)
        if status != "DRAFT":
            # Posted in Sage already: linked as it stands, never overwritten by a lookup.
            # Revision 0 was never sent, so the panel offers Update (refused when paid).
            return _invoice_result(found, outcome, "", record_revision=0)
        return _update(api, invoice, api.get_invoice(str(found["id"])), payload, None, outcome, digest)

    marks.note("invoice", invoice.id)
    return _invoice_result(api.create_invoice(payload), "created", digest, invoice)


def void_invoice(api: SageClient, link) -> PushResult:
    """Void the invoice in Sage because PlanMan voided it (a draft is deleted, a
    posted one voided with a reason); paid or part-paid ones are refused."""
    try:
        current = api.get_invoice(link.external_id)
    except RemoteNotFound:
        return PushResult(link.external_id, "voided", link.fingerprint or "", remote_status="DELETED")
    status = mapping.invoice_status(current)
    if status in mapping.LOCKED_STATUSES:
        raise RecordLocked(mapping.locked_invoice_message(status) + " It stays as it is in Sage.", status,
                           link.external_id)
    if status not in mapping.CLOSED_STATUSES:
        api.void_invoice(link.external_id, mapping.VOID_REASON)
    closed = "DELETED" if status == "DRAFT" else "VOID"
    return PushResult(link.external_id, "voided", link.fingerprint or "", remote_status=closed,
                      external_number=str(current.get("invoice_number") or ""))


def number_taken(number: str) -> ValidationFailed:
    return ValidationFailed(
        [f"Sage already has an invoice numbered {number} for another client. Give this invoice a different "
         "number, or change the other one in Sage."],
        {"number": [f"{number} is already used by another invoice in Sage."]},
    )
