"""The two demo organisations every fresh (or reset) stand-in holds.

Tenant ids are fixed so tests and people can refer to them:
  UK_TENANT_ID  "Demo Company (UK)"  GBP, ShortCode "!dmoUK", UK VAT rates
  US_TENANT_ID  "Demo Company (US)"  USD, ShortCode "!dmoUS", US sales-tax rates
As in Xero, an organisation's tenantId equals its OrganisationID.
Both use the same account codes (200 Sales, 260 Other Revenue, 270 Interest
Income, ...) so a client configured with "200" works against either."""
from __future__ import annotations

import json
import uuid

from .xdates import ms_date

UK_TENANT_ID = "3c288be6-b007-4363-8838-fd102ad964be"
US_TENANT_ID = "79e1a4b3-d30c-4fe7-93d6-ddf99e57607d"
UK_NAME = "Demo Company (UK)"
US_NAME = "Demo Company (US)"
UK_SHORT_CODE = "!dmoUK"
US_SHORT_CODE = "!dmoUS"
TENANT_IDS = (UK_TENANT_ID, US_TENANT_ID)

_CREATED = 1735689600000  # 2025-01-01, a fixed creation date for the demo data


def _id(tenant_id: str, kind: str, key: str) -> str:
    # Stable ids across resets, so a client's cached AccountID stays valid.
    return str(uuid.uuid5(uuid.UUID(tenant_id), f"{kind}:{key}"))


def _organisation(tenant_id, name, short_code, currency, country, version, timezone):
    return {
        "OrganisationID": tenant_id, "APIKey": "", "Name": name, "LegalName": name,
        "PaysTax": True, "Version": version, "OrganisationType": "COMPANY",
        "BaseCurrency": currency, "CountryCode": country, "IsDemoCompany": True,
        "OrganisationStatus": "ACTIVE", "FinancialYearEndDay": 31, "FinancialYearEndMonth": 12,
        "SalesTaxBasis": "ACCRUALS", "SalesTaxPeriod": "QUARTERLY", "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive", "CreatedDateUTC": ms_date(_CREATED, offset=False),
        "OrganisationEntityType": "COMPANY", "Timezone": timezone, "ShortCode": short_code,
        "Edition": "BUSINESS", "Class": "DEMO", "LineOfBusiness": "Professional services",
        "Addresses": [], "Phones": [], "ExternalLinks": [], "PaymentTerms": {},
    }


def _account(tenant_id, code, name, type_, class_, tax_type, system=None, description=""):
    account = {
        "AccountID": _id(tenant_id, "account", code), "Code": code, "Name": name, "Status": "ACTIVE",
        "Type": type_, "TaxType": tax_type, "Description": description, "Class": class_,
        "EnablePaymentsToAccount": False, "ShowInExpenseClaims": False,
        "ReportingCode": "", "ReportingCodeName": "", "HasAttachments": False,
        "UpdatedDateUTC": ms_date(_CREATED), "AddToWatchlist": False,
    }
    if system:
        account["SystemAccount"] = system
    if type_ == "BANK":
        account.update(BankAccountNumber="12345678", BankAccountType="BANK", CurrencyCode=None)
    return account


def _accounts(tenant_id, sales_tax, expense_tax, none_tax, currency):
    accounts = [
        _account(tenant_id, "090", "Business Bank Account", "BANK", "ASSET", none_tax),
        _account(tenant_id, "200", "Sales", "REVENUE", "REVENUE", sales_tax,
                 description="Income from any normal business activity"),
        _account(tenant_id, "260", "Other Revenue", "REVENUE", "REVENUE", sales_tax,
                 description="Any other income that does not relate to normal business activities"),
        _account(tenant_id, "270", "Interest Income", "REVENUE", "REVENUE", none_tax,
                 description="Interest income"),
        _account(tenant_id, "310", "Cost of Goods Sold", "DIRECTCOSTS", "EXPENSE", expense_tax),
        _account(tenant_id, "429", "General Expenses", "EXPENSE", "EXPENSE", expense_tax),
        _account(tenant_id, "610", "Accounts Receivable", "CURRENT", "ASSET", none_tax, system="DEBTORS"),
        _account(tenant_id, "800", "Accounts Payable", "CURRLIAB", "LIABILITY", none_tax, system="CREDITORS"),
        _account(tenant_id, "855", "Stripe clearing", "CURRLIAB", "LIABILITY", none_tax,
                 description="Card payments collected by Stripe, awaiting payout"),
        _account(tenant_id, "856", "GoCardless clearing", "CURRLIAB", "LIABILITY", none_tax,
                 description="Direct Debit payments collected by GoCardless, awaiting payout"),
        _account(tenant_id, "860", "Rounding", "CURRLIAB", "LIABILITY", none_tax, system="ROUNDING",
                 description="An account for rounding differences"),
    ]
    accounts[0]["CurrencyCode"] = currency
    for account in accounts:
        if account["Code"] in ("855", "856"):
            account["EnablePaymentsToAccount"] = True  # clearing accounts
    return accounts


def _rate(name, tax_type, rate, revenue=True, expenses=False):
    return {
        "Name": name, "TaxType": tax_type, "ReportTaxType": "OUTPUT" if revenue else "INPUT",
        "CanApplyToAssets": expenses, "CanApplyToEquity": expenses, "CanApplyToExpenses": expenses,
        "CanApplyToLiabilities": expenses, "CanApplyToRevenue": revenue,
        "DisplayTaxRate": rate, "EffectiveRate": rate, "Status": "ACTIVE",
        "TaxComponents": [{"Name": name, "Rate": rate, "IsCompound": False, "IsNonRecoverable": False}],
    }


UK_TAX_RATES = [
    _rate("20% (VAT on Income)", "OUTPUT2", 20.0),
    _rate("5% (VAT on Income)", "RROUTPUT", 5.0),
    _rate("Zero Rated Income", "ZERORATEDOUTPUT", 0.0),
    _rate("Exempt Income", "EXEMPTOUTPUT", 0.0),
    _rate("No VAT", "NONE", 0.0, revenue=True, expenses=True),
    _rate("20% (VAT on Expenses)", "INPUT2", 20.0, revenue=False, expenses=True),
]
US_TAX_RATES = [
    _rate("Tax Exempt", "NONE", 0.0, revenue=True, expenses=True),
    _rate("Tax on Sales", "OUTPUT", 0.0),
    _rate("State Sales Tax (CA)", "TAX001", 7.25),
    _rate("City Sales Tax (NYC)", "TAX002", 8.875),
    _rate("Tax on Purchases", "INPUT", 0.0, revenue=False, expenses=True),
]


def _branding(tenant_id):
    return [{"BrandingThemeID": _id(tenant_id, "theme", "standard"), "Name": "Standard",
             "LogoUrl": None, "Type": "INVOICE", "SortOrder": 0, "CreatedDateUTC": ms_date(_CREATED, offset=False)}]


def organisations() -> list[dict]:
    """Rows for the organisations table, freshly built (callers may mutate them)."""
    return [
        dict(tenant_id=UK_TENANT_ID, short_code=UK_SHORT_CODE,
             doc=_organisation(UK_TENANT_ID, UK_NAME, UK_SHORT_CODE, "GBP", "GB", "UK", "GMTSTANDARDTIME"),
             accounts=_accounts(UK_TENANT_ID, "OUTPUT2", "INPUT2", "NONE", "GBP"),
             tax_rates=UK_TAX_RATES, branding_themes=_branding(UK_TENANT_ID)),
        dict(tenant_id=US_TENANT_ID, short_code=US_SHORT_CODE,
             doc=_organisation(US_TENANT_ID, US_NAME, US_SHORT_CODE, "USD", "US", "US", "EASTERNSTANDARDTIME"),
             accounts=_accounts(US_TENANT_ID, "TAX001", "INPUT", "NONE", "USD"),
             tax_rates=US_TAX_RATES, branding_themes=_branding(US_TENANT_ID)),
    ]


def add_organisation(db, name: str) -> dict:
    """Another organisation like the UK demo one (GBP, UK VAT rates, the same
    account codes), for runs that need many (a benchmark's fifty firms)."""
    tenant_id = str(uuid.uuid5(uuid.UUID(UK_TENANT_ID), f"organisation:{name}"))
    short_code = "!" + tenant_id.replace("-", "")[:5]
    row = dict(tenant_id=tenant_id, short_code=short_code,
               doc=_organisation(tenant_id, name, short_code, "GBP", "GB", "UK", "GMTSTANDARDTIME"),
               accounts=_accounts(tenant_id, "OUTPUT2", "INPUT2", "NONE", "GBP"),
               tax_rates=UK_TAX_RATES, branding_themes=_branding(tenant_id))
    _insert(db, row)
    return {"tenantId": tenant_id, "name": name, "shortCode": short_code}


def _insert(db, org: dict) -> None:
    db.execute(
        "INSERT OR IGNORE INTO organisations(tenant_id, short_code, doc, accounts, tax_rates, branding_themes) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (org["tenant_id"], org["short_code"], json.dumps(org["doc"]), json.dumps(org["accounts"]),
         json.dumps(org["tax_rates"]), json.dumps(org["branding_themes"])))


def seed(db) -> None:
    """Insert the demo organisations if they are missing (db is inside a transaction)."""
    for org in organisations():
        _insert(db, org)
