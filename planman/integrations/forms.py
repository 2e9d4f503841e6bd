"""Forms of the connect flow. Choices come from what the provider returned, and
a submitted value outside them gets a message beside its field."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField
from wtforms.validators import ValidationError

from planman.forms_common import format_decimal
from planman.integrations.connections import INVOICE_STATUS_CHOICES


class ConfirmForm(FlaskForm):
    """A bare form for POST buttons (Connect, Disconnect, Refresh): the CSRF token only."""


class ChooseTenantForm(FlaskForm):
    tenant_id = RadioField("Organisation", validate_choice=False)

    def validate_tenant_id(self, field):
        if field.data not in {value for value, _label in field.choices}:
            raise ValidationError("Choose one of the organisations you gave PlanMan access to.")


def _one_of(allowed: set[str], message: str):
    def check(form, field):
        if not field.data:
            raise ValidationError("Choose one.")
        if field.data not in allowed:
            raise ValidationError(message)

    return check


class XeroSettingsForm(FlaskForm):
    sales_account_code = SelectField("Default sales account", validate_choice=False)
    no_tax_type = SelectField("Tax type for lines without a tax rate", validate_choice=False)
    invoice_status = SelectField("Status of invoices sent to Xero", validate_choice=False)
    payment_account_code = SelectField("Account for payments received", validate_choice=False)

    tax_rate_fields: list[tuple[object, str]]  # (PlanMan TaxRate, field name)

    def tax_rate_rows(self):
        """(PlanMan tax rate, its Xero tax type field), in display order."""
        return [(rate, self[name]) for rate, name in self.tax_rate_fields]

    def tax_types(self) -> dict[str, str]:
        return {str(rate.id): self[name].data for rate, name in self.tax_rate_fields}

    xero_rates: dict[str, dict]  # Xero TaxType -> its name and percentage

    def rate_mismatch(self, rate, field) -> str:
        """Why the Xero tax type chosen for a PlanMan rate would bill another total, or ""."""
        xero_rate = self.xero_rates.get(field.data or "")
        try:
            xero_percent = Decimal(str(xero_rate["rate"])) if xero_rate else None
        except (InvalidOperation, KeyError):
            return ""
        if xero_percent is None or xero_percent == Decimal(rate.percent):
            return ""
        return (f"Xero's “{xero_rate.get('name') or field.data}” is {format_decimal(xero_percent)}%, but {rate.name} is "
                f"{format_decimal(rate.percent)}% in PlanMan: Xero would bill a different total than PlanMan shows. "
                f"Choose a Xero tax type at {format_decimal(rate.percent)}%, or correct the rate.")


def xero_settings_form(settings: dict, tax_rates: list, **kwargs) -> XeroSettingsForm:
    """The settings form for a connection's ``settings``, one tax type picker per PlanMan rate."""
    accounts = settings.get("xero_accounts") or []
    xero_rates = settings.get("xero_tax_rates") or []
    account_choices = [(a["code"], f"{a['code']} · {a['name']}" if a.get("name") else a["code"]) for a in accounts]
    tax_choices = [(r["type"], f"{r['name']} ({r['type']})" if r.get("name") else r["type"]) for r in xero_rates]
    account_codes = {code for code, _ in account_choices}
    tax_type_codes = {code for code, _ in tax_choices}
    unknown_tax = "Choose one of the tax types your Xero organisation has."

    class Form(XeroSettingsForm):
        pass

    fields = []
    for rate in tax_rates:
        name = f"tax_type_{rate.id}"
        setattr(Form, name, SelectField(
            f"{rate.name}", validate_choice=False, validators=[_one_of(tax_type_codes, unknown_tax)]))
        fields.append((rate, name))
    Form.tax_rate_fields = fields
    Form.xero_rates = {r["type"]: r for r in xero_rates}

    chosen_tax_types = settings.get("tax_types") or {}
    data = {
        "sales_account_code": settings.get("sales_account_code") or "",
        "no_tax_type": settings.get("no_tax_type") or "",
        "invoice_status": settings.get("invoice_status") or "DRAFT",
        "payment_account_code": settings.get("payment_account_code") or "",
        **{name: chosen_tax_types.get(str(rate.id), "") for rate, name in fields},
    }
    form = Form(data=data, **kwargs)
    form.sales_account_code.choices = [("", "Choose an account…")] + account_choices
    form.sales_account_code.validators = [_one_of(account_codes, "Choose one of the sales accounts your Xero "
                                                                 "organisation has.")]
    form.no_tax_type.choices = [("", "Choose a tax type…")] + tax_choices
    form.no_tax_type.validators = [_one_of(tax_type_codes, unknown_tax)]
    form.invoice_status.choices = list(INVOICE_STATUS_CHOICES)
    form.invoice_status.validators = [_one_of(set(dict(INVOICE_STATUS_CHOICES)),
                                              "Choose Draft, Awaiting approval or Awaiting payment.")]
    # Optional: without one, payments received are not recorded in Xero (the invoice page says so).
    payment_accounts = [(a["code"], f"{a['code']} · {a['name']}" if a.get("name") else a["code"])
                        for a in settings.get("xero_payment_accounts") or []]
    form.payment_account_code.choices = [("", "None: do not record payments in Xero")] + payment_accounts
    allowed_payment_accounts = {code for code, _ in payment_accounts}

    def payment_account_known(form, field):
        if field.data and field.data not in allowed_payment_accounts:
            raise ValidationError("Choose one of the bank or payment accounts your Xero organisation has.")

    form.payment_account_code.validators = [payment_account_known]
    for _rate, name in fields:
        form[name].choices = [("", "Choose a tax type…")] + tax_choices
    return form
