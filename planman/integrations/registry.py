"""The providers PlanMan can integrate with. Adding one means registering it here."""
from __future__ import annotations

from flask import Flask

from planman.integrations.base import Provider
from planman.integrations.xero.provider import XeroProvider

PROVIDERS: dict[str, Provider] = {provider.key: provider for provider in (XeroProvider(),)}


def init_app(app: Flask) -> None:
    for provider in PROVIDERS.values():
        provider.init_app(app)


def all_providers() -> list:
    return list(PROVIDERS.values())


def get_provider(key: str) -> Provider | None:
    return PROVIDERS.get(key)
