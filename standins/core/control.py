"""The control API routes every provider's stand-in shares (/<prefix>/_control/...).

A provider's control blueprint calls `add_common_routes` and adds its own
(reset, state, a bookkeeper's actions). No authentication: the stand-ins are
development tools bound to 127.0.0.1."""
from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, jsonify, request

from . import latency
from .store import Store, current

FAULT_KEYS = {"fail_next", "fail_status", "drop_next_writes", "drop_next_token_answers", "latency_ms",
              "rate_limit_next", "retry_after",
              "random", "expire_tokens_every"}
LIMIT_KEYS = ("in_flight", "per_minute", "per_day", "app_per_minute")


def body() -> dict:
    return request.get_json(silent=True) or {}


def bad(message: str, status: int = 400):
    return jsonify({"error": message}), status


def counters(db) -> dict:
    return {r["name"]: r["value"] for r in db.execute("SELECT name, value FROM counters")}


def add_common_routes(bp: Blueprint, *, limits, lifetimes, lifetime_keys: tuple[str, ...],
                      latency_estimate: latency.Model | None = None) -> None:
    """faults (GET, POST), faults/clear, expire_tokens, age_tokens, limits, lifetimes, violations,
    and latency (GET, POST) for a provider that applies the latency model (its estimate given).

    limits(db) / lifetimes(db) answer the values in force (config defaults overlaid by the stored changes)."""
    if latency_estimate is not None:
        @bp.get("/latency")
        def get_latency():
            with current().read() as db:
                return jsonify(asdict(latency.in_force(db, latency_estimate)))

        @bp.post("/latency")
        def set_latency():
            sent = body()
            problem = latency.valid_changes(sent)
            if problem:
                return bad(problem)
            with current().tx() as db:
                return jsonify(asdict(latency.store(db, sent, latency_estimate)))

    @bp.get("/faults")
    def get_faults():
        with current().read() as db:
            return jsonify(Store.get_setting(db, "faults", {}))

    @bp.post("/faults")
    def set_faults():
        sent = body()
        unknown = set(sent) - FAULT_KEYS
        if unknown:
            return bad(f"unknown fault(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(FAULT_KEYS))}")
        if "fail_status" in sent and sent["fail_status"] not in (500, 503):
            return bad("fail_status must be 500 or 503")
        with current().tx() as db:
            faults = {**Store.get_setting(db, "faults", {}), **sent}
            Store.put_setting(db, "faults", faults)
        return jsonify(faults)

    @bp.post("/faults/clear")
    def clear_faults():
        with current().tx() as db:
            Store.put_setting(db, "faults", {})
        return jsonify({})

    @bp.post("/expire_tokens")
    def expire_tokens():
        with current().tx() as db:
            count = db.execute("UPDATE access_tokens SET expires=0").rowcount
        return jsonify({"expired": count})

    @bp.post("/age_tokens")
    def age_tokens():
        """{"seconds": N}: every code and token is N seconds older, as if that time had passed with no
        call (a refresh token idle for its whole lifetime dies) without a test having to wait."""
        seconds = body().get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            return bad("expected {\"seconds\": a non-negative number}")
        with current().tx() as db:
            db.execute("UPDATE codes SET created=created-?", (seconds,))
            db.execute("UPDATE access_tokens SET expires=expires-?", (seconds,))
            refresh = db.execute("UPDATE refresh_tokens SET created=created-?, used_at=used_at-?",
                                 (seconds, seconds)).rowcount
        return jsonify({"aged_seconds": seconds, "refresh_tokens": refresh})

    def set_numbers(name: str, allowed: tuple[str, ...], in_force):
        sent = body()
        if set(sent) - set(allowed) or not all(isinstance(v, (int, float)) and v >= 0 for v in sent.values()):
            return bad(f"expected non-negative numbers for any of: {', '.join(allowed)}")
        with current().tx() as db:
            Store.put_setting(db, name, {**Store.get_setting(db, name, {}), **sent})
            return jsonify(in_force(db))

    @bp.post("/limits")
    def set_limits():
        return set_numbers("limits", LIMIT_KEYS, limits)

    @bp.post("/lifetimes")
    def set_lifetimes():
        return set_numbers("lifetimes", lifetime_keys, lifetimes)

    @bp.get("/violations")
    def violations():
        with current().read() as db:
            rows = db.execute("SELECT method, path, message, at FROM violations ORDER BY id").fetchall()
        return jsonify([dict(r) for r in rows])


def limits_in_force(db, defaults: dict) -> dict:
    """defaults: {"in_flight": ..., "per_minute": ..., "per_day": ..., "app_per_minute": ...}."""
    stored = Store.get_setting(db, "limits", {})
    return {key: stored.get(key, defaults[key]) for key in LIMIT_KEYS}
