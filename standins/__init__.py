"""Local stand-ins for the providers PlanMan pushes to, on one shared core.

`python -m standins` serves every provider under its path prefix (/xero,
/freshbooks); `create_app(config)` builds the same app in-process. PlanMan never
imports this package: it reaches it over HTTP through its configurable base URLs.
See README.md in this package."""
from .core.app import PROVIDERS, create_app, provider_database

__all__ = ["PROVIDERS", "create_app", "provider_database"]
