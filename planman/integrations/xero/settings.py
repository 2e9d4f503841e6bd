"""Xero's settings for a connection: the organisation's lists (loaded by
``XeroProvider.load_tenant_details``), the admin's choices and the form that
picks them. Choices come from what Xero returned, and a submitted value
outside them gets a message beside its field."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from wtforms import SelectField
from wtforms.validators import ValidationError

from planman.extensions import db
from planman.forms_common import format_decimal
from planman.integrations.forms import RatePickersForm, one_of, with_rate_pickers

# Status new invoices are pushed with (Xero's values, PlanMan's words).
INVOICE_STATUS_CHOICES = [
    ("DRAFT", "Draft"),
    ("SUBMITTED", "Awaiting approval"),
    ("AUTHORISED", "Awaiting payment"),
]
DEFAULT_INVOICE_STATUS = "DRAFT"
DEFAULT_SALES_ACCOUNT = "200"
DEFAULT_NO_TAX_TYPE = "NONE"

# Where the organisation's lists live in Connection.settings. These key names
# are stored in every connected firm's settings: renaming one needs a migration.
ACCOUNTS_KEY = "xero_accounts"
TAX_RATES_KEY = "xero_tax_rates"
PAYMENT_ACCOUNTS_KEY = "xero_payment_accounts"

# What a connection learns about its tenant (refresh_tenant_details); dropped
# when another tenant is attached.
TENANT_DETAIL_KEYS = (ACCOUNTS_KEY, TAX_RATES_KEY, PAYMENT_ACCOUNTS_KEY, "base_currency", "currencies")
# The account a payment of each method (Payment.method) is recorded into, when the
# admin chose one; any other method, or one not chosen, goes into "payment_account_code"
# (the account every payment went into before these existed).
METHOD_ACCOUNT_KEYS = {"card": "card_payment_account_code", "direct_debit": "direct_debit_payment_account_code"}

# What an admin chose for a tenant; kept when the same tenant is reconnected.
CHOICE_KEYS = ("sales_account_code", "tax_types", "no_tax_type", "invoice_status", "payment_account_code",
               *METHOD_ACCOUNT_KEYS.values())


def payment_account_for(settings: dict, method: str) -> str:
    """The account code a payment of ``method`` is recorded into, or "" (none chosen)."""
    key = METHOD_ACCOUNT_KEYS.get(method)
    return (key and settings.get(key)) or settings.get("payment_account_code") or ""


def apply_default_choices(settings: dict, tax_rates: list) -> dict:
    """Fill in choices not made yet (or no longer valid) from what Xero returned."""
    account_codes = {a["code"] for a in settings.get(ACCOUNTS_KEY) or []}
    xero_rates = settings.get(TAX_RATES_KEY) or []
    tax_types = {r["type"] for r in xero_rates}

    if settings.get("sales_account_code") not in account_codes:
        if DEFAULT_SALES_ACCOUNT in account_codes:
            settings["sales_account_code"] = DEFAULT_SALES_ACCOUNT
        else:
            settings.pop("sales_account_code", None)

    chosen = dict(settings.get("tax_types") or {})
    for rate in tax_rates:
        key = str(rate.id)
        if chosen.get(key) not in tax_types:
            suggestion = suggest_tax_type(Decimal(rate.percent), xero_rates)
            if suggestion:
                chosen[key] = suggestion
            else:
                chosen.pop(key, None)
    settings["tax_types"] = chosen

    if settings.get("no_tax_type") not in tax_types:
        if DEFAULT_NO_TAX_TYPE in tax_types:
            settings["no_tax_type"] = DEFAULT_NO_TAX_TYPE
        else:
            settings.pop("no_tax_type", None)
    if settings.get("invoice_status") not in dict(INVOICE_STATUS_CHOICES):
        settings["invoice_status"] = DEFAULT_INVOICE_STATUS
    payment_codes = {a["code"] for a in settings.get(PAYMENT_ACCOUNTS_KEY) or []}
    for key in ("payment_account_code", *METHOD_ACCOUNT_KEYS.values()):
        if settings.get(key) and settings[key] not in payment_codes:
            settings.pop(key)  # gone from Xero: the admin chooses again (never a guess)
    return settings


def save_settings(connection, *, sales_account_code: str, tax_types: dict[str, str],
                  no_tax_type: str, invoice_status: str, payment_account_code: str = "",
                  method_accounts: dict[str, str] | None = None) -> None:
    """Store an admin's choices (already validated against Xero's lists by the form).
    ``method_accounts``: the account chosen for each payment method ("" = the account above)."""
    settings = dict(connection.settings or {})
    allowed_accounts = {a["code"] for a in settings.get(ACCOUNTS_KEY) or []}
    allowed_types = {r["type"] for r in settings.get(TAX_RATES_KEY) or []}
    payment_codes = {"", *(a["code"] for a in settings.get(PAYMENT_ACCOUNTS_KEY) or [])}
    method_accounts = method_accounts or {}
    if sales_account_code not in allowed_accounts or no_tax_type not in allowed_types \
            or invoice_status not in dict(INVOICE_STATUS_CHOICES) \
            or any(value not in allowed_types for value in tax_types.values()) \
            or payment_account_code not in payment_codes \
            or any(method not in METHOD_ACCOUNT_KEYS or code not in payment_codes
                   for method, code in method_accounts.items()):
        raise ValueError("settings must come from the lists Xero returned")
    settings.update(
        sales_account_code=sales_account_code,
        tax_types={str(key): value for key, value in tax_types.items()},
        no_tax_type=no_tax_type,
        invoice_status=invoice_status,
        payment_account_code=payment_account_code,
        **{METHOD_ACCOUNT_KEYS[method]: code for method, code in method_accounts.items()},
    )
    connection.settings = settings
    db.session.commit()


class XeroSettingsForm(RatePickersForm):
    sales_account_code = SelectField("Default sales account", validate_choice=False)
    no_tax_type = SelectField("Tax type for lines without a tax rate", validate_choice=False)
    invoice_status = SelectField("Status of invoices sent to Xero", validate_choice=False)
    payment_account_code = SelectField("Account for payments received", validate_choice=False)
    card_payment_account_code = SelectField("Account for card payments", validate_choice=False)
    direct_debit_payment_account_code = SelectField("Account for Direct Debit payments", validate_choice=False)

    def method_accounts(self) -> dict[str, str]:
        """The account chosen for each payment method ("" = the account for payments received)."""
        return {method: self[key].data or "" for method, key in METHOD_ACCOUNT_KEYS.items()}

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
    accounts = settings.get(ACCOUNTS_KEY) or []
    xero_rates = settings.get(TAX_RATES_KEY) or []
    account_choices = [(a["code"], f"{a['code']} · {a['name']}" if a.get("name") else a["code"]) for a in accounts]
    tax_choices = [(r["type"], f"{r['name']} ({r['type']})" if r.get("name") else r["type"]) for r in xero_rates]
    account_codes = {code for code, _ in account_choices}
    tax_type_codes = {code for code, _ in tax_choices}
    unknown_tax = "Choose one of the tax types your Xero organisation has."

    Form = with_rate_pickers(XeroSettingsForm, tax_rates, prefix="tax_type_", allowed=tax_type_codes,
                             message=unknown_tax)
    Form.xero_rates = {r["type"]: r for r in xero_rates}
    fields = Form.tax_rate_fields

    chosen_tax_types = settings.get("tax_types") or {}
    data = {
        "sales_account_code": settings.get("sales_account_code") or "",
        "no_tax_type": settings.get("no_tax_type") or "",
        "invoice_status": settings.get("invoice_status") or "DRAFT",
        "payment_account_code": settings.get("payment_account_code") or "",
        **{key: settings.get(key) or "" for key in METHOD_ACCOUNT_KEYS.values()},
        **{name: chosen_tax_types.get(str(rate.id), "") for rate, name in fields},
    }
    form = Form(data=data, **kwargs)
    form.sales_account_code.choices = [("", "Choose an account…")] + account_choices
    form.sales_account_code.validators = [one_of(account_codes, "Choose one of the sales accounts your Xero "
                                                                 "organisation has.")]
    form.no_tax_type.choices = [("", "Choose a tax type…")] + tax_choices
    form.no_tax_type.validators = [one_of(tax_type_codes, unknown_tax)]
    form.invoice_status.choices = list(INVOICE_STATUS_CHOICES)
    form.invoice_status.validators = [one_of(set(dict(INVOICE_STATUS_CHOICES)),
                                              "Choose Draft, Awaiting approval or Awaiting payment.")]
    # Optional: without one, payments received are not recorded in Xero (the invoice page says so).
    payment_accounts = [(a["code"], f"{a['code']} · {a['name']}" if a.get("name") else a["code"])
                        for a in settings.get(PAYMENT_ACCOUNTS_KEY) or []]
    form.payment_account_code.choices = [("", "None: do not record payments in Xero")] + payment_accounts
    allowed_payment_accounts = {code for code, _ in payment_accounts}

    def payment_account_known(form, field):
        if field.data and field.data not in allowed_payment_accounts:
            raise ValidationError("Choose one of the bank or payment accounts your Xero organisation has.")

    form.payment_account_code.validators = [payment_account_known]
    # Unset, a method's payments go where they went before there was a choice: the account above.
    for key in METHOD_ACCOUNT_KEYS.values():
        form[key].choices = [("", "Same as payments received")] + payment_accounts
        form[key].validators = [payment_account_known]
    for _rate, name in fields:
        form[name].choices = [("", "Choose a tax type…")] + tax_choices
    return form


def suggest_tax_type(percent: Decimal, xero_tax_rates: list[dict]) -> str:
    """The Xero tax type whose rate equals a PlanMan rate, if exactly one does."""
    matches = []
    for rate in xero_tax_rates:
        try:
            if Decimal(str(rate.get("rate"))) == Decimal(percent):
                matches.append(rate["type"])
        except Exception:
            continue
    return matches[0] if len(matches) == 1 else ""
