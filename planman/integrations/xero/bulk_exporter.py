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
from planman.integrations.xero.client import QueryRefused, XeroClient, validation_messages
from planman.integrations.xero.exporter import (
    _element_or_fail,
    archived_contact,
    find_contact,
    is_archived_contact_refusal,
    is_locked_refusal,
    is_ours,
    link_payload,
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
        raise TemporaryFailure(detail=f"batch of {sent} answered with {len(elements)} elements", provider="Xero")
    return elements


def _where_chunks(clients: list, clauses: dict[int, list[str]]) -> list[tuple[list, str]]:
    """The clients in groups whose OR-query stays under MAX_WHERE_CHARS, each with its query."""
    chunks, current, parts = [], [], []
    for client in clients:
        if current and len(" OR ".join(parts + clauses[client.id])) > MAX_WHERE_CHARS:
            chunks.append((current, " OR ".join(parts)))
            current, parts = [], []
        current.append(client)
        parts += clauses[client.id]
    if current:
        chunks.append((current, " OR ".join(parts)))
    return chunks


def _look_up_contacts(api: XeroClient, clients: list) -> tuple[list[dict], Results]:
    """Link before create, for a batch: one OR-query by PlanMan's reference (a
    contact we made before, perhaps on a lost response) and name (one the firm
    already had) for every client a filter can express; the others, and the
    clients of a query Xero refuses, are looked up one by one, so one name fails
    nobody's lookup but its own. Returns the contacts found and the refusals."""
    clauses = {}
    alone = []
    for client in clients:
        name = mapping.contact_payload(client)["Name"]
        if mapping.filterable(client.reference) and mapping.filterable(name):
            clauses[client.id] = [mapping.where_equals("ContactNumber", client.reference),
                                  mapping.where_equals("Name", name)]
        else:
            alone.append(client)
    found: list[dict] = []
    for chunk, where in _where_chunks([c for c in clients if c.id in clauses], clauses):
        try:
            found += api.find_contacts(where=where)
        except QueryRefused:
            alone += chunk
    more, refused = _look_up_each(api, alone)
    return found + more, refused


def _look_up_each(api: XeroClient, clients: list) -> tuple[list[dict], Results]:
    """One lookup per client (as a single push does); a refused lookup fails its client alone."""
    found, refused = [], {}
    for client in clients:
        try:
            contact, _ = find_contact(api, client, mapping.contact_payload(client)["Name"])
        except QueryRefused as error:
            refused[client.id] = error
            continue
        if contact is not None:
            found.append(contact)
    return found, refused


# -- contacts -------------------------------------------------------------------

def export_contacts(api: XeroClient, clients: list, links: dict, on_results: OnResults, *, intent: str) -> None:
    """Create or update the Contacts for ``clients`` (``links``: client id -> its link)."""
    updates: list[tuple] = []  # client, ContactID, payload, outcome, fields changed (or None)
    new = []
    for client in clients:
        link = links.get(client.id)
        if link is not None:
            # A contact PlanMan did not create keeps whatever PlanMan does not hold.
            payload = mapping.contact_payload(client, only_held=link.linked_existing)
            updates.append((client, link.external_id, payload, "updated", None))
        else:
            new.append(client)
    creates: list[tuple[object, dict]] = []
    if new:
        found, refused = _look_up_contacts(api, new)
        if refused:
            on_results(refused)
        more_updates, creates = _match_contacts([c for c in new if c.id not in refused], found)
        updates += more_updates
    if updates:
        _save_contacts(api, updates, on_results, intent)
    if not creates:
        return
    payloads = [payload for _, payload in creates]
    key = batch_key(intent, "client", "create", [(c.id, p) for c, p in creates])
    answers = _answers(len(payloads), api.create_contacts(payloads, key))
    results, name_taken = {}, []
    for (client, payload), answer in zip(creates, answers):
        result = _contact_result(answer, payload, "created")
        if isinstance(result, ValidationFailed) and mapping.is_name_taken(result.messages):
            name_taken.append((client, result))
        else:
            results[client.id] = result
    on_results(results)
    if name_taken:
        _link_name_taken(api, name_taken, on_results, intent)


def _match_contacts(clients: list, found: list[dict]) -> tuple[list, list]:
    """Which clients link to a contact ``found`` (by PlanMan's reference, then
    by name ignoring case) and which are new: (updates, creates)."""
    updates, creates = [], []
    by_number = {c.get("ContactNumber"): c for c in found if c.get("ContactNumber")}
    taken: set[str] = set()
    for client in clients:
        payload = mapping.contact_payload(client)
        contact = by_number.get(client.reference)
        if contact is not None and contact["ContactID"] not in taken:
            taken.add(contact["ContactID"])
            updates.append((client, contact["ContactID"], payload, "created", None))  # ours: see export_client
            continue
        contact = mapping.active_contact_named(found, payload["Name"], taken)
        if contact is not None:
            taken.add(contact["ContactID"])
            payload, changed = link_payload(client, contact, "linked")
            updates.append((client, contact["ContactID"], payload, "linked", changed))
        else:
            creates.append((client, payload))
    return updates, creates


def _save_contacts(api: XeroClient, updates: list, on_results: OnResults, intent: str) -> None:
    elements = [{**payload, "ContactID": contact_id} for _, contact_id, payload, *_ in updates]
    key = batch_key(intent, "client", "save", [(c.id, e) for (c, *_), e in zip(updates, elements)])
    answers = _answers(len(elements), api.save_contacts(elements, key))
    on_results({client.id: _contact_result(answer, payload, outcome, contact_id, changed)
                for (client, contact_id, payload, outcome, changed), answer in zip(updates, answers)})


def _link_name_taken(api: XeroClient, refused: list, on_results: OnResults, intent: str) -> None:
    """A create refused because the name is taken: the batch's ``where`` query
    missed a contact whose name differs only in case (whether Xero's ``==``
    ignores case is unconfirmed). ``searchTerm`` ignores case: link those found;
    the rest keep Xero's refusal."""
    clients = [client for client, _ in refused]
    found, lookup_refused = _look_up_each(api, clients)
    updates, _ = _match_contacts([c for c in clients if c.id not in lookup_refused], found)
    linked = {client.id for client, *_ in updates}
    on_results({client.id: lookup_refused.get(client.id, error) for client, error in refused
                if client.id not in linked})
    if updates:
        _save_contacts(api, updates, on_results, intent)


def _contact_result(answer: dict, payload: dict, outcome: str, contact_id: str = "", changed=None):
    try:
        contact = _element_or_fail("client", [answer])
    except ValidationFailed as error:
        return error
    return PushResult(contact.get("ContactID") or contact_id, outcome, mapping.fingerprint(payload),
                      external_number=contact.get("ContactNumber", ""), remote_status=contact.get("ContactStatus", ""),
                      changed_fields=changed)


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
                # Xero's own line ids, so it keeps its lines (and what a bookkeeper added to them).
                payload = mapping.invoice_payload(
                    inv, contact_id=contact_links[inv.client_id].external_id, settings=connection.settings or {},
                    url=invoice_url(inv), line_item_ids=invoice_links[inv.id].line_ids)
                updates.append((inv, external_id, payload, mapping.fingerprint(payload), "updated"))

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
        on_results({inv.id: _updated_result(answer, invoice_id, digest, outcome, statuses, inv)
                    for (inv, invoice_id, _, digest, outcome), answer in zip(updates, answers)})
    if creates:
        payloads = [payload for _, payload, _ in creates]
        key = batch_key(intent, "invoice", "create", [(inv.id, p) for inv, p, _ in creates])
        answers = _answers(len(payloads), api.create_invoices(payloads, key))
        on_results({inv.id: _created_result(answer, digest, inv) for (inv, _, digest), answer in zip(creates, answers)})


def _blocked_by_archived_contacts(invoices: dict, on_results: OnResults) -> OnResults:
    """An invoice refused because its contact is archived is blocked, as in a single push."""
    def report(results: Results) -> None:
        on_results({record_id: archived_contact(invoices[record_id])
                    if isinstance(result, ValidationFailed) and is_archived_contact_refusal(result.messages) else result
                    for record_id, result in results.items()})
    return report


def _updated_result(answer: dict, invoice_id: str, digest: str, outcome: str, statuses: dict, invoice):
    messages = validation_messages(answer)
    if messages and is_locked_refusal(messages):
        status = statuses.get(invoice_id, "")
        return RecordLocked(mapping.locked_invoice_message(status), status, invoice_id)
    try:
        updated = _element_or_fail("invoice", [answer])
    except ValidationFailed as error:
        return error
    return PushResult(updated.get("InvoiceID", invoice_id), outcome, digest,
                      external_number=updated.get("InvoiceNumber", ""), remote_status=updated.get("Status", ""),
                      line_ids=mapping.line_item_ids(invoice, updated), remote_total=mapping.invoice_total(updated))


def _created_result(answer: dict, digest: str, invoice):
    try:
        created = _element_or_fail("invoice", [answer])
    except ValidationFailed as error:
        return error
    return PushResult(created["InvoiceID"], "created", digest,
                      external_number=created.get("InvoiceNumber", ""), remote_status=created.get("Status", ""),
                      line_ids=mapping.line_item_ids(invoice, created), remote_total=mapping.invoice_total(created))
