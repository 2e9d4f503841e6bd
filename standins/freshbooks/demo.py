"""The demo identity and its businesses every fresh (or reset) FreshBooks stand-in holds.

One identity (the user who approves on the consent page) with two business
memberships, as REFERENCE.md section 3 asks (≥ 2), so the admin must pick one.
Ids are fixed so tests and people can refer to them."""
from __future__ import annotations

import json

IDENTITY = {"identity_id": 7001, "first_name": "Demo", "last_name": "Owner",
            "email": "demo@freshbooks-stand-in.test", "language": "en", "confirmed_at": "2025-01-01T00:00:00",
            "created_at": "2025-01-01T00:00:00"}

UK_ACCOUNT_ID, UK_BUSINESS_ID, UK_NAME = "bK9pQ2", 1001, "Demo Bookkeeping Ltd (UK)"
US_ACCOUNT_ID, US_BUSINESS_ID, US_NAME = "zT4mW7", 1002, "Demo Studio Inc (US)"
ACCOUNT_IDS = (UK_ACCOUNT_ID, US_ACCOUNT_ID)

BUSINESSES = [
    {"id": UK_BUSINESS_ID, "business_uuid": "6f1c1b0e-3a51-4c2b-9a57-0f0d1e5b0a01", "name": UK_NAME,
     "account_id": UK_ACCOUNT_ID, "currency_code": "GBP", "country": "GB", "date_format": "dd/mm/yyyy",
     "taxes": [{"taxid": 11, "name": "VAT", "amount": "20", "number": "GB123456789", "compound": False},
               {"taxid": 12, "name": "VAT Reduced", "amount": "5", "number": "GB123456789", "compound": False}]},
    {"id": US_BUSINESS_ID, "business_uuid": "6f1c1b0e-3a51-4c2b-9a57-0f0d1e5b0a02", "name": US_NAME,
     "account_id": US_ACCOUNT_ID, "currency_code": "USD", "country": "US", "date_format": "mm/dd/yyyy",
     "taxes": [{"taxid": 21, "name": "Sales Tax", "amount": "8.875", "number": None, "compound": False}]},
]
# Membership ids differ from business ids on purpose: REFERENCE.md section 2 warns they are not the same.
MEMBERSHIP_IDS = {UK_BUSINESS_ID: 501, US_BUSINESS_ID: 502}


def seed(db) -> None:
    for business in BUSINESSES:
        taxes = business["taxes"]
        doc = {k: v for k, v in business.items() if k != "taxes"}
        db.execute("INSERT OR IGNORE INTO businesses(account_id, business_id, doc, taxes) VALUES (?, ?, ?, ?)",
                   (business["account_id"], business["id"], json.dumps(doc), json.dumps(taxes)))


def memberships(db) -> list[dict]:
    """/users/me's business_memberships: {id (membership), role, business: {...}}."""
    rows = db.execute("SELECT business_id, doc FROM businesses ORDER BY business_id").fetchall()
    return [{"id": MEMBERSHIP_IDS.get(r["business_id"], r["business_id"]), "role": "owner", "unacknowledged_change": False,
             "fasttrack_token": None, "business": json.loads(r["doc"])} for r in rows]
