"""What every stand-in's settings module shares: its defaults overridden by the
app's config, credentials from the environment, and the values the control
API changes at run time. Those live in the settings table, not in process
memory, so every process serving the same database obeys them."""
from __future__ import annotations

import os

from flask import current_app

from .control import limits_in_force
from .store import Store


class Settings:
    def __init__(self, config_key: str, defaults: dict, *, from_env: dict[str, tuple[str, str]],
                 lifetime_keys: tuple[str, ...] = ()):
        """``from_env``: for a setting left None, the environment variable to read and
        the value without it. ``lifetime_keys``: the token lifetimes the control API
        may change (lower-case names of settings)."""
        self.config_key, self.defaults, self.from_env, self.lifetime_keys = (config_key, defaults, from_env,
                                                                             lifetime_keys)

    def resolve(self, config: dict | None) -> dict:
        resolved = {**self.defaults, **(config or {})}
        for name, (variable, fallback) in self.from_env.items():
            resolved[name] = resolved[name] or os.environ.get(variable) or fallback
        return resolved

    def cfg(self, name: str):
        return current_app.config[self.config_key][name]

    @staticmethod
    def store() -> Store:
        return current_app.extensions["standins.store"]  # core.store.current(), named for the modules' readers

    def limits(self, db) -> dict:
        configured = {"in_flight": "LIMIT_IN_FLIGHT", "per_minute": "LIMIT_PER_MINUTE", "per_day": "LIMIT_PER_DAY",
                      "app_per_minute": "LIMIT_APP_PER_MINUTE"}
        return limits_in_force(db, {limit: self.cfg(name) for limit, name in configured.items()})

    def lifetimes(self, db) -> dict:
        stored = Store.get_setting(db, "lifetimes", {})
        return {key: stored.get(key, self.cfg(key.upper())) for key in self.lifetime_keys}
