"""The demo users, their businesses, ledger accounts and tax rates every fresh (or reset) Sage stand-in holds.

Two countries are emulated: GB and IE (issue 15: "GB and IE first"). The demo user
reaches one business in each (REF 2: a token belongs to a user who may reach several
businesses; REF 3 asks for at least two); a second user owns one more GB business,
so two PlanMan firms connected by different users stay apart. Ids are fixed so tests
and people can refer to them; the ledger accounts' nominal codes and names follow
Sage's UK/IE default charts of accounts *(guess: from Sage's default charts as users
see them, not from REF)*; tax-rate ids are Sage's country-prefixed ids (GB_STANDARD,
IE_STANDARD, ...) *(guess: REF names no ids)*, with each country's VAT rates."""
from __future__ import annotations

import json
import uuid

_NS = uuid.UUID("5a9e0f3c-6d2b-4c1e-9b7a-3f1d2c4b5a60")


def sage_id(*parts) -> str:
    """A fixed 32-hex-digit id (Sage's ids are GUIDs without dashes)."""
    return uuid.uuid5(_NS, ":".join(map(str, parts))).hex


DEMO_USER = "demo@sage-stand-in.test"
OTHER_USER = "other@sage-stand-in.test"
USERS = {DEMO_USER: {"id": sage_id("user", DEMO_USER), "first_name": "Demo", "last_name": "Owner"},
         OTHER_USER: {"id": sage_id("user", OTHER_USER), "first_name": "Other", "last_name": "Owner"}}

GB_BUSINESS_ID, GB_NAME = sage_id("business", "gb"), "Demo Bookkeeping Ltd (GB)"
IE_BUSINESS_ID, IE_NAME = sage_id("business", "ie"), "Demo Accountants Ltd (IE)"
OTHER_BUSINESS_ID, OTHER_NAME = sage_id("business", "other"), "Other Practice Ltd (GB)"

COUNTRIES = {
    "GB": {"currency": "GBP", "address": ("1 High Street", "London", "EC1A 1BB"),
           "tax_rates": [("GB_STANDARD", "Standard", "20.0"), ("GB_LOWER", "Lower", "5.0"),
                         ("GB_ZERO", "Zero", "0.0"), ("GB_EXEMPT", "Exempt", "0.0"),
                         ("GB_NO_TAX", "No Tax", "0.0")]},
    "IE": {"currency": "EUR", "address": ("1 Main Street", "Dublin", "D02 X285"),
           "tax_rates": [("IE_STANDARD", "Standard", "23.0"), ("IE_REDUCED", "Reduced", "13.5"),
                         ("IE_SECOND_REDUCED", "Second Reduced", "9.0"), ("IE_ZERO", "Zero", "0.0"),
                         ("IE_EXEMPT", "Exempt", "0.0")]},
}
# (nominal code, name, ledger_account_type, ledger_account_group, visible_in_sales, default tax rate suffix)
CHART = [
    ("1200", "Current", "BANK", "ASSETS", False, None),
    ("1100", "Trade Debtors", "CURRENT_ASSETS", "ASSETS", False, None),
    ("2200", "Sales Tax Control", "CURRENT_LIABILITY", "LIABILITY", False, None),
    ("4000", "Sales Type A", "SALES", "INCOME", True, "STANDARD"),
    ("4001", "Sales Type B", "SALES", "INCOME", True, "STANDARD"),
    ("4900", "Other Income", "OTHER_INCOME", "INCOME", True, "EXEMPT"),
    ("7500", "Office Costs", "OVERHEADS", "EXPENDITURE", False, None),
]

BUSINESSES = [
    {"id": GB_BUSINESS_ID, "name": GB_NAME, "country": "GB", "user": DEMO_USER},
    {"id": IE_BUSINESS_ID, "name": IE_NAME, "country": "IE", "user": DEMO_USER},
    {"id": OTHER_BUSINESS_ID, "name": OTHER_NAME, "country": "GB", "user": OTHER_USER},
]


def ledger_account_id(business_id: str, nominal_code: str) -> str:
    return sage_id("ledger", business_id, nominal_code)


def _ledger_accounts(business: dict) -> list[dict]:
    country = business["country"]
    out = []
    for code, name, kind, group, sales, tax in CHART:
        account_id = ledger_account_id(business["id"], code)
        out.append({"id": account_id, "displayed_as": f"{name} ({code})", "$path": f"/ledger_accounts/{account_id}",
                    "ledger_account_group": {"id": group, "displayed_as": group.title()},
                    "ledger_account_type": {"id": kind, "displayed_as": kind.replace("_", " ").title(),
                                            "$path": f"/ledger_account_types/{kind}"},
                    "included_in_chart": True, "name": name, "display_name": name, "visible_scopes": [],
                    "nominal_code": int(code), "ledger_account_classification": None,
                    "tax_rate": ({"id": f"{country}_{tax}", "displayed_as": tax.title(),
                                  "$path": f"/tax_rates/{country}_{tax}"} if tax else None),
                    "visible_in_sales": sales, "visible_in_expenses": group == "EXPENDITURE",
                    "visible_in_banking": kind == "BANK", "visible_in_other_payments": group == "EXPENDITURE",
                    "visible_in_other_receipts": group == "INCOME", "visible_in_reporting": True,
                    "visible_in_journals": True, "is_control_account": kind in ("CURRENT_ASSETS", "CURRENT_LIABILITY"),
                    "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"})
    return out


def _tax_rates(country: str) -> list[dict]:
    return [{"id": rate_id, "displayed_as": f"{name} {float(pct):.2f}%", "$path": f"/tax_rates/{rate_id}",
             "name": name, "agency": None, "percentage": pct, "percentages": [{"percentage": pct}],
             "is_visible": True, "retailer": False, "editable": False, "deletable": False,
             "is_combined_rate": False, "component_tax_rates": [],
             "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}
            for rate_id, name, pct in COUNTRIES[country]["tax_rates"]]


def business_doc(business: dict) -> dict:
    """GET /businesses/{id}: name, address, country, subscriptions, is_demo (REF 2)."""
    country = business["country"]
    line1, city, postcode = COUNTRIES[country]["address"]
    return {"id": business["id"], "displayed_as": business["name"], "$path": f"/businesses/{business['id']}",
            "name": business["name"], "address_line_1": line1, "address_line_2": "", "city": city,
            "postal_code": postcode, "country": {"id": country, "displayed_as": country, "$path": f"/countries/{country}"},
            "currency": {"id": COUNTRIES[country]["currency"], "displayed_as": COUNTRIES[country]["currency"]},
            "subscriptions": [{"id": "ACCOUNTING_STANDARD", "displayed_as": "Accounting Standard",
                               "active": True}],  # guess: the subscription's shape
            "is_demo": True, "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}


def seed(db) -> None:
    for position, business in enumerate(BUSINESSES):
        db.execute("INSERT OR IGNORE INTO businesses(id, user_email, position, doc, ledger_accounts, tax_rates) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (business["id"], business["user"], position, json.dumps(business_doc(business)),
                    json.dumps(_ledger_accounts(business)), json.dumps(_tax_rates(business["country"]))))
