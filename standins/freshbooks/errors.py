"""FreshBooks' answer shapes: the result envelope and the error envelope (REFERENCE.md sections 4 and 5)."""
from __future__ import annotations

import json

from flask import Response

REQUIRED, ACCESS_DENIED, INVALID_VALUE, DELETED_RESOURCE, UNKNOWN_RESOURCE = 1001, 1003, 1004, 1011, 1012


def result(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    """{"response": {"result": {...}}}: every accounting answer."""
    response = Response(json.dumps({"response": {"result": body}}), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def error(errno: int, message: str, *, field: str | None = None, obj: str | None = None, value=None,
          status: int = 400, headers: dict | None = None) -> Response:
    """{"response": {"errors": [{"errno", "field", "message", "object", "value"}]}}.

    The HTTP status for a validation error is a guess (400): REFERENCE.md says only "HTTP 4xx"."""
    return errors([{"errno": errno, "field": field, "message": message, "object": obj,
                    "value": None if value is None else str(value)}], status, headers)


def errors(items: list[dict], status: int = 400, headers: dict | None = None) -> Response:
    response = Response(json.dumps({"response": {"errors": items}}), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def unauthorized(description: str) -> Response:
    """401 for a missing, unknown or expired token (REFERENCE.md section 5: "401 = expired/invalid token").
    The body's OAuth-style shape is a guess; the freshbooks-sdk reads only the status from it."""
    response = Response(json.dumps({"error": "unauthenticated", "error_description": description}),
                        status=401, mimetype="application/json")
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response
