"""Forms of the connect flow. Choices come from what the provider returned, and
a submitted value outside them gets a message beside its field."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField
from wtforms.validators import ValidationError


class ConfirmForm(FlaskForm):
    """A bare form for POST buttons (Connect, Disconnect, Refresh): the CSRF token only."""


class ChooseTenantForm(FlaskForm):
    """Which of the tenants an approval reached this firm uses (``Provider.tenant_word``)."""

    tenant_id = RadioField("Account", validate_choice=False)

    def __init__(self, provider, tenants, **kwargs):
        super().__init__(**kwargs)
        self.provider = provider
        self.tenant_id.label.text = provider.tenant_word.capitalize()
        self.tenant_id.choices = [(t.tenant_id, t.name or t.tenant_id) for t in tenants]

    def validate_tenant_id(self, field):
        if field.data not in {value for value, _label in field.choices}:
            raise ValidationError(f"Choose one of the {self.provider.tenant_words} you gave PlanMan access to.")




# -- settings pages ---------------------------------------------------------------

def one_of(allowed: set[str], message: str):
    """A picker's validator: something chosen, and one of what the provider listed."""
    def check(form, field):
        if not field.data:
            raise ValidationError("Choose one.")
        if field.data not in allowed:
            raise ValidationError(message)

    return check


class RatePickersForm(FlaskForm):
    """A settings form with one picker per PlanMan tax rate: the provider's
    tax rate (or type) its invoice lines go with. Built by ``with_rate_pickers``."""

    tax_rate_fields: list[tuple[object, str]] = []  # (PlanMan TaxRate, field name)

    def tax_rate_rows(self):
        """(PlanMan tax rate, its picker), in display order."""
        return [(rate, self[name]) for rate, name in self.tax_rate_fields]

    def chosen_per_rate(self) -> dict[str, str]:
        """What was picked for each PlanMan tax rate, by its id."""
        return {str(rate.id): self[name].data for rate, name in self.tax_rate_fields}


def with_rate_pickers(form_class: type[RatePickersForm], planman_rates: list, *, prefix: str,
                      allowed: set[str], message: str) -> type[RatePickersForm]:
    """``form_class`` with a picker named ``<prefix><rate id>`` per PlanMan rate
    (WTForms reads fields from the class, so each form gets a class of its own)."""
    class Form(form_class):
        pass

    fields = []
    for rate in planman_rates:
        name = f"{prefix}{rate.id}"
        setattr(Form, name, SelectField(rate.name, validate_choice=False, validators=[one_of(allowed, message)]))
        fields.append((rate, name))
    Form.tax_rate_fields = fields
    return Form
