"""Payments recorded in the connected ledger (any provider of kind "ledger"), exactly once, through what the ledger provider declares.

When a payment changes on an invoice that was sent to a connected ledger, a
``PaymentLedgerLink`` row (one per payment and ledger tenant, unique) says what
is owed to that ledger, and the job ``record_payment_in_ledger`` makes the
ledger match: record a succeeded payment, reverse one that was reversed or
refunded. A link is claimed by compare-and-set before the provider is called;
the provider looks its payment up by our reference before creating one, so a
retry after a lost answer finds it rather than paying twice."""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import cache

import sqlalchemy as sa

from planman import jobs
from planman.extensions import db
from planman.integrations.base import PaymentNotSupported
from planman.integrations.errors import IntegrationError, TemporaryFailure
from planman.models import Connection, ExternalLink, Payment, PaymentLedgerLink, utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
# A claim older than this was abandoned by a worker that died mid-call.
STALE_CLAIM = timedelta(minutes=10)
COUNTING = "succeeded"
# A payment that failed after it had counted (a late Direct Debit failure) or was
# charged back is money the firm no longer has: the ledger's payment is reversed too.
TAKEN_BACK = ("reversed", "refunded", "charged_back", "failed")


def _ledger_targets(payment: Payment):
    """(provider, connection, invoice link) for each connected ledger that holds the invoice."""
    from planman.integrations import registry

    rows = db.session.execute(
        sa.select(ExternalLink, Connection)
        .join(Connection, sa.and_(Connection.firm_id == ExternalLink.firm_id,
                                  Connection.provider == ExternalLink.provider,
                                  Connection.tenant_id == ExternalLink.tenant_id))
        .where(ExternalLink.firm_id == payment.firm_id, ExternalLink.record_type == "invoice",
               ExternalLink.record_id == payment.invoice_id, Connection.is_usable))
    for link, connection in rows:
        provider = registry.get_provider(link.provider)
        if provider is not None and provider.kind == "ledger":
            yield provider, connection, link


def queue_for(payment: Payment) -> list[PaymentLedgerLink]:
    """Mark what each connected ledger now owes for this payment (in the caller's transaction)."""
    db.session.refresh(payment)
    queued = []
    for provider, connection, _ in _ledger_targets(payment):
        ledger_link = db.session.scalar(sa.select(PaymentLedgerLink).where(
            PaymentLedgerLink.payment_id == payment.id, PaymentLedgerLink.provider == provider.key,
            PaymentLedgerLink.tenant_id == connection.tenant_id))
        if payment.provider == provider.key:
            _mirror(payment, ledger_link, connection)  # read back from this ledger: nothing to send it
            continue
        if ledger_link is None:
            if payment.state != COUNTING:
                continue  # never recorded there, so nothing to take back
            ledger_link = PaymentLedgerLink(firm_id=payment.firm_id, payment_id=payment.id, provider=provider.key,
                                            tenant_id=connection.tenant_id, state="queued")
            db.session.add(ledger_link)
        elif _wanted(payment, ledger_link) is None:
            continue
        else:
            ledger_link.state, ledger_link.attempts, ledger_link.error = "queued", 0, ""
        queued.append(ledger_link)
    return queued


@cache
def _counting_payments_and_their_links() -> sa.Select:
    # Built once: a paid invoice's panel asks on every visit.
    return (sa.select(Payment.id, PaymentLedgerLink.id)
            .outerjoin(PaymentLedgerLink, sa.and_(PaymentLedgerLink.payment_id == Payment.id,
                                                  PaymentLedgerLink.provider == sa.bindparam("provider"),
                                                  PaymentLedgerLink.tenant_id == sa.bindparam("tenant_id")))
            .where(Payment.invoice_id == sa.bindparam("invoice_id"), Payment.state == COUNTING))


def payments_not_sent(invoice_id: int, provider_key: str, tenant_id: str) -> tuple[int, int]:
    """(payments counting towards the invoice, how many of them this ledger was never
    asked to record): a payment changed before the invoice reached the ledger, or while
    it was not connected, is never sent there."""
    rows = db.session.execute(_counting_payments_and_their_links(), {
        "invoice_id": invoice_id, "provider": provider_key, "tenant_id": tenant_id}).all()
    counting = {payment_id for payment_id, _ in rows}
    linked = {payment_id for payment_id, link_id in rows if link_id is not None}
    return len(counting), len(counting - linked)


def _mirror(payment: Payment, ledger_link, connection) -> None:
    """A payment the ledger itself reported (recorded there by a bookkeeper) is
    in it already: its link says so, and no job ever writes it back."""
    if ledger_link is None:
        ledger_link = PaymentLedgerLink(firm_id=payment.firm_id, payment_id=payment.id, provider=payment.provider,
                                        tenant_id=connection.tenant_id, external_id=payment.provider_payment_id)
        db.session.add(ledger_link)
    ledger_link.state = "reversed" if payment.state in TAKEN_BACK else "recorded"
    ledger_link.error = ""


def _wanted(payment: Payment, ledger_link: PaymentLedgerLink):
    """"record", "reverse" or None (the ledger already matches)."""
    if payment.state == COUNTING and not ledger_link.external_id:
        return "record"
    if payment.state in TAKEN_BACK and ledger_link.external_id and ledger_link.state != "reversed":
        return "reverse"
    return None


def enqueue(payment_id: int, delay: float = 0) -> bool:
    """Queue the job for the payment's ledger links. Without a queue (Redis down)
    the links it would have taken are failed, saying so, with Retry offered: a
    link left "queued" would read "Being recorded…" with no job coming. Commits."""
    if jobs.enqueue("record_payment_in_ledger", payment_id,
                    job_id=f"ledger-payment-{payment_id}-{uuid.uuid4().hex[:12]}", delay=delay):
        return True
    db.session.execute(sa.update(PaymentLedgerLink)
                       .where(PaymentLedgerLink.payment_id == payment_id, PaymentLedgerLink.state == "queued")
                       .values(state="failed", error=jobs.QUEUE_UNAVAILABLE, updated_at=utcnow())
                       .execution_options(synchronize_session=False))
    db.session.commit()
    return False


def _stalled(ledger_link: PaymentLedgerLink) -> bool:
    """Queued or claimed long ago and untouched since: its job or its worker was lost."""
    return ledger_link.state in ("queued", "recording") and ledger_link.updated_at < utcnow() - STALE_CLAIM


def _claim(ledger_link: PaymentLedgerLink) -> bool:
    stale = utcnow() - STALE_CLAIM
    claimed = db.session.execute(
        sa.update(PaymentLedgerLink)
        .where(PaymentLedgerLink.id == ledger_link.id,
               sa.or_(PaymentLedgerLink.state.in_(("queued", "failed")),
                      sa.and_(PaymentLedgerLink.state == "recording", PaymentLedgerLink.updated_at < stale)))
        .values(state="recording", attempts=PaymentLedgerLink.attempts + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return bool(claimed)


def sync(payment_id: int) -> str:
    """The job: make every ledger holding this payment's invoice match the payment."""
    from planman.integrations import registry

    payment = db.session.get(Payment, payment_id)
    if payment is None:
        return "no such payment"
    outcomes = []
    retry = follow_up = False
    for ledger_link in db.session.scalars(sa.select(PaymentLedgerLink).where(
            PaymentLedgerLink.payment_id == payment_id).order_by(PaymentLedgerLink.id)).all():
        action = _wanted(payment, ledger_link)
        if action is None or not _claim(ledger_link):
            continue
        db.session.refresh(ledger_link)
        provider = registry.get_provider(ledger_link.provider)
        connection = db.session.scalar(sa.select(Connection).where(
            Connection.firm_id == payment.firm_id, Connection.provider == ledger_link.provider))
        invoice_link = db.session.scalar(sa.select(ExternalLink).where(
            ExternalLink.provider == ledger_link.provider, ExternalLink.tenant_id == ledger_link.tenant_id,
            ExternalLink.record_type == "invoice", ExternalLink.record_id == payment.invoice_id))
        label = provider.label if provider else ledger_link.provider
        try:
            if provider is None or connection is None or not connection.is_usable \
                    or connection.tenant_id != ledger_link.tenant_id or invoice_link is None:
                raise IntegrationError(f"{label} is no longer connected, so this payment was not recorded there.")
            if action == "record":
                ledger_link.external_id = provider.record_payment(connection, invoice_link, payment)
                ledger_link.state, ledger_link.error = "recorded", ""
            else:
                provider.reverse_payment(connection, invoice_link, payment, ledger_link.external_id)
                ledger_link.state, ledger_link.error = "reversed", ""
        except PaymentNotSupported:
            ledger_link.state = "unsupported"
            ledger_link.error = f"Not recorded in {label}: recording payments is not supported by {label} yet."
        except TemporaryFailure as error:
            ledger_link.state, ledger_link.error = "failed", str(error)
            retry = retry or ledger_link.attempts < MAX_ATTEMPTS
        except IntegrationError as error:
            ledger_link.state, ledger_link.error = "failed", str(error)
        except Exception:
            log.exception("recording payment %s in %s failed", payment_id, ledger_link.provider)
            ledger_link.state = "failed"
            ledger_link.error = f"Something went wrong recording this payment in {label}."
            retry = retry or ledger_link.attempts < MAX_ATTEMPTS
        db.session.commit()
        outcomes.append(f"{ledger_link.provider}: {ledger_link.state}")
        # Reversed or refunded while the ledger was being called: the change found
        # this link claimed, so queued nothing. It is this job's to follow up.
        db.session.refresh(payment)
        changed_meanwhile = (ledger_link.state in ("recorded", "reversed")
                             and _wanted(payment, ledger_link) is not None)
        if changed_meanwhile:
            ledger_link.state = "queued"
            db.session.commit()
        follow_up = follow_up or changed_meanwhile
    if follow_up:
        enqueue(payment_id)
    elif retry:
        enqueue(payment_id, delay=30)
    return ", ".join(outcomes) or "nothing to do"


def retry(payment: Payment) -> int:
    """A person's Retry: every ledger that failed to record (or reverse) this payment is tried
    again from the start, after they fixed the cause (chose the account, approved the invoice,
    reconnected), and so is one whose job or worker was lost (``_stalled``). Answers how many
    were queued; a link already recorded or being recorded is left alone (compare-and-set on
    what was read), so a double click queues one try. Commits."""
    queued = 0
    for ledger_link in db.session.scalars(sa.select(PaymentLedgerLink).where(
            PaymentLedgerLink.payment_id == payment.id)).all():
        if not (ledger_link.state == "failed" or _stalled(ledger_link)) or _wanted(payment, ledger_link) is None:
            continue
        queued += db.session.execute(
            sa.update(PaymentLedgerLink).where(PaymentLedgerLink.id == ledger_link.id,
                                               PaymentLedgerLink.state == ledger_link.state,
                                               PaymentLedgerLink.updated_at == ledger_link.updated_at)
            .values(state="queued", attempts=0, error="", updated_at=utcnow())
            .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if queued:
        enqueue(payment.id)
    return queued


def links_of(payments: list[Payment]) -> list[PaymentLedgerLink]:
    """Every ledger link of ``payments`` (read along with them), oldest first:
    what the invoice page's notes and Retry buttons are both worked out from."""
    return sorted((ledger_link for payment in payments for ledger_link in payment.ledger_links),
                  key=lambda ledger_link: ledger_link.id)


def retryable(payments: list[Payment], ledger_links: list[PaymentLedgerLink]) -> set[int]:
    """Ids of the payments a ledger failed to record or reverse (the invoice page offers Retry)."""
    by_id = {p.id: p for p in payments}
    return {link.payment_id for link in ledger_links
            if (link.state == "failed" or _stalled(link)) and _wanted(by_id[link.payment_id], link) is not None}


LEDGER_STATE_WORDS = {"queued": "Being recorded in {label}…", "recording": "Being recorded in {label}…",
                      "recorded": "Recorded in {label}", "reversed": "Reversed in {label}"}


def ledger_notes(ledger_links: list[PaymentLedgerLink]) -> dict[int, list[str]]:
    """What each payment's ledger links say, in words, by payment id."""
    from planman.integrations import registry

    notes: dict[int, list[str]] = {}
    for ledger_link in ledger_links:
        provider = registry.get_provider(ledger_link.provider)
        label = provider.label if provider else ledger_link.provider
        if ledger_link.state in ("failed", "unsupported"):
            words = ledger_link.error
        elif _stalled(ledger_link):
            words = f"Recording in {label} stopped before it finished. Retry to try again."
        else:
            words = LEDGER_STATE_WORDS[ledger_link.state].format(label=label)
        notes.setdefault(ledger_link.payment_id, []).append(words)
    return notes
