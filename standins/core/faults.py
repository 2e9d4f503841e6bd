"""Injected failures, decided per API call from the shared settings (set through the control API).

Counted faults (fail_next, drop_next_writes, rate_limit_next) are consumed
inside the caller's write transaction, so with several processes each fault
fires exactly once. Random mode draws from Random(f"{seed}:{n}") where n is a
shared call counter: the same seed and call order give the same failures."""
from __future__ import annotations

import random
import socket

from flask import request

from .store import Store


def plan(db, is_write: bool) -> dict:
    faults = Store.get_setting(db, "faults", {})
    out = {"fail_status": None, "rate_limit": None, "drop": False,
           "latency_ms": int(faults.get("latency_ms") or 0)}

    def take(name):
        if faults.get(name, 0) > 0:
            faults[name] -= 1
            return True
        return False

    if take("rate_limit_next"):
        out["rate_limit"] = int(faults.get("retry_after", 60))
    elif take("fail_next"):
        out["fail_status"] = int(faults.get("fail_status", 500))
    elif is_write and take("drop_next_writes"):
        out["drop"] = True

    rnd = faults.get("random")
    if rnd and not (out["rate_limit"] or out["fail_status"] or out["drop"]):
        n = Store.bump(db, "random_calls")
        rng = random.Random(f"{rnd.get('seed', 0)}:{n}")
        draw = rng.random()
        error_rate, limit_rate = float(rnd.get("error_rate", 0)), float(rnd.get("rate_limit_rate", 0))
        lost_rate = float(rnd.get("lost_response_rate", 0))
        if draw < error_rate:
            out["fail_status"] = rng.choice((500, 503))
        elif draw < error_rate + limit_rate:
            out["rate_limit"] = rng.randint(1, 3)
        elif is_write and draw < error_rate + limit_rate + lost_rate:
            out["drop"] = True
        if rng.random() < float(rnd.get("latency_spike_rate", 0)):
            out["latency_ms"] += int(rnd.get("latency_spike_ms", 800))

    every = int(faults.get("expire_tokens_every") or 0)
    if every and Store.bump(db, "calls_toward_expiry") % every == 0:
        # This call still succeeds; the next one with any current token gets 401.
        db.execute("UPDATE access_tokens SET expires=0")

    Store.put_setting(db, "faults", faults)
    return out


def take_token_answer_drop(db) -> bool:
    """Consume one ``drop_next_token_answers`` fault: the token endpoint does its
    work (a refresh token is spent, a new pair issued) and its answer is lost."""
    faults = Store.get_setting(db, "faults", {})
    if faults.get("drop_next_token_answers", 0) <= 0:
        return False
    faults["drop_next_token_answers"] -= 1
    Store.put_setting(db, "faults", faults)
    return True


class LostResponse(ConnectionError):
    """Raised instead of answering when there is no socket to drop (in-process test client)."""


def drop_connection(store: Store) -> None:
    """The write is committed; now lose the answer, as a network failure would."""
    store.count("lost_responses")
    sock = request.environ.get("werkzeug.socket")
    if sock is None:
        raise LostResponse("the stand-in dropped the response to this write (lost-response fault)")
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
