"""Pushing many records to Xero in batches of up to 50 (REFERENCE.md section 2).

The same rules as the single-record exporter, per batch instead of per record:
lookups before creates (one query per batch, not one per record), an
Idempotency-Key per batch, ``summarizeErrors=false`` so each element answers
for itself, and results handed back (``on_results``) as each write returns so
the caller can store external ids before the next call.

Each function returns nothing; per-record outcomes go to ``on_results`` as
``{record_id: PushResult | ValidationFailed | RecordLocked}``. Whole-batch
trouble (throttled, rate limited, 5xx, reconnect) propagates as the client's
typed errors, and the records not yet reported are the caller's to retry."""
from __future__ import annotations

import hashlib
import json
from typing import Callable

from planman.integrations.base import PushResult
from planman.integrations.errors import RecordLocked, TemporaryFailure, ValidationFailed
from planman.integrations.xero import mapping
from planman.integrations.xero.client import XeroClient, validation_messages
from planman.integrations.xero.exporter import (
    _element_or_fail,
    archived_contact,
    is_archived_contact_refusal,
    is_locked_refusal,
    is_ours,
    number_taken,
    update_payload,
)

BATCH_SIZE = 50  # Xero suggests about 50 elements a request
# Xero documents no URL limit; proxies commonly refuse query strings past 8 KB,
# so an unusually long OR-query (very long names) is split in two.
MAX_WHERE_CHARS = 6000

Results = dict[int, "PushResult | IntegrationError"]
OnResults = Callable[[Results], None]


def batch_key(intent: str, record_type: str, action: str, items: list[tuple[int, dict]]) -> str:
    """One Idempotency-Key per batch: the bulk send it belongs to (``intent``),
    its records and the exact content sent. A retry of the same batch in the
    same bulk send repeats it; a new bulk send, or any change, makes a new one."""
    digest = hashlib.sha256(json.dumps(
        [[record_id, mapping.fingerprint(element)] for record_id, element in items],
        separators=(",", ":")).encode()).hexdigest()
    return f"planman-bulk-{intent}-{record_type}-{action}-{len(items)}-{digest[:48]}"


def _answers(sent: int, elements: list[dict]) -> list[dict]:
    # Xero answers a batch element for element, in order; anything else cannot
    # be attributed safely, so the batch is retried (its lookups then find what was saved).
    if len(elements) != sent:
        raise TemporaryFailure(detail=f"batch of {sent} answered with {len(elements)} elements")
    return elements


def _where_chunks(clauses: list[str]) -> list[str]:
    chunks, current = [], []
    for clause in clauses:
        if current and len(" OR ".join(current + [clause])) > MAX_WHERE_CHARS:
            chunks.append(" OR ".join(current))
            current = []
        current.append(clause)
    if current:
        chunks.append(" OR ".join(current))
    return chunks


# -- contacts -------------------------------------------------------------------

def export_contacts(api: XeroClient, clients: list, links: dict, on_results: OnResults, *, intent: str) -> None:
    """Create or update the Contacts for ``clients`` (``links``: client id -> its link)."""
    updates: list[tuple[object, str, dict, str]] = []  # client, ContactID, payload, outcome
    creates: list[tuple[object, dict]] = []
    new = []
    for client in clients:
        link = links.get(client.id)
        if link is not None:
            updates.append((client, link.external_id, mapping.contact_payload(client), "updated"))
        else:
            new.append(client)

    if new:
        # Link before create, for the whole batch in one OR-query: PlanMan's
        # reference first (a contact we made before, perhaps on a lost
        # response), then the exact name (a contact the firm already had).
        clauses = [mapping.where_equals("ContactNumber", c.reference) for c in new]
        clauses += [mapping.where_equals("Name", mapping.contact_payload(c)["Name"]) for c in new]
        found = [contact for where in _where_chunks(clauses) for contact in api.find_contacts(where=where)]
        by_number = {c.get("ContactNumber"): c for c in found if c.get("ContactNumber")}
        taken: set[str] = set()
        for client in new:
            payload = mapping.contact_payload(client)
            contact = by_number.get(client.reference)
            if contact is not None and contact["ContactID"] not in taken:
                taken.add(contact["ContactID"])
                updates.append((client, contact["ContactID"], payload, "created"))  # ours: see export_client
                continue
            same_name = [c for c in found if c.get("ContactStatus", "ACTIVE") == "ACTIVE"
                         and c.get("Name") == payload["Name"] and c["ContactID"] not in taken]
            if same_name:
                contact = same_name[0]
                taken.add(contact["ContactID"])
                theirs = contact.get("ContactNumber") or ""
                # Never overwrite another system's reference on a contact we only matched by name.
                if theirs not in ("", client.reference):
                    payload = mapping.contact_payload(client, include_contact_number=False)
                updates.append((client, contact["ContactID"], payload, "linked"))
            else:
                creates.append((client, payload))

    if updates:
        elements = [{**payload, "ContactID": contact_id} for _, contact_id, payload, _ in updates]
        key = batch_key(intent, "client", "save", [(c.id, e) for (c, *_), e in zip(updates, elements)])
        answers = _answers(len(elements), api.save_contacts(elements, key))
        on_results({client.id: _contact_result(answer, payload, outcome, contact_id)
                    for (client, contact_id, payload, outcome), answer in zip(updates, answers)})
    if creates:
        payloads = [payload for _, payload in creates]
        key = batch_key(intent, "client", "create", [(c.id, p) for c, p in creates])
        answers = _answers(len(payloads), api.create_contacts(payloads, key))
        on_results({client.id: _contact_result(answer, payload, "created")
                    for (client, payload), answer in zip(creates, answers)})


def _contact_result(answer: dict, payload: dict, outcome: str, contact_id: str = ""):
    try:
        contact = _element_or_fail("client", [answer])
    except ValidationFailed as error:
        return error
    return PushResult(contact.get("ContactID") or contact_id, outcome, mapping.fingerprint(payload),
                      external_number=contact.get("ContactNumber", ""), remote_status=contact.get("ContactStatus", ""))


# -- invoices -------------------------------------------------------------------

def export_invoices(api: XeroClient, connection, invoices: list, *, contact_links: dict, invoice_links: dict,
                    invoice_url: Callable[[object], str], on_results: OnResults, intent: str) -> None:
    """Create or update ACCREC invoices; every invoice's client must already be linked."""
    by_id = {invoice.id: invoice for invoice in invoices}
    on_results = _blocked_by_archived_contacts(by_id, on_results)
    refused: Results = {}
    prepared = []  # invoice, payload, digest
    for invoice in invoices:
        try:
            payload = mapping.invoice_payload(invoice, contact_id=contact_links[invoice.client_id].external_id,
                                              settings=connection.settings or {}, url=invoice_url(invoice))
        except ValidationFailed as error:  # missing settings: refused before any call, as a single push is
            refused[invoice.id] = error
            continue
        prepared.append((invoice, payload, mapping.fingerprint(payload)))
    if refused:
        on_results(refused)

    updates: list[tuple[object, str, dict, str, str]] = []  # invoice, InvoiceID, payload, digest, outcome
    statuses: dict[str, str] = {}  # InvoiceID -> status in Xero now
    linked, new = [], []
    for item in prepared:
        link = invoice_links.get(item[0].id)
        (linked if link is not None and link.remote_status != "DELETED" else new).append(item)
    if linked:
        # One IDs query: which linked invoices still exist (a deleted or vanished
        # one is sent again as new, as a single push does) and their status.
        remote = {i["InvoiceID"]: i for i in api.find_invoices(ids=[invoice_links[inv.id].external_id
                                                                    for inv, _, _ in linked])}
        for inv, payload, digest in linked:
            external_id = invoice_links[inv.id].external_id
            current = remote.get(external_id)
            if current is None or current.get("Status") == "DELETED":
                new.append((inv, payload, digest))
            else:
                statuses[external_id] = current.get("Status", "")
                updates.append((inv, external_id, payload, digest, "updated"))

    creates = []
    if new:
        # Link before create: an invoice with our number that points back at
        # this PlanMan invoice is ours (a create whose answer was lost).
        by_number: dict[str, dict] = {}
        for found in api.find_invoices(numbers=[inv.number for inv, _, _ in new]):
            if found.get("Status") != "DELETED":
                by_number.setdefault(found.get("InvoiceNumber"), found)
        taken: Results = {}
        for inv, payload, digest in new:
            found = by_number.get(inv.number)
            if found is None:
                creates.append((inv, payload, digest))
            elif is_ours(found, invoice_url(inv)):
                statuses[found["InvoiceID"]] = found.get("Status", "")
                updates.append((inv, found["InvoiceID"], payload, digest, "created"))  # ours: see export_invoice
            else:
                taken[inv.id] = number_taken(inv.number)
        if taken:
            on_results(taken)

    if updates:
        elements = [{**update_payload(payload), "InvoiceID": invoice_id} for _, invoice_id, payload, _, _ in updates]
        key = batch_key(intent, "invoice", "save", [(inv.id, e) for (inv, *_), e in zip(updates, elements)])
        answers = _answers(len(elements), api.save_invoices(elements, key))
        on_results({inv.id: _updated_result(answer, invoice_id, digest, outcome, statuses)
                    for (inv, invoice_id, _, digest, outcome), answer in zip(updates, answers)})
    if creates:
        payloads = [payload for _, payload, _ in creates]
        key = batch_key(intent, "invoice", "create", [(inv.id, p) for inv, p, _ in creates])
        answers = _answers(len(payloads), api.create_invoices(payloads, key))
        on_results({inv.id: _created_result(answer, digest) for (inv, _, digest), answer in zip(creates, answers)})


def _blocked_by_archived_contacts(invoices: dict, on_results: OnResults) -> OnResults:
    """An invoice refused because its contact is archived is blocked, as in a single push."""
    def report(results: Results) -> None:
        on_results({record_id: archived_contact(invoices[record_id])
                    if isinstance(result, ValidationFailed) and is_archived_contact_refusal(result.messages) else result
                    for record_id, result in results.items()})
    return report


def _updated_result(answer: dict, invoice_id: str, digest: str, outcome: str, statuses: dict):
    messages = validation_messages(answer)
    if messages and is_locked_refusal(messages):
        status = statuses.get(invoice_id, "")
        return RecordLocked(mapping.locked_invoice_message(status), status, invoice_id)
    try:
        updated = _element_or_fail("invoice", [answer])
    except ValidationFailed as error:
        return error
    return PushResult(updated.get("InvoiceID", invoice_id), outcome, digest,
                      external_number=updated.get("InvoiceNumber", ""), remote_status=updated.get("Status", ""))


def _created_result(answer: dict, digest: str):
    try:
        created = _element_or_fail("invoice", [answer])
    except ValidationFailed as error:
        return error
    return PushResult(created["InvoiceID"], "created", digest,
                      external_number=created.get("InvoiceNumber", ""), remote_status=created.get("Status", ""))
