"""The Xero stand-in's tables, on the core store (core/store.py holds tokens, settings, counters, ...)."""
from __future__ import annotations

from ..core.store import SCHEMA as CORE_SCHEMA
from ..core.store import Store as CoreStore
from .webhooks import SCHEMA as WEBHOOK_SCHEMA

XERO_SCHEMA = """
CREATE TABLE IF NOT EXISTS organisations (
    tenant_id TEXT PRIMARY KEY, short_code TEXT, doc TEXT NOT NULL,
    accounts TEXT NOT NULL, tax_rates TEXT NOT NULL, branding_themes TEXT NOT NULL,
    next_invoice_number INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS contacts (
    tenant_id TEXT NOT NULL, contact_id TEXT NOT NULL, seq INTEGER NOT NULL,
    updated REAL NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant_id, contact_id));
CREATE TABLE IF NOT EXISTS invoices (
    tenant_id TEXT NOT NULL, invoice_id TEXT NOT NULL, seq INTEGER NOT NULL,
    updated REAL NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant_id, invoice_id));
CREATE TABLE IF NOT EXISTS payments (
    tenant_id TEXT NOT NULL, payment_id TEXT NOT NULL, seq INTEGER NOT NULL,
    updated REAL NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant_id, payment_id));
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY, grant_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
    created REAL, updated REAL);
"""


class Store(CoreStore):
    SCHEMA = CORE_SCHEMA + XERO_SCHEMA + WEBHOOK_SCHEMA
    # State files from before users were modelled (issue 11) lack these columns.
    UPGRADES = (("grants", "user_email", "TEXT NOT NULL DEFAULT 'demo@xero-stand-in.test'"),
                ("codes", "user_email", "TEXT NOT NULL DEFAULT 'demo@xero-stand-in.test'"))
