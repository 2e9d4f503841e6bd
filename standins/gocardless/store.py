"""The GoCardless stand-in's tables, on the core store (tokens, idempotency, settings, webhooks, ...).

Every resource is one JSON document with its organisation, so one
organisation's token never reaches another's records."""
from __future__ import annotations

from ..core import webhooks
from ..core.store import SCHEMA as CORE_SCHEMA
from ..core.store import Store as CoreStore

GOCARDLESS_SCHEMA = """
CREATE TABLE IF NOT EXISTS organisations (
    id TEXT PRIMARY KEY, email TEXT NOT NULL, creditor TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grant_organisations (
    grant_id TEXT PRIMARY KEY, organisation_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, organisation_id TEXT NOT NULL, doc TEXT NOT NULL,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ix_resources_org_kind ON resources(organisation_id, kind);
"""


class Store(CoreStore):
    SCHEMA = CORE_SCHEMA + webhooks.SCHEMA + GOCARDLESS_SCHEMA
