"""The Stripe stand-in's tables, on the core store (tokens, settings, counters, idempotency, webhooks).

Every API object (checkout sessions, payment intents, charges, refunds,
disputes, events) is one row of `objects`, owned by one account: what
`Stripe-Account` scoping reads."""
from __future__ import annotations

from ..core import webhooks
from ..core.store import SCHEMA as CORE_SCHEMA
from ..core.store import Store as CoreStore

STRIPE_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, doc TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS connections (
    account_id TEXT PRIMARY KEY, client_id TEXT NOT NULL, scope TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code TEXT PRIMARY KEY, client_id TEXT NOT NULL, account_id TEXT NOT NULL, scope TEXT NOT NULL,
    redirect_uri TEXT, created REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, account TEXT NOT NULL,
    kind TEXT NOT NULL, doc TEXT NOT NULL, due REAL);
"""


class Store(CoreStore):
    SCHEMA = CORE_SCHEMA + webhooks.SCHEMA + STRIPE_SCHEMA
