from flask_wtf import FlaskForm
from wtforms import EmailField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional, ValidationError

from planman.clients.services import name_in_use
from planman.forms_common import NoControlChars, strip_filter


NAME_TAKEN = ("Another client already has this name (upper and lower case count as the same). "
              "Client names must be unique.")


def _text(label, max_length, *extra, multiline=False, required=False):
    """A trimmed text field within the ledgers' limit for the matching contact field."""
    validators = [DataRequired() if required else Optional(), Length(max=max_length), NoControlChars(multiline), *extra]
    field_class = TextAreaField if multiline else StringField
    return field_class(label, filters=[strip_filter], validators=validators)


def _ascii_email(form, field):
    # Some ledgers refuse accented letters (umlauts) in e-mail addresses; each
    # says so (Provider.accepts_accented_emails), and is named in the message.
    if field.data and not field.data.isascii():
        from flask import current_app

        from planman.integrations.registry import configured_providers

        refusing = [p.label for p in configured_providers(current_app) if not p.accepts_accented_emails]
        if refusing:
            raise ValidationError(f"{' and '.join(refusing)} {'does' if len(refusing) == 1 else 'do'} not accept "
                                  f"accented letters in email addresses.")


class ClientForm(FlaskForm):
    # Maximum lengths are the strictest ledger's (its REFERENCE.md), so a saved client always pushes.
    name = _text("Name", 255, required=True)
    first_name = _text("Contact first name", 255)
    last_name = _text("Contact last name", 255)
    email = EmailField(
        "Email",
        filters=[strip_filter],
        validators=[Optional(), Length(max=255), NoControlChars(), Email(check_deliverability=False), _ascii_email],
    )
    phone = _text("Phone", 50)
    address_line1 = _text("Address line 1", 500)
    address_line2 = _text("Address line 2", 500)
    city = _text("Town or city", 255)
    region = _text("Region", 255)
    postcode = _text("Postcode", 50)
    country = _text("Country", 50)
    tax_number = _text("Tax / VAT number", 50)
    payment_terms_days = IntegerField(
        "Payment terms (days)",
        default=30,
        validators=[InputRequired(message="Enter the number of days."), NumberRange(min=0, max=365)],
    )
    notes = _text("Notes", 10000, multiline=True)

    TEXT_FIELDS = (
        "name", "first_name", "last_name", "email", "phone", "address_line1", "address_line2",
        "city", "region", "postcode", "country", "tax_number", "notes",
    )

    def __init__(self, *args, client=None, **kwargs):
        super().__init__(*args, obj=client, **kwargs)
        self._client_id = client.id if client else None

    def validate_name(self, field):
        if name_in_use(field.data, exclude_id=self._client_id):
            raise ValidationError(NAME_TAKEN)

    def apply_to(self, client) -> None:
        for name in self.TEXT_FIELDS:
            setattr(client, name, getattr(self, name).data or "")
        client.payment_terms_days = self.payment_terms_days.data
