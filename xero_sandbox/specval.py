"""Validate requests against Xero's official OpenAPI specs (accounting and identity).

Each spec is loaded once per process (about 0.3 s for accounting) with
openapi-core, with the strict spec validator off because the file itself fails
it (TOOLING.md). Requests are checked as if sent to the spec's server, so the
URL is rewritten to https://api.xero.com/api.xro/2.0/... (accounting) or
https://api.xero.com/Connections... (identity: the spec capitalises the path
that Xero serves as /connections)."""
from __future__ import annotations

import json
import threading
import time
import warnings
from pathlib import Path

from flask import Response

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from . import settings
from .store import Store

SPEC_DIR = Path(__file__).parent / "spec"
SERVER = "https://api.xero.com"
PREFIX = "/api.xro/2.0"

# openapi-core does not check OAuth2 security (Xero's scheme) and warns on every call; the
# stand-in checks bearer tokens itself.
warnings.filterwarnings("ignore", message="Unsupported scheme type")

_lock = threading.Lock()
_loaded: dict[str, OpenAPI] = {}


def api(name: str = "xero_accounting.yaml") -> OpenAPI:
    with _lock:
        if name not in _loaded:
            _loaded[name] = OpenAPI.from_file_path(str(SPEC_DIR / name), config=Config(spec_validator_cls=None))
        return _loaded[name]


class _SpecRequest:
    """The openapi-core request protocol over a Flask request, moved to Xero's server."""

    def __init__(self, flask_request, path: str):
        self.host_url = SERVER
        self.path = path
        self.method = flask_request.method.lower()
        self.body = flask_request.get_data(cache=True) or None
        self.content_type = flask_request.mimetype or "application/json"
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(flask_request.args), header=Headers(flask_request.headers),
            cookie=ImmutableMultiDict())


# Real Xero accepts and ignores read-only fields in a request: xero-python's Invoice model always
# sends HasAttachments (readOnly in the spec), and the SDK could not create invoices otherwise.
# openapi-core reports such a field as an error; the stand-in ignores it as Xero does.
READ_ONLY_WRITE = "Tried to write read-only property"


def violations(flask_request) -> list[str]:
    """Every way the request breaks the spec (read-only fields aside); empty when it conforms."""
    path = flask_request.path
    if path.startswith(PREFIX):
        spec = "xero_accounting.yaml"
    else:
        spec, path = "xero-identity.yaml", "/Connections" + path[len("/connections"):]
    try:
        api(spec).validate_request(_SpecRequest(flask_request, path))
    except Exception as exc:  # openapi-core raises one exception per request; unpack its details
        return [v for v in _describe(exc) if READ_ONLY_WRITE not in v]
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


def record(flask_request, found: list[str]) -> None:
    """Keep each violation for GET /_control/violations."""
    if not found:
        return
    with settings.store().tx() as db:
        for message in found:
            db.execute("INSERT INTO violations(method, path, message, at) VALUES (?, ?, ?, ?)",
                       (flask_request.method, flask_request.full_path.rstrip("?"), message, time.time()))
        Store.bump(db, "spec_violations", len(found))


def check(flask_request) -> Response | None:
    """None when the request conforms; otherwise the violations are recorded and answered 400."""
    found = violations(flask_request)
    if not found:
        return None
    record(flask_request, found)
    body = {"ErrorNumber": 14, "Type": "PostDataInvalidException",
            "Message": "The request does not match Xero's API specification: " + "; ".join(found),
            "Violations": found}
    return Response(json.dumps(body), status=400, mimetype="application/json")
