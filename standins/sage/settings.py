"""The Sage stand-in's configuration defaults, and the values the control API changes at run time.

"REF n" is a section of ../shared/sage/REFERENCE.md."""
from __future__ import annotations

from ..core.settings import Settings

DAY = 24 * 3600
DEFAULTS = {
    "DATABASE": "instance/standins.sage.db",
    "CLIENT_ID": None,        # None: env SAGE_STANDIN_CLIENT_ID, else "planman-dev"
    "CLIENT_SECRET": None,    # None: env SAGE_STANDIN_CLIENT_SECRET, else "planman-dev-secret"
    "REDIRECT_URIS": None,    # None: any http://127.0.0.1:<port>/... or http://localhost:<port>/...
    "ACCESS_TOKEN_SECONDS": 300,          # REF 1: access tokens live 5 minutes
    "REFRESH_TOKEN_SECONDS": 31 * DAY,    # REF 1: refresh tokens die after 31 days unused
    "CODE_SECONDS": 60,                   # REF 1: authorization codes live 60 s, single use
    # REF 5: v3.1 limits unconfirmed; ~100 requests/minute per business and 150 concurrent (third party).
    "LIMIT_IN_FLIGHT": 150,
    "LIMIT_PER_MINUTE": 100,
    "LIMIT_PER_DAY": 1_296_000,           # REF 5 cites this per app per day; counted per business here
    "LIMIT_APP_PER_MINUTE": 10000,        # guess: no per-app minute limit is cited
    "ITEMS_PER_PAGE_DEFAULT": 20,         # REF 4: default 20
    "ITEMS_PER_PAGE_MAX": 200,            # REF 4: max 200
}
LIFETIME_KEYS = ("access_token_seconds", "refresh_token_seconds", "code_seconds")


_SETTINGS = Settings("SAGE_STANDIN", DEFAULTS,
                     from_env={"CLIENT_ID": ("SAGE_STANDIN_CLIENT_ID", "planman-dev"),
                               "CLIENT_SECRET": ("SAGE_STANDIN_CLIENT_SECRET", "planman-dev-secret")},
                     lifetime_keys=LIFETIME_KEYS)
resolve, cfg, store, limits, lifetimes = (_SETTINGS.resolve, _SETTINGS.cfg, _SETTINGS.store, _SETTINGS.limits,
                                          _SETTINGS.lifetimes)
