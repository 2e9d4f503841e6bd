"""What the invoice page shows of its payments, worked out once for the template."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_login import current_user

from planman.integrations import registry
from planman.models import Invoice
from planman.payments import ledger, links, services
from planman.payments.forms import METHOD_LABELS
from planman.payments.public import payment_options

STATE_LABELS = {"pending": "Pending", "succeeded": "Received", "failed": "Failed", "refunded": "Refunded",
                "disputed": "Disputed", "charged_back": "Charged back", "reversed": "Reversed"}


@dataclass
class PaymentsView:
    payments: list
    sources: dict
    ledger_notes: dict
    ledger_retryable: set
    link_url: str
    has_online_payments: bool
    method_labels: dict = field(default_factory=lambda: METHOD_LABELS)
    state_labels: dict = field(default_factory=lambda: STATE_LABELS)


def _source(payment) -> str:
    if payment.provider:
        provider = registry.get_provider(payment.provider)
        return f"{provider.label if provider else payment.provider} ({payment.provider_payment_id})"
    return f"Recorded by {payment.recorded_by.name}" if payment.recorded_by else "Recorded"


def for_invoice(invoice: Invoice) -> PaymentsView:
    payments = services.invoice_payments(invoice)
    link = invoice.payment_link
    ledger_links = ledger.links_of(payments)
    return PaymentsView(
        payments=payments,
        sources={payment.id: _source(payment) for payment in payments},
        ledger_notes=ledger.ledger_notes(ledger_links),
        ledger_retryable=ledger.retryable(payments, ledger_links),
        link_url=links.url_of(link) if link else "",
        has_online_payments=bool(payment_options(current_user.firm_id)),
    )
