from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError

from planman.extensions import db
from planman.forms_common import is_index
from planman.invoices import bp, services
from planman.invoices.preview import form_preview
from planman.invoices.forms import STATUS_LABELS, InvoiceForm, LineForm
from planman.models import INVOICE_STATUSES, Client, Invoice
from planman.pagination import paginate
from planman.payments import pages
from planman.payments import services as payments
from planman.payments import views as payments_views
from planman.tenancy import firm_params, get_for_firm_or_404, one_for_firm_or_404

NUMBER_TAKEN = "This number is already used by another invoice."


@bp.before_request
@login_required
def require_login():
    pass


@bp.get("/")
def index():
    status = request.args.get("status", "")
    if status not in INVOICE_STATUSES:
        status = ""
    page = paginate(
        services.list_select(status or None),
        page=request.args.get("page", 1, type=int),
        per_page=current_app.config["INVOICES_PER_PAGE"],
        params=firm_params(),
    )
    return render_template("invoices/index.html", page=page, status=status, statuses=STATUS_LABELS)


def _form_page(form: InvoiceForm, invoice: Invoice | None, tax_rates):
    status = 422 if form.errors else 200
    preview = form_preview(form, tax_rates)
    amounts = {index: amounts for index, amounts in preview["line_amounts"]}
    return render_template("invoices/form.html", form=form, invoice=invoice, preview=preview, amounts=amounts), status


def _wants_next_number(form: InvoiceForm, invoice: Invoice | None) -> bool:
    return not form.number.data or (invoice is None and form.number.data == form.suggested_number.data)


def _validate(form: InvoiceForm, invoice: Invoice | None) -> bool:
    """The form's own checks plus a unique number, all reported in one go."""
    valid = form.validate()
    number = form.number.data
    if number and not form.number.errors and not _wants_next_number(form, invoice):
        if services.number_taken(current_user.firm_id, number, exclude_id=invoice.id if invoice else None):
            form.number.errors.append(NUMBER_TAKEN)
            valid = False
    if invoice is not None and invoice.amount_paid > 0:
        valid = _check_against_payments(form, invoice) and valid
    return valid


def _check_against_payments(form: InvoiceForm, invoice: Invoice, paid_currency: str | None = None) -> bool:
    """An invoice that has been paid (in part) can neither be voided, nor cost
    less than was paid, nor change currency: each would leave money received
    against nothing, or counted in another currency."""
    ok = True
    if form.status.data == "void" and not form.status.errors:
        form.status.errors.append("This invoice has payments: reverse them before voiding it.")
        ok = False
    if form.currency.data != (paid_currency or invoice.currency) and not form.currency.errors:
        form.currency.errors.append(f"This invoice has payments in {paid_currency or invoice.currency}: reverse "
                                    "them before changing its currency.")
        ok = False
    total = form_preview(form, services.firm_tax_rates())["totals"].total
    if total < invoice.amount_paid and not form.lines.errors:
        form.lines.errors.append(f"The total ({total:,.2f}) cannot be less than the {invoice.amount_paid:,.2f} "
                                 "already paid: reverse a payment first.")
        ok = False
    return ok


def _save(form: InvoiceForm, invoice: Invoice | None) -> Invoice | None:
    """Save a validated form; None when its number was taken in the meantime (a field error)."""
    firm_id = current_user.firm_id
    client = db.session.get(Client, form.client_id.data)  # a choice of this firm's clients, so safe
    existing = {line.id: line for line in invoice.lines} if invoice else {}
    named = [entry.form.line_id.data for entry in form.lines if entry.form.line_id.data]
    # A line id that is not one of this invoice's lines is someone else's: answer as for any foreign id.
    # One named twice would save one row over the other: the form never sends that either.
    if any(not is_index(line_id) or int(line_id) not in existing for line_id in named) or \
            len(set(named)) != len(named):
        abort(404)
    paid_currency = invoice.currency if invoice else None

    number = form.number.data
    auto_number = _wants_next_number(form, invoice)
    if auto_number:
        number = services.allocate_number(firm_id)
    if invoice is None:
        invoice = Invoice(firm_id=firm_id)
    else:
        invoice.revision += 1
    invoice.number = number
    services.apply_invoice_fields(invoice, form, client)
    services.apply_lines(invoice, form.lines.entries, existing)
    db.session.add(invoice)
    try:
        db.session.flush()  # stores the new total (planman.invoices.totals)
        payments.sync_status(invoice)  # paid / part paid follow from the payments, whatever was picked
    except IntegrityError:
        # Someone saved the same number between our check and our commit.
        db.session.rollback()
        form.number.errors.append(NUMBER_TAKEN)
        return None
    # The invoice row is written (locked) now: a payment recorded since the form was
    # checked is counted, and one arriving later is checked against the new total.
    if invoice.amount_paid > 0 and not _check_against_payments(form, invoice, paid_currency):
        db.session.rollback()
        return None
    db.session.commit()
    pages.close_unneeded_soon(invoice.id)  # voided, back to draft or a lower total: open card pages ask too much
    return invoice


@bp.route("/new", methods=["GET", "POST"])
def new():
    clients, tax_rates = services.firm_clients(), services.firm_tax_rates()
    if not clients:
        flash("Add a client first: every invoice is addressed to one.")
        return redirect(url_for("clients.new"))
    firm = current_user.firm
    form = InvoiceForm()
    if not form.is_submitted():
        form.lines.append_entry()
    form.set_choices(clients, tax_rates)
    if not form.is_submitted():
        form.number.data = form.suggested_number.data = services.suggest_number(firm)
        form.currency.data = firm.currency
        form.client_id.data = request.args.get("client_id", type=int)
        # A new line starts with the firm's highest rate, the usual case.
        if tax_rates:
            form.lines[0].form.tax_rate_id.data = tax_rates[0].id
    elif _validate(form, None):
        invoice = _save(form, None)
        if invoice is not None:
            flash(f"Invoice {invoice.number} saved.", "success")
            return redirect(url_for("invoices.view", invoice_id=invoice.id))
    return _form_page(form, None, tax_rates)


@bp.get("/<int:invoice_id>")
def view(invoice_id: int):
    invoice = one_for_firm_or_404(services.invoice_with_lines(), invoice_id)
    return render_template("invoices/view.html", invoice=invoice, totals=invoice.totals, statuses=STATUS_LABELS,
                           payments_view=payments_views.for_invoice(invoice))


@bp.route("/<int:invoice_id>/edit", methods=["GET", "POST"])
def edit(invoice_id: int):
    invoice = get_for_firm_or_404(Invoice, invoice_id)
    tax_rates = services.firm_tax_rates()
    form = InvoiceForm(obj=invoice)
    form.set_choices(services.firm_clients(), tax_rates)
    if not form.is_submitted():
        for entry, line in zip(form.lines, invoice.lines):
            entry.form.line_id.data = str(line.id)
    elif _validate(form, invoice):
        if _save(form, invoice) is not None:
            flash(f"Invoice {invoice.number} saved.", "success")
            return redirect(url_for("invoices.view", invoice_id=invoice.id))
    return _form_page(form, invoice, tax_rates)


@bp.post("/lines")
def new_line():
    """A blank line row, indexed after the highest index in the submitted form, so
    indexes stay unique however many rows were removed before."""
    indexes = [int(key.split("-")[1]) for key in request.form if key.startswith("lines-") and is_index(key.split("-")[1])]
    index = max(indexes, default=-1) + 1
    tax_rates = services.firm_tax_rates()
    line = LineForm(prefix=f"lines-{index}-")
    line.tax_rate_id.choices = [("", "No tax")] + [(str(r.id), r.name) for r in tax_rates]
    if tax_rates:
        line.tax_rate_id.data = tax_rates[0].id
    return render_template("invoices/_line_row.html", line=line, index=index)


@bp.post("/totals")
def totals():
    """Live totals for the invoice form. ``remove_line`` drops that row from the
    sum and, out of band, from the page, in one request."""
    form = InvoiceForm()  # not validated: a preview of whatever has been typed so far
    preview = form_preview(form, services.firm_tax_rates(), removed=request.form.get("remove_line", type=int))
    return render_template("invoices/_totals.html", oob=True, **preview)

