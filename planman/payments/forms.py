from datetime import date
from decimal import Decimal

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from planman.forms_common import MaxDecimalPlaces, NoControlChars, PlainDecimalField, SensibleDate, strip_filter
from planman.payments.services import MAX_PAYMENT

# What a person records by hand; card and Direct Debit payments come from providers.
MANUAL_METHODS = {"bank_transfer": "Bank transfer", "other": "Other (cash, cheque…)"}
METHOD_LABELS = {"card": "Card", "direct_debit": "Direct Debit", **MANUAL_METHODS,
                 "other": "Other"}


class PaymentForm(FlaskForm):
    amount = PlainDecimalField("Amount", validators=[
        InputRequired(message="Enter the amount received."), MaxDecimalPlaces(2),
        NumberRange(min=Decimal("0.01"), message="Enter an amount above zero."),
        NumberRange(max=MAX_PAYMENT, message="That is more than one payment can be.")])
    paid_on = DateField("Date received", default=date.today,
                        validators=[InputRequired(message="Enter a date."), SensibleDate()])
    method = SelectField("Method", choices=list(MANUAL_METHODS.items()))
    reference = StringField("Reference", filters=[strip_filter],
                            validators=[Optional(), Length(max=255), NoControlChars()])
    note = TextAreaField("Note", filters=[strip_filter],
                         validators=[Optional(), Length(max=2000), NoControlChars(multiline=True)])
