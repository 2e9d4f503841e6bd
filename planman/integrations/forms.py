"""Forms of the connect flow. Choices come from what the provider returned, and
a submitted value outside them gets a message beside its field."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField
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


