"""The Stripe accounts every fresh (or reset) stand-in holds, ready to connect to the platform.

Ids are fixed so tests and people can refer to them."""
from __future__ import annotations

import json
import time

UK_ACCOUNT_ID = "acct_1StandinDemoUK"
US_ACCOUNT_ID = "acct_1StandinDemoUS"
UNVERIFIED_ACCOUNT_ID = "acct_1StandinNotReady"


def account_doc(account_id: str, name: str, country: str, currency: str, email: str, *,
                charges_enabled: bool = True) -> dict:
    due = [] if charges_enabled else ["business_profile.url", "external_account", "individual.verification.document"]
    return {
        "id": account_id, "object": "account", "type": "standard",
        "business_profile": {"name": name, "url": None, "mcc": None, "support_email": email},
        "business_type": "company", "capabilities": {"card_payments": "active" if charges_enabled else "inactive"},
        "charges_enabled": charges_enabled, "country": country, "created": int(time.time()),
        "default_currency": currency, "details_submitted": charges_enabled, "email": email,
        "payouts_enabled": charges_enabled,
        "requirements": {"currently_due": due, "eventually_due": due, "past_due": [],
                         "disabled_reason": None if charges_enabled else "requirements.past_due",
                         "current_deadline": None, "errors": [], "pending_verification": []},
        "settings": {"dashboard": {"display_name": name, "timezone": "Europe/London"}},
        "metadata": {},
    }


DEMO_ACCOUNTS = (
    account_doc(UK_ACCOUNT_ID, "Demo Practice Ltd (UK)", "GB", "gbp", "owner@demo-practice.test"),
    account_doc(US_ACCOUNT_ID, "Demo Practice Inc (US)", "US", "usd", "owner@demo-practice-us.test"),
    account_doc(UNVERIFIED_ACCOUNT_ID, "Not Yet Verified Ltd", "GB", "gbp", "owner@not-verified.test",
                charges_enabled=False),
)


def seed(db) -> None:
    for doc in DEMO_ACCOUNTS:
        db.execute("INSERT OR IGNORE INTO accounts(id, doc, created) VALUES (?, ?, ?)",
                   (doc["id"], json.dumps(doc), time.time()))
