"""The providers PlanMan can integrate with. Adding one means registering it here."""
from __future__ import annotations

from flask import Flask

PROVIDERS: dict = {}


def init_app(app: Flask) -> None:
    app.extensions["integration_providers"] = PROVIDERS


def all_providers() -> list:
    return list(PROVIDERS.values())


def get_provider(key: str):
    return PROVIDERS.get(key)
