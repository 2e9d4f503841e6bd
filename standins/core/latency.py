"""How long a provider takes to answer: a base time per call plus a time per
record the call carries (the elements of a batch written, or of a list read),
with jitter. Shared by every stand-in; each provider passes its own estimate.

Off unless switched on, so ordinary tests stay fast: through the control API
(``POST /<prefix>/_control/latency``, stored in the provider's settings so every
process serving the same database obeys it) or, for a whole run, the
environment: ``STANDINS_LATENCY=on`` (the provider's estimate) and
``STANDINS_LATENCY_SCALE`` (a factor on both times, e.g. 0.25 to run a
benchmark four times faster than real)."""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass

from .store import Store

SETTING = "latency"
KEYS = ("enabled", "base_ms", "per_record_ms", "jitter", "scale")


@dataclass(frozen=True)
class Model:
    enabled: bool = False
    base_ms: float = 0.0
    per_record_ms: float = 0.0
    jitter: float = 0.0  # each delay is drawn uniformly within +/- this share of itself
    scale: float = 1.0

    def seconds(self, records: int, rng: random.Random | None = None) -> float:
        """The delay of one call carrying ``records`` records (0 when off)."""
        if not self.enabled:
            return 0.0
        nominal = (self.base_ms + self.per_record_ms * max(0, records)) * self.scale / 1000
        spread = min(max(self.jitter, 0.0), 1.0)
        return max(0.0, nominal * (1 + (rng or random).uniform(-spread, spread)))


def from_environment(estimate: Model, environ=os.environ) -> Model:
    """The model a run starts with: off, or ``estimate`` when STANDINS_LATENCY=on."""
    switched_on = (environ.get("STANDINS_LATENCY") or "off").strip().lower() in ("on", "1", "true", "yes")
    scale = float(environ.get("STANDINS_LATENCY_SCALE") or 1.0)
    return Model(**{**asdict(estimate), "enabled": switched_on, "scale": scale})


def in_force(db, estimate: Model) -> Model:
    """The stored model (set through the control API) over the run's starting one."""
    stored = Store.get_setting(db, SETTING, {})
    return Model(**{**asdict(from_environment(estimate)), **stored})


def store(db, changes: dict, estimate: Model) -> Model:
    """Merge ``changes`` (any of KEYS) into the stored model; ``{"enabled": true}``
    alone switches the provider's estimate on."""
    merged = {**Store.get_setting(db, SETTING, {}), **changes}
    Store.put_setting(db, SETTING, merged)
    return in_force(db, estimate)


def valid_changes(sent: dict) -> str | None:
    """Why ``sent`` is not a latency setting, or None."""
    unknown = set(sent) - set(KEYS)
    if unknown:
        return f"unknown latency setting(s): {', '.join(sorted(unknown))}; known: {', '.join(KEYS)}"
    for key, value in sent.items():
        if key == "enabled":
            if not isinstance(value, bool):
                return "enabled must be true or false"
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            return f"{key} must be a non-negative number"
    if sent.get("jitter", 0) > 1:
        return "jitter is a share of the delay, from 0 to 1"
    return None


def records_in(body: bytes) -> int:
    """The records a JSON answer carries: the longest list at its top level
    ({"Invoices": [...]} or a bare list), 0 for anything else."""
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return 0
    if isinstance(data, list):
        return len(data)
    if isinstance(data, dict):
        return max((len(v) for v in data.values() if isinstance(v, list)), default=0)
    return 0


def pause(model: Model, records: int) -> float:
    """Sleep for one call's delay; returns the seconds slept."""
    seconds = model.seconds(records)
    if seconds:
        time.sleep(seconds)
    return seconds
