"""Pushing one record to FreshBooks: dependencies first, lookup before create,
then create or update.

FreshBooks has no idempotency keys (REFERENCE.md section 5), so exactly-once
rests on three things: the push is recorded before any call (the shared
PushJob), every create is preceded by a lookup (invoices by number, clients by
exact organisation and e-mail), and a create about to be sent is noted in
Redis first, so a record the lookup finds after a lost answer is known to be
PlanMan's own ("created", not "linked")."""
from __future__ import annotations

from typing import Optional

from planman.extensions import db
from planman.integrations import links
from planman.integrations.base import PushResult
from planman.integrations.create_marks import CreateMarks
from planman.integrations.errors import (BlockedByDependency, RecordLocked, RemoteNotFound, ValidationFailed,
                                         client_not_sent)
from planman.integrations.freshbooks import mapping
from planman.integrations.freshbooks.client import FreshBooksClient, Refused
from planman.integrations.records import at_one_revision

DELETED_CLIENT = (
    "This client was deleted in FreshBooks, so FreshBooks takes no changes to it. Restore it in FreshBooks "
    "(Clients, show deleted clients, Restore), then click Retry here.")
DELETED_INVOICE = "This invoice was deleted in FreshBooks. You can send it again as a new draft."
SEEN_SINCE = (
    "Since PlanMan last looked, this invoice became “{label}” in FreshBooks, so the customer may have seen it. "
    "Nothing was changed. Open the invoice's FreshBooks panel to review it and confirm the Update.")
SEEN_IN_BULK = (
    "This invoice is “{label}” in FreshBooks, so the customer may have seen it: bulk sends do not change it. "
    "Open the invoice to review it and confirm the Update there.")


def _result(remote: dict, outcome: str, digest: str, *, status: str, **extra) -> PushResult:
    remote_id = remote.get("id") or remote.get("userid") or remote.get("invoiceid")
    return PushResult(str(remote_id) if remote_id else "", outcome, digest, remote_status=status, **extra)


# -- clients ------------------------------------------------------------------------

def export_client(api: FreshBooksClient, client, link, marks: CreateMarks) -> PushResult:
    only_held = bool(link is not None and link.linked_existing)
    payload, revision = at_one_revision(client, lambda: mapping.client_payload(client, only_held=only_held))
    result = _export_client(api, client, link, payload, marks)
    result.record_revision = revision
    return result


def _export_client(api: FreshBooksClient, client, link, payload: dict, marks: CreateMarks) -> PushResult:
    digest = mapping.fingerprint(payload)
    if link is not None:
        try:
            updated = api.update_client(link.external_id, payload)
            return _result(updated, "updated", digest, status=mapping.client_status(updated))
        except Refused as error:
            if mapping.DELETED_RESOURCE in error.errnos:
                raise ValidationFailed([DELETED_CLIENT]) from error
            raise
        except RemoteNotFound:
            pass  # gone from FreshBooks altogether: look up, then create again

    # Lookup before create: exact organisation and e-mail (README, Design).
    found = next((c for c in api.find_clients(client.name) if mapping.is_same_client(c, client)), None)
    if found is not None:
        ours = marks.sent_before("client", client.id)  # our create whose answer was lost
        update = payload if ours else mapping.client_payload(client, only_held=True)
        changed = None if ours else mapping.changed_client_fields(found, update)
        updated = api.update_client(str(found["id"]), update)
        return _result(updated, "created" if ours else "linked", mapping.fingerprint(update),
                       status=mapping.client_status(updated), changed_fields=changed)

    marks.note("client", client.id)
    created = api.create_client(payload)
    return _result(created, "created", digest, status=mapping.client_status(created))


# -- invoices -------------------------------------------------------------------------

def export_invoice(api: FreshBooksClient, connection, invoice, marks: CreateMarks, *, user_id: Optional[int],
                   confirmed: bool = True) -> PushResult:
    """Create or update the FreshBooks invoice for ``invoice``, its client first.

    ``confirmed``: a person asked for this push from the invoice's panel, which
    asks before updating an invoice the customer may have seen; bulk sends
    are not, and leave such invoices alone."""
    client_link = links.find_link(connection, "client", invoice.client_id)
    if client_link is None:
        try:
            result = export_client(api, invoice.client, None, marks)
        except ValidationFailed as error:
            raise client_not_sent(error, "FreshBooks") from error
        links.record_link(connection, "client", invoice.client_id, result, user_id)
        db.session.commit()  # the client exists in FreshBooks now: keep that even if the invoice fails
        client_link = links.find_link(connection, "client", invoice.client_id)

    payload, revision = at_one_revision(invoice, lambda: mapping.invoice_payload(
        invoice, customer_id=client_link.external_id))
    digest = mapping.fingerprint(payload)
    link = links.find_link(connection, "invoice", invoice.id)
    try:
        result = _export_invoice(api, invoice, link, payload, digest, marks, confirmed)
    except Refused as error:
        if any(e.get("field") == "customerid" for e in error.errors):
            raise BlockedByDependency(
                f"FreshBooks refused this invoice because its client “{invoice.client.name}” was deleted there. "
                "Restore the client in FreshBooks, then click Update on the client's page here; this invoice "
                "can be retried after that.", "client", invoice.client_id, "deleted") from error
        raise
    if result.record_revision is None:
        result.record_revision = revision
    return result


def _export_invoice(api, invoice, link, payload, digest, marks, confirmed) -> PushResult:
    if link is not None and link.remote_status != "deleted":
        try:
            current = api.get_invoice(link.external_id)
        except RemoteNotFound:
            current = None  # gone altogether: look up, then create again
        if current is not None:
            status = mapping.invoice_status(current)
            if status == "deleted":
                raise RecordLocked(DELETED_INVOICE, "deleted", link.external_id)
            if mapping.customer_has_seen(status):
                label = mapping.INVOICE_STATUS_LABELS.get(status, status.title())
                if not confirmed:
                    raise RecordLocked(SEEN_IN_BULK.format(label=label), status, link.external_id)
                if status != link.remote_status:  # the person confirmed another status, or none
                    raise RecordLocked(SEEN_SINCE.format(label=label), status, link.external_id)
            return _saved(api.update_invoice(link.external_id, payload), "updated", digest)

    # Lookup before create: an invoice with our number (deleted ones aside).
    same_number = [i for i in api.find_invoices(invoice.number)
                   if (i.get("invoice_number") or "").casefold() == invoice.number.casefold()
                   and mapping.invoice_status(i) != "deleted"]
    if same_number:
        found = same_number[0]
        if str(found.get("customerid")) != str(payload["customerid"]):
            raise number_taken(invoice.number)
        ours = marks.sent_before("invoice", invoice.id)
        status = mapping.invoice_status(found)
        if mapping.customer_has_seen(status):
            # Not a draft any more: linked as it is, and not overwritten without a
            # person's say. Revision 0 was never sent, so the panel offers Update
            # (and asks first, as for any invoice the customer may have seen).
            return _result(found, "created" if ours else "linked", "", status=status, record_revision=0,
                           external_number=str(found.get("invoice_number") or ""),
                           remote_total=mapping.money(found.get("amount")))
        return _saved(api.update_invoice(str(found["id"]), payload), "created" if ours else "linked", digest)

    marks.note("invoice", invoice.id)
    return _saved(api.create_invoice(payload), "created", digest)


def _saved(remote: dict, outcome: str, digest: str) -> PushResult:
    return _result(remote, outcome, digest, status=mapping.invoice_status(remote),
                   external_number=str(remote.get("invoice_number") or ""),
                   remote_total=mapping.money(remote.get("amount")))


def number_taken(number: str) -> ValidationFailed:
    return ValidationFailed(
        [f"FreshBooks already has an invoice numbered {number} for another client. Give this invoice a "
         "different number, or change the other one in FreshBooks."],
        {"number": [f"{number} is already used by another invoice in FreshBooks."]},
    )
