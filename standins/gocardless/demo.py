"""The demo organisations a fresh (or reset) GoCardless stand-in holds.

The first is the one the consent page connects; its creditor starts with
verification "action_required", as a new GoCardless account does, so the
"no money moves until verification is done" path shows (the control API or
the page marks it verified). Ids are fixed so tests and people can refer to them."""
from __future__ import annotations

import json

DEMO_ORG, DEMO_CREDITOR = "OR000DEMO0001", "CR000DEMO0001"
OTHER_ORG, OTHER_CREDITOR = "OR000OTHER001", "CR000OTHER001"
ORGANISATIONS = [
    (DEMO_ORG, "owner@demo-practice.test",
     {"id": DEMO_CREDITOR, "name": "Demo Practice Ltd", "verification_status": "action_required",
      "country_code": "GB", "created_at": "2026-01-01T00:00:00.000Z"}),
    (OTHER_ORG, "owner@other-practice.test",
     {"id": OTHER_CREDITOR, "name": "Other Practice Ltd", "verification_status": "successful",
      "country_code": "GB", "created_at": "2026-01-01T00:00:00.000Z"}),
]


def seed(db) -> None:
    for org_id, email, creditor in ORGANISATIONS:
        db.execute("INSERT OR IGNORE INTO organisations(id, email, creditor) VALUES (?, ?, ?)",
                   (org_id, email, json.dumps(creditor)))
