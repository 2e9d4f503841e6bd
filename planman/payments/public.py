"""The client payment page: no log-in, behind the invoice's unguessable link.

It shows one invoice (the token is bound to it), never another; says plainly
when the invoice is paid or void, or the link does not work; is never cached
or indexed; and sends no Referer, so the token does not travel to a payment
provider's page."""
import logging
import re
import secrets
import time
from decimal import Decimal

from flask import abort, make_response, redirect, render_template, request, url_for

from planman.integrations import registry
from planman.integrations.errors import IntegrationError
from planman.integrations.links import connection_for
from planman.models import Firm
from planman.extensions import db
from planman.payments import links, pages, public_bp, services
from planman.security import public_url

log = logging.getLogger(__name__)


@public_bp.after_request
def private_page(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def payment_options(firm_id: int) -> list:
    """(provider, connection) for every payment provider the firm has connected that takes payments now."""
    options = []
    for provider in registry.all_providers():
        if provider.kind != "payments":
            continue
        connection = connection_for(firm_id, provider.key)
        if connection is not None and connection.is_usable and provider.takes_payments(connection):
            options.append((provider, connection))
    return options


def _invoice_or_gone(token: str):
    invoice = links.invoice_for_token(token)
    if invoice is None:
        abort(make_response(render_template("payments/link_not_valid.html"), 404))
    return invoice


@public_bp.get("/pay/<token>")
def page(token: str):
    # Back from a provider's payment page: say the payment is being confirmed
    # (only the provider's verified webhook marks the invoice paid).
    returned = registry.get_provider(request.args.get("returned", ""))
    return _render_page(token, returned=returned if returned is not None and returned.kind == "payments" else None)


def _on_its_way(invoice, connected: list) -> Decimal:
    """What the invoice's payments still being confirmed, and collections still
    under way with the ``connected`` providers, come to (each once: a collection
    is often a pending payment too)."""
    pending = [p for p in services.invoice_payments(invoice) if p.state == "pending"]
    known = {(p.provider, p.provider_payment_id) for p in pending if p.provider}
    total = sum((p.amount for p in pending), Decimal("0"))
    for provider, _ in connected:
        total += sum((amount for payment_id, amount in provider.collections_under_way(invoice)
                      if not payment_id or (provider.key, payment_id) not in known), Decimal("0"))
    return total


def offers(invoice) -> tuple[list, Decimal]:
    """The ways to pay the page offers, and what is on its way already. None for
    an invoice not sent yet (a draft), settled, or whose amount due is on its
    way (a second payment would be one too many); else each connected payment
    provider that can collect what is left in this currency."""
    connected = payment_options(invoice.firm_id)
    on_its_way = _on_its_way(invoice, connected)
    left = invoice.amount_due - on_its_way
    if invoice.status not in ("sent", "part_paid") or left <= 0:
        return [], on_its_way
    return [(provider, connection) for provider, connection in connected
            if provider.can_collect(invoice, left)], on_its_way


def _render_page(token: str, *, returned=None, problem: str = "", status: int | None = None):
    invoice = _invoice_or_gone(token)
    firm = db.session.get(Firm, invoice.firm_id)
    status = status or (410 if invoice.status == "void" else 200)
    options, on_its_way = offers(invoice)
    if returned is not None:
        options = []  # back from paying: no second button to press while that payment is confirmed
    return render_template("payments/pay.html", invoice=invoice, firm=firm, totals=invoice.totals,
                           options=options, token=token, returned=returned, problem=problem,
                           on_its_way=on_its_way, attempt=_new_attempt()), status


def _new_attempt() -> str:
    """One attempt per page view, which resubmitting its form reuses (idempotency):
    when the page was shown (ten digits of Unix time), then 22 random hex digits."""
    return f"{int(time.time()):010d}{secrets.token_hex(11)}"


def _shown_at(attempt: str) -> int | None:
    return int(attempt[:10]) if attempt[:10].isdigit() else None


@public_bp.post("/pay/<token>/<provider_key>")
def start(token: str, provider_key: str):
    invoice = _invoice_or_gone(token)
    chosen = registry.get_provider(provider_key)
    if chosen is None or chosen.kind != "payments":
        abort(404)
    options, on_its_way = offers(invoice)
    for provider, connection in options:
        if provider.key == provider_key:
            return_url = public_url("pay.page", token=token)
            attempt = request.form.get("attempt", "")
            attempt = attempt if re.fullmatch(r"[0-9a-f]{32}", attempt) else ""
            try:
                # What is left once the payments on their way arrive: paying the whole amount due
                # would pay those twice.
                started = provider.start_payment(connection, invoice, invoice.amount_due - on_its_way,
                                                 return_url=return_url, attempt=attempt,
                                                 shown_at=_shown_at(attempt))
            except IntegrationError as error:
                log.warning("%s payment for invoice %s not started: %s", provider.key, invoice.id, error.detail)
                return _render_page(token, problem=error.user_message, status=503)
            pages.remember(invoice, connection, started)  # closed once the invoice no longer needs it
            return redirect(started.url, code=303)  # the provider's page, fetched with GET
    return redirect(url_for("pay.page", token=token))  # not offered (any more): the page says why
