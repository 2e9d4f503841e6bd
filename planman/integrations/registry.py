"""The providers PlanMan can integrate with. Adding one means registering it here."""
from __future__ import annotations

import importlib

from flask import Flask

from planman.integrations.base import Provider
from planman.integrations.freshbooks.provider import FreshBooksProvider
from planman.integrations.gocardless.provider import GoCardlessProvider
from planman.integrations.sage.provider import SageProvider
from planman.integrations.stripe.provider import StripeProvider
from planman.integrations.xero.provider import XeroProvider

PROVIDERS: dict[str, Provider] = {provider.key: provider for provider in (XeroProvider(), FreshBooksProvider(), SageProvider(),
                                                                            StripeProvider(), GoCardlessProvider())}


def init_app(app: Flask) -> None:
    for spec in filter(None, (part.strip() for part in app.config.get("EXTRA_PROVIDERS", "").split(","))):
        module, _, name = spec.partition(":")
        provider = getattr(importlib.import_module(module), name)()
        PROVIDERS.setdefault(provider.key, provider)
    for provider in PROVIDERS.values():
        provider.init_app(app)

    @app.context_processor
    def integration_helpers():
        return {"integration_providers": lambda: configured_providers(app),
                "integration_panel": _panel_for_template, "integration_warnings": _warnings_for_template,
                "payment_sections": _payment_sections}


def configured_providers(app: Flask) -> list[Provider]:
    """The configured providers that take records (record tabs, bulk sends); a
    payment provider declares no record types, so it gets neither."""
    return [provider for provider in PROVIDERS.values() if provider.is_configured(app) and provider.record_types]


def _panel_for_template(provider_key: str, record_type: str, record):
    from flask import current_app
    from flask_login import current_user

    from planman.integrations.panel import panel_state

    provider = PROVIDERS.get(provider_key)
    if provider is None or not provider.is_configured(current_app):
        return None
    return panel_state(provider, record_type, record, current_user.firm_id)


def _payment_sections(record_type: str, record) -> list[tuple[str, dict]]:
    """The sections connected payment providers add to a client's or invoice's page."""
    from flask_login import current_user

    from planman.integrations.links import connection_for

    sections = []
    for provider in PROVIDERS.values():
        if provider.kind != "payments":
            continue
        connection = connection_for(current_user.firm_id, provider.key)
        if connection is not None and connection.is_usable:
            section = provider.record_section(connection, record_type, record)
            if section:
                sections.append(section)
    return sections


def _warnings_for_template(record_type: str, record) -> list[str]:
    """What each connected provider would refuse about the record (for its page)."""
    from flask import current_app
    from flask_login import current_user

    from planman.integrations.links import connection_for

    warnings = []
    for provider in configured_providers(current_app):
        connection = connection_for(current_user.firm_id, provider.key)
        if connection is not None and connection.is_usable:
            warnings += provider.record_warnings(connection, record_type, record)
    return warnings


def all_providers() -> list:
    return list(PROVIDERS.values())


def get_provider(key: str) -> Provider | None:
    return PROVIDERS.get(key)
