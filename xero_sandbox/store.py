"""SQLite state shared by every process that serves the stand-in.

Each request opens its own connection (sqlite3 connections must not cross
threads). WAL lets readers run beside one writer; every write runs inside
BEGIN IMMEDIATE so two processes can never interleave a read-check-write
(e.g. two creates racing for the same contact name or invoice number)."""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY, client_id TEXT, redirect_uri TEXT, scope TEXT,
    challenge TEXT, tenants TEXT, created REAL, used INTEGER NOT NULL DEFAULT 0,
    user_email TEXT NOT NULL DEFAULT 'demo@xero-stand-in.test');
CREATE TABLE IF NOT EXISTS grants (
    grant_id TEXT PRIMARY KEY, client_id TEXT, scope TEXT, created REAL,
    revoked INTEGER NOT NULL DEFAULT 0, user_email TEXT NOT NULL DEFAULT 'demo@xero-stand-in.test');
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY, grant_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
    created REAL, updated REAL);
CREATE TABLE IF NOT EXISTS access_tokens (
    token TEXT PRIMARY KEY, grant_id TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token TEXT PRIMARY KEY, grant_id TEXT NOT NULL, created REAL NOT NULL,
    used_at REAL);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tenant_id, key));
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rate_windows (
    scope TEXT NOT NULL, kind TEXT NOT NULL, window_start REAL NOT NULL,
    count INTEGER NOT NULL, PRIMARY KEY (scope, kind));
CREATE TABLE IF NOT EXISTS in_flight (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, started REAL NOT NULL);
CREATE TABLE IF NOT EXISTS violations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, method TEXT, path TEXT, message TEXT, at REAL);
"""

UPGRADES = (("grants", "user_email", "TEXT NOT NULL DEFAULT 'demo@xero-stand-in.test'"),
            ("codes", "user_email", "TEXT NOT NULL DEFAULT 'demo@xero-stand-in.test'"))

# Every table except the schema itself: what a reset wipes.
TABLES = ("organisations", "contacts", "invoices", "codes", "grants", "connections",
          "access_tokens", "refresh_tokens", "idempotency", "settings", "counters",
          "rate_windows", "in_flight", "violations")


class Store:
    def __init__(self, path: str):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._create()

    def _create(self, patience: float = 30.0) -> None:
        """Switch the file to WAL and create the tables, also when several
        processes start on a new file at once. Either step reads the file and
        then needs to write it; when two processes are between the two, SQLite
        answers "locked" at once instead of waiting (waiting could never end),
        so step back and try again, as long as any write would wait."""
        deadline = time.monotonic() + patience
        while True:
            db = self._connect()
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
                self._upgrade(db)
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            finally:
                db.close()
            time.sleep(0.05)

    @staticmethod
    def _upgrade(db) -> None:
        """Add columns a state file made by an older stand-in lacks (CREATE TABLE IF NOT EXISTS keeps old tables)."""
        for table, column, decl in UPGRADES:
            if column not in {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}:
                try:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
                except sqlite3.OperationalError as error:  # another process added it first
                    if "duplicate column" not in str(error):
                        raise

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN ourselves, so nothing commits behind our back.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @contextmanager
    def read(self):
        db = self._connect()
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def tx(self):
        """A write transaction that holds SQLite's write lock from its first statement."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    # -- small helpers shared by the modules -------------------------------

    @staticmethod
    def get_setting(db, name: str, default):
        row = db.execute("SELECT value FROM settings WHERE name=?", (name,)).fetchone()
        return json.loads(row["value"]) if row else default

    @staticmethod
    def put_setting(db, name: str, value) -> None:
        db.execute("INSERT INTO settings(name, value) VALUES (?, ?) "
                   "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (name, json.dumps(value)))

    @staticmethod
    def bump(db, name: str, by: int = 1) -> int:
        db.execute("INSERT INTO counters(name, value) VALUES (?, ?) "
                   "ON CONFLICT(name) DO UPDATE SET value=value+excluded.value", (name, by))
        return db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()["value"]

    def count(self, name: str, by: int = 1) -> int:
        with self.tx() as db:
            return self.bump(db, name, by)
