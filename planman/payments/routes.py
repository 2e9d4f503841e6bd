"""The firm's side: record and reverse payments, share the payment link."""
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from planman.models import Invoice, Payment
from planman.payments import bp, ledger, links, services
from planman.payments.forms import PaymentForm
from planman.tenancy import get_for_firm_or_404


@bp.before_request
@login_required
def require_login():
    pass


def _invoice_page(invoice: Invoice, anchor: str = "payments"):
    return redirect(url_for("invoices.view", invoice_id=invoice.id, _anchor=anchor))


@bp.route("/<int:invoice_id>/payments/new", methods=["GET", "POST"])
def record(invoice_id: int):
    invoice = get_for_firm_or_404(Invoice, invoice_id)
    form = PaymentForm()
    if not form.is_submitted():
        form.amount.data = max(invoice.amount_due, services.ZERO)
    elif form.validate():
        try:
            services.record_manual_payment(
                invoice, amount=form.amount.data, paid_on=form.paid_on.data, method=form.method.data,
                reference=form.reference.data or "", note=form.note.data or "", user_id=current_user.id)
        except services.PaymentRefused as refused:
            form.amount.errors.append(str(refused))
        else:
            flash(f"Payment of {form.amount.data:,.2f} {invoice.currency} recorded.", "success")
            return _invoice_page(invoice)
    return render_template("payments/record.html", form=form, invoice=invoice), 422 if form.errors else 200


@bp.post("/<int:invoice_id>/payments/<int:payment_id>/reverse")
def reverse(invoice_id: int, payment_id: int):
    invoice = get_for_firm_or_404(Invoice, invoice_id)
    payment = get_for_firm_or_404(Payment, payment_id)
    if payment.invoice_id != invoice.id:
        abort(404)
    try:
        services.reverse_payment(payment, user_id=current_user.id)
    except services.CannotReverse as refused:
        flash(str(refused), "error")
    else:
        flash(f"Payment of {payment.amount:,.2f} {payment.currency} reversed.", "success")
    return _invoice_page(invoice)


@bp.post("/<int:invoice_id>/payments/<int:payment_id>/ledger-retry")
def retry_ledger(invoice_id: int, payment_id: int):
    invoice = get_for_firm_or_404(Invoice, invoice_id)
    payment = get_for_firm_or_404(Payment, payment_id)
    if payment.invoice_id != invoice.id:
        abort(404)
    if ledger.retry(payment):
        flash("Trying again to record this payment in your ledger.", "success")
    else:
        flash("Nothing to retry: this payment is recorded, or being recorded, already.", "info")
    return _invoice_page(invoice)


@bp.post("/<int:invoice_id>/payment-link")
def payment_link(invoice_id: int):
    invoice = get_for_firm_or_404(Invoice, invoice_id)
    replaced = links.link_for(invoice) is not None
    links.create_or_replace(invoice, current_user.id)
    flash("New payment link made: the old one no longer works." if replaced else "Payment link made.", "success")
    return _invoice_page(invoice, "payment-link")
