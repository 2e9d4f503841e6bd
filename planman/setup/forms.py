from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional, ValidationError

from planman import timezones
from planman.auth.forms import PASSWORD_MIN_LENGTH, email_filter
from planman.forms_common import MaxDecimalPlaces, NoControlChars, PlainDecimalField, strip_filter


class ColleagueForm(FlaskForm):
    name = StringField("Name", filters=[strip_filter], validators=[DataRequired(), Length(max=120), NoControlChars()])
    email = EmailField(
        "Email", filters=[email_filter], validators=[DataRequired(), Length(max=255), Email(check_deliverability=False)]
    )
    is_admin = BooleanField("Administrator (can open Setup, add colleagues and connect integrations)")
    access = RadioField(
        "How will they sign in?",
        choices=[("invite", "Give me an invite link to send them"), ("password", "Set a password for them now")],
        default="invite",
    )
    password = PasswordField("Password", validators=[Optional(), Length(max=200)])

    def validate_password(self, field):
        if self.access.data == "password" and len(field.data or "") < PASSWORD_MIN_LENGTH:
            raise ValidationError(f"Use at least {PASSWORD_MIN_LENGTH} characters.")


class TaxRateForm(FlaskForm):
    name = StringField("Name", filters=[strip_filter], validators=[DataRequired(), Length(max=100), NoControlChars()])
    percent = PlainDecimalField(
        "Rate (%)",
        validators=[
            InputRequired(message="Enter a percentage."),
            MaxDecimalPlaces(4),
            NumberRange(min=0, max=100, message="Enter a percentage between 0 and 100."),
        ],
    )


class ConfirmForm(FlaskForm):
    """A bare form for POST buttons, so they carry the CSRF token."""


class FirmForm(FlaskForm):
    time_zone = SelectField("Time zone", validate_choice=False)

    def __init__(self, *args, current_zone: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.time_zone.choices = timezones.zone_choices(current_zone)

    def validate_time_zone(self, field):
        if not timezones.is_valid(field.data):
            raise ValidationError("Choose a time zone from the list.")
