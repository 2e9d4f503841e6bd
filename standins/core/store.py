"""SQLite state shared by every process that serves a stand-in.

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

# What the core keeps for every provider: OAuth codes, grants and tokens, idempotency
# replays, run-time settings (faults, limits, lifetimes), counters, rate windows,
# calls in flight and recorded violations. A provider adds its own records' tables.
SCHEMA = """
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY, client_id TEXT, redirect_uri TEXT, scope TEXT,
    challenge TEXT, tenants TEXT, created REAL, used INTEGER NOT NULL DEFAULT 0,
    user_email TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS grants (
    grant_id TEXT PRIMARY KEY, client_id TEXT, scope TEXT, created REAL,
    revoked INTEGER NOT NULL DEFAULT 0, user_email TEXT NOT NULL DEFAULT '');
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

# Columns a state file made by an older stand-in lacks: (table, column, declaration); a provider adds its own.
UPGRADES: tuple = ()


class Store:
    """A provider's state file. Subclasses add their tables (SCHEMA) and column upgrades (UPGRADES)."""

    SCHEMA = SCHEMA
    UPGRADES = UPGRADES

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
                db.executescript(self.SCHEMA)
                self._upgrade(db)
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            finally:
                db.close()
            time.sleep(0.05)

    def _upgrade(self, db) -> None:
        """Add columns a state file made by an older stand-in lacks (CREATE TABLE IF NOT EXISTS keeps old tables)."""
        for table, column, decl in self.UPGRADES:
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

    def wipe(self, db) -> None:
        """Delete every row of every table (a reset; the provider seeds its demo data after)."""
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                   "AND name NOT LIKE 'sqlite_%'").fetchall():
            db.execute(f"DELETE FROM {table}")

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


def current() -> Store:
    """The store of the provider app serving this request."""
    from flask import current_app

    return current_app.extensions["standins.store"]
