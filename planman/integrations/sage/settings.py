"""Sage's settings for a connection: the business's INCOME ledger accounts and
tax rates (loaded by ``SageProvider.load_tenant_details``), the admin's choices
and the form that picks them. Choices come from what Sage returned, and a
submitted value outside them gets a message beside its field."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from wtforms import SelectField

from planman.extensions import db
from planman.forms_common import format_decimal
from planman.integrations.forms import RatePickersForm, one_of, with_rate_pickers

# Where the business's lists live in Connection.settings (stored in every connected
# firm's settings: renaming one needs a migration).
LEDGER_ACCOUNTS_KEY = "sage_ledger_accounts"
TAX_RATES_KEY = "sage_tax_rates"
TENANT_DETAIL_KEYS = (LEDGER_ACCOUNTS_KEY, TAX_RATES_KEY, "sage_country", "sage_currency")
CHOICE_KEYS = ("ledger_account_id", "tax_rates", "no_tax_rate_id")
# Sage's own ids of the rate for lines without tax, by country (GB, IE), suggested first.
NO_TAX_SUGGESTIONS = ("GB_NO_TAX", "IE_NO_TAX", "GB_ZERO", "IE_ZERO")


def ledger_accounts(items: list[dict]) -> list[dict]:
    """The INCOME accounts a sales invoice line may use (``visible_in=sales``), as pickers show them."""
    return [{"id": str(item["id"]), "code": str(item.get("nominal_code") or ""),
             "name": item.get("name") or item.get("displayed_as") or ""}
            for item in items if item.get("id") and item.get("visible_in_sales") is not False]


def tax_rates(items: list[dict]) -> list[dict]:
    """The business's tax rates usable on sales, with their percentage."""
    found = []
    for item in items:
        if not item.get("id") or item.get("is_visible") is False:
            continue
        found.append({"id": str(item["id"]), "name": item.get("name") or item.get("displayed_as") or item["id"],
                      "rate": str(item.get("percentage") if item.get("percentage") is not None else "")})
    return found


def suggest_tax_rate(percent: Decimal, rates: list[dict]) -> str:
    """The Sage tax rate whose percentage equals a PlanMan rate, if exactly one does."""
    matches = [r["id"] for r in rates if _percent(r) == Decimal(percent)]
    return matches[0] if len(matches) == 1 else ""


def _percent(rate: dict) -> Decimal | None:
    try:
        return Decimal(str(rate.get("rate")))
    except (InvalidOperation, TypeError, ValueError):
        return None


def apply_default_choices(settings: dict, planman_rates: list) -> dict:
    """Fill in choices not made yet (or no longer valid) from what Sage returned."""
    accounts = [a["id"] for a in settings.get(LEDGER_ACCOUNTS_KEY) or []]
    rates = settings.get(TAX_RATES_KEY) or []
    rate_ids = {r["id"] for r in rates}
    if settings.get("ledger_account_id") not in accounts:
        if len(accounts) == 1:
            settings["ledger_account_id"] = accounts[0]
        else:  # several income accounts: the admin chooses (a guess would post sales to the wrong one)
            settings.pop("ledger_account_id", None)
    chosen = dict(settings.get("tax_rates") or {})
    for rate in planman_rates:
        key = str(rate.id)
        if chosen.get(key) not in rate_ids:
            suggestion = suggest_tax_rate(Decimal(rate.percent), rates)
            if suggestion:
                chosen[key] = suggestion
            else:
                chosen.pop(key, None)
    settings["tax_rates"] = chosen
    if settings.get("no_tax_rate_id") not in rate_ids:
        suggestion = next((s for s in NO_TAX_SUGGESTIONS if s in rate_ids), "")
        if suggestion:
            settings["no_tax_rate_id"] = suggestion
        else:
            settings.pop("no_tax_rate_id", None)
    return settings


def save_settings(connection, *, ledger_account_id: str, rates: dict[str, str], no_tax_rate_id: str) -> None:
    """Store an admin's choices (already validated against Sage's lists by the form)."""
    settings = dict(connection.settings or {})
    accounts = {a["id"] for a in settings.get(LEDGER_ACCOUNTS_KEY) or []}
    rate_ids = {r["id"] for r in settings.get(TAX_RATES_KEY) or []}
    if ledger_account_id not in accounts or no_tax_rate_id not in rate_ids \
            or any(value not in rate_ids for value in rates.values()):
        raise ValueError("settings must come from the lists Sage returned")
    settings.update(ledger_account_id=ledger_account_id, tax_rates={str(k): v for k, v in rates.items()},
                    no_tax_rate_id=no_tax_rate_id)
    connection.settings = settings
    db.session.commit()


class SageSettingsForm(RatePickersForm):
    ledger_account_id = SelectField("Income account for invoice lines", validate_choice=False)
    no_tax_rate_id = SelectField("Tax rate for lines without a tax rate", validate_choice=False)

    sage_rates: dict[str, dict]

    def rate_mismatch(self, rate, field) -> str:
        """Why the Sage rate chosen for a PlanMan rate would bill another total, or ""."""
        sage_rate = self.sage_rates.get(field.data or "")
        percent = _percent(sage_rate) if sage_rate else None
        if percent is None or percent == Decimal(rate.percent):
            return ""
        return (f"Sage's “{sage_rate['name']}” is {format_decimal(percent)}%, but {rate.name} is "
                f"{format_decimal(rate.percent)}% in PlanMan: Sage would hold a different tax than PlanMan shows. "
                f"Choose a Sage tax rate at {format_decimal(rate.percent)}%, or correct the rate.")


def sage_settings_form(settings: dict, planman_rates: list, **kwargs) -> SageSettingsForm:
    """The settings form for a connection's ``settings``, one Sage tax rate picker per PlanMan rate."""
    accounts = settings.get(LEDGER_ACCOUNTS_KEY) or []
    rates = settings.get(TAX_RATES_KEY) or []
    account_choices = [(a["id"], f"{a['code']} · {a['name']}" if a.get("code") else a["name"]) for a in accounts]
    rate_choices = [(r["id"], f"{r['name']} ({format_decimal(_percent(r))}%)" if _percent(r) is not None
                     else r["name"]) for r in rates]
    rate_ids = {value for value, _ in rate_choices}
    unknown_rate = "Choose one of the tax rates your Sage business has."

    Form = with_rate_pickers(SageSettingsForm, planman_rates, prefix="tax_rate_", allowed=rate_ids,
                             message=unknown_rate)
    Form.sage_rates = {r["id"]: r for r in rates}
    fields = Form.tax_rate_fields

    chosen = settings.get("tax_rates") or {}
    form = Form(data={"ledger_account_id": settings.get("ledger_account_id") or "",
                      "no_tax_rate_id": settings.get("no_tax_rate_id") or "",
                      **{name: chosen.get(str(rate.id), "") for rate, name in fields}}, **kwargs)
    form.ledger_account_id.choices = [("", "Choose an income account…")] + account_choices
    form.ledger_account_id.validators = [one_of({value for value, _ in account_choices},
                                                 "Choose one of the income accounts your Sage business has.")]
    form.no_tax_rate_id.choices = [("", "Choose a tax rate…")] + rate_choices
    form.no_tax_rate_id.validators = [one_of(rate_ids, unknown_rate)]
    for _rate, name in fields:
        form[name].choices = [("", "Choose a tax rate…")] + rate_choices
    return form
