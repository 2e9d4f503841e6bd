"""The Sage stand-in's tables, on the core store (which holds tokens, settings, counters, ...).

Ids are 32-hex-digit GUIDs, as Sage's are (REF 2: business GUIDs). Each business
belongs to one demo user; `grant_leads` keeps the business picked on the consent
page, the user's lead business for that grant (what a call without X-Business reaches
when the stand-in is told to behave as Sage does, REF 2)."""
from __future__ import annotations

from ..core.store import SCHEMA as CORE_SCHEMA
from ..core.store import Store as CoreStore

SAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS businesses (
    id TEXT PRIMARY KEY, user_email TEXT NOT NULL, position INTEGER NOT NULL, doc TEXT NOT NULL,
    ledger_accounts TEXT NOT NULL, tax_rates TEXT NOT NULL, next_invoice_number INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS grant_leads (grant_id TEXT PRIMARY KEY, business_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, business_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sales_invoices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, business_id TEXT NOT NULL, doc TEXT NOT NULL);
"""


class Store(CoreStore):
    SCHEMA = CORE_SCHEMA + SAGE_SCHEMA
