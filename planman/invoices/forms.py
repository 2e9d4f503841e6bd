from datetime import date
from decimal import Decimal

from flask import has_request_context, request
from flask_wtf import FlaskForm
from wtforms import DateField, FieldList, Form, FormField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from planman.forms_common import (MaxDecimalPlaces, NoControlChars, PlainDecimalField, SensibleDate, currency_choices,
                                  is_index, strip_filter)
from planman.models import AMOUNT_TYPES, USER_INVOICE_STATUSES

AMOUNT_TYPE_LABELS = {"exclusive": "Tax exclusive", "inclusive": "Tax inclusive", "no_tax": "No tax"}
STATUS_LABELS = {"draft": "Draft", "sent": "Sent", "part_paid": "Part paid", "paid": "Paid", "void": "Void"}
# Columns are Numeric(14, 4): keep every amount well inside them.
AMOUNT_LIMIT = Decimal("1000000000")


def _optional_int(value):
    if value in (None, "", "None"):
        return None
    return int(value)


class NonZero:
    def __call__(self, form, field):
        if field.data is not None and field.data == 0:
            raise ValidationError("Quantity cannot be zero.")


class LineForm(Form):
    # Identifies an existing line of this invoice; empty for a new line.
    line_id = HiddenField()
    description = TextAreaField(
        "Description",
        filters=[strip_filter],
        validators=[DataRequired(message="Describe the line."), Length(max=4000), NoControlChars(multiline=True)],
    )
    quantity = PlainDecimalField(
        "Quantity",
        default=Decimal("1"),
        validators=[
            InputRequired(message="Enter a quantity."),
            MaxDecimalPlaces(4),
            NonZero(),
            NumberRange(min=-AMOUNT_LIMIT, max=AMOUNT_LIMIT),
        ],
    )
    unit_price = PlainDecimalField(
        "Unit price",
        validators=[
            InputRequired(message="Enter a price."),
            MaxDecimalPlaces(4),
            NumberRange(min=-AMOUNT_LIMIT, max=AMOUNT_LIMIT),
        ],
    )
    discount_percent = PlainDecimalField(
        "Discount %",
        # Two places: a ledger may keep a discount rate as money (the first ledger's spec
        # says so of its DiscountRate), so a third place would bill another total.
        validators=[Optional(), MaxDecimalPlaces(2), NumberRange(min=0, max=100)],
    )
    tax_rate_id = SelectField("Tax rate", coerce=_optional_int, choices=[("", "No tax")])


class LineList(FieldList):
    """FieldList whose row numbers are ASCII digits: WTForms' own test
    (str.isdigit) lets "lines-²-description" through to int(), a 500."""

    def _extract_indices(self, prefix, formdata):
        offset = len(prefix) + 1
        for key in formdata:
            if key.startswith(prefix):
                index = key[offset:].split(self._field_separator, 1)[0]
                if is_index(index):
                    yield int(index)


class InvoiceForm(FlaskForm):
    number = StringField("Number", filters=[strip_filter], validators=[Optional(), Length(max=255), NoControlChars()])
    # The number offered when the form was shown: if it comes back unchanged the
    # next number is allocated at save time, so two people writing invoices at
    # once never collide.
    suggested_number = HiddenField()
    client_id = SelectField("Client", coerce=_optional_int, validators=[InputRequired(message="Choose a client.")])
    issue_date = DateField("Issue date", default=date.today,
                           validators=[InputRequired(message="Enter a date."), SensibleDate()])
    due_date = DateField("Due date", validators=[Optional(), SensibleDate()])
    currency = SelectField("Currency", choices=currency_choices())
    reference = StringField("Reference", filters=[strip_filter], validators=[Optional(), Length(max=255), NoControlChars()])
    amounts_are = SelectField("Amounts are", choices=[(key, AMOUNT_TYPE_LABELS[key]) for key in AMOUNT_TYPES])
    # Paid and part paid follow from the invoice's payments, so they are not choices.
    status = SelectField("Status", choices=[(key, STATUS_LABELS[key]) for key in USER_INVOICE_STATUSES])
    lines = LineList(FormField(LineForm), max_entries=500)

    def set_choices(self, clients, tax_rates) -> None:
        self.client_id.choices = [("", "Choose a client…")] + [(str(c.id), c.name) for c in clients]
        rate_choices = [("", "No tax")] + [(str(r.id), r.name) for r in tax_rates]
        for entry in self.lines:
            entry.form.tax_rate_id.choices = rate_choices

    def validate_client_id(self, field):
        if field.data is None:
            raise ValidationError("Choose a client.")

    def validate_due_date(self, field):
        if field.data and self.issue_date.data and field.data < self.issue_date.data:
            raise ValidationError("The due date cannot be before the issue date.")

    def validate_lines(self, field):
        if not field.entries:
            raise ValidationError("Add at least one line.")
        # FieldList silently drops rows past max_entries: refuse rather than save a cut-down invoice.
        indexes = {key.split("-")[1] for key in (request.form if has_request_context() else ())
                   if key.startswith("lines-") and is_index(key.split("-")[1])}
        if len(indexes) > field.max_entries:
            raise ValidationError(f"An invoice can have at most {field.max_entries} lines.")
