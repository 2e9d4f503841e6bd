"""The FreshBooks stand-in's tables, on the core store (which holds tokens, settings, counters, ...).

Ids are integers, as FreshBooks' are; businesses are keyed by account_id, the
short alphanumeric id in every accounting URL (REFERENCE.md section 2)."""
from __future__ import annotations

from ..core.store import SCHEMA as CORE_SCHEMA
from ..core.store import Store as CoreStore

FRESHBOOKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS businesses (
    account_id TEXT PRIMARY KEY, business_id INTEGER NOT NULL, doc TEXT NOT NULL, taxes TEXT NOT NULL,
    next_invoice_number INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT, account_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invoices (
    id INTEGER PRIMARY KEY AUTOINCREMENT, account_id TEXT NOT NULL, doc TEXT NOT NULL);
"""


class Store(CoreStore):
    SCHEMA = CORE_SCHEMA + FRESHBOOKS_SCHEMA
