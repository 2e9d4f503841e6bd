"""Validate each accounting request against Xero's official OpenAPI spec.

The spec is loaded once per process (about 0.3 s) with openapi-core, with the
strict spec validator off because the file itself fails it (TOOLING.md).
Requests are checked as if sent to the spec's server, so the URL is rewritten
to https://api.xero.com/api.xro/2.0/..."""
from __future__ import annotations

import threading
import warnings
from pathlib import Path

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_DIR = Path(__file__).parent / "spec"
SERVER = "https://api.xero.com"
PREFIX = "/api.xro/2.0"

# openapi-core does not check OAuth2 security (Xero's scheme) and warns on every call; the
# stand-in checks bearer tokens itself.
warnings.filterwarnings("ignore", message="Unsupported scheme type")

_lock = threading.Lock()
_api: OpenAPI | None = None


def api() -> OpenAPI:
    global _api
    with _lock:
        if _api is None:
            _api = OpenAPI.from_file_path(str(SPEC_DIR / "xero_accounting.yaml"),
                                          config=Config(spec_validator_cls=None))
        return _api


class _SpecRequest:
    """The openapi-core request protocol over a Flask request, moved to Xero's server."""

    def __init__(self, flask_request):
        self.host_url = SERVER
        self.path = flask_request.path  # already starts with /api.xro/2.0
        self.method = flask_request.method.lower()
        self.body = flask_request.get_data(cache=True) or None
        self.content_type = flask_request.mimetype or "application/json"
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(flask_request.args), header=Headers(flask_request.headers),
            cookie=ImmutableMultiDict())


def violations(flask_request) -> list[str]:
    """Every way the request breaks the spec; empty when it conforms."""
    try:
        api().validate_request(_SpecRequest(flask_request))
    except Exception as exc:  # openapi-core raises one exception per request; unpack its details
        return _describe(exc)
    return []


def _describe(exc: Exception) -> list[str]:
    cause = exc.__cause__
    details = getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None)
    if not details:
        return [f"{type(exc).__name__}: {exc}"]
    # "Invalid query parameter: IDs" or "Request body", then each schema error with its location.
    head = "Request body" if "body" in type(exc).__name__.lower() else str(exc)
    out = []
    for err in details:
        where = "/".join(str(p) for p in err.absolute_path)
        out.append(f"{type(exc).__name__}: {head}{' at ' + where if where else ''}: {err.message}")
    return out
