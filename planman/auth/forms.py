from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from planman.forms_common import NoControlChars, currency_choices, strip_filter

PASSWORD_MIN_LENGTH = 8


def email_filter(value):
    # Addresses are compared case-insensitively, so they are stored lower-cased.
    return value.strip().lower() if isinstance(value, str) else value


class PasswordFields:
    password = PasswordField(
        "Password",
        validators=[
            DataRequired(),
            Length(min=PASSWORD_MIN_LENGTH, max=200, message=f"Use at least {PASSWORD_MIN_LENGTH} characters."),
        ],
    )
    confirm = PasswordField(
        "Repeat password", validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")]
    )


class SignupForm(PasswordFields, FlaskForm):
    firm_name = StringField(
        "Firm name", filters=[strip_filter], validators=[DataRequired(), Length(max=255), NoControlChars()]
    )
    currency = SelectField("Default currency", choices=currency_choices(), default="GBP")
    # Filled in by static/js/browser_time_zone.js; without it (or with junk)
    # the firm gets the currency's zone (planman.timezones.sign_up_zone).
    browser_time_zone = HiddenField()
    name = StringField("Your name", filters=[strip_filter], validators=[DataRequired(), Length(max=120), NoControlChars()])
    email = EmailField(
        "Email", filters=[email_filter], validators=[DataRequired(), Length(max=255), Email(check_deliverability=False)]
    )


class LoginForm(FlaskForm):
    # NoControlChars: a NUL would reach the user lookup, which PostgreSQL refuses with an error.
    email = EmailField("Email", filters=[email_filter], validators=[DataRequired(), Length(max=255), NoControlChars()])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class SetPasswordForm(PasswordFields, FlaskForm):
    pass


class ChangePasswordForm(PasswordFields, FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=200)])
