"""GoCardless's error envelope (REFERENCE.md section 5):
{"error": {"type", "code", "message", "documentation_url", "request_id", "errors": [...]}}."""
from __future__ import annotations

import uuid

from flask import jsonify

DOCS = "https://developer.gocardless.com/api-reference#"


def error(status: int, error_type: str, message: str, errors: list | None = None, headers: dict | None = None):
    body = {"error": {"type": error_type, "code": status, "message": message,
                      "documentation_url": DOCS + (errors[0].get("reason", error_type) if errors else error_type),
                      "request_id": str(uuid.uuid4()), "errors": errors or [{"reason": error_type,
                                                                             "message": message}]}}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation(field: str, message: str):
    return error(422, "validation_failed", "Validation failed",
                 [{"field": field, "message": message, "request_pointer": f"/{field}"}])


def invalid_state(reason: str, message: str, links: dict | None = None, status: int = 422):
    item = {"reason": reason, "message": message}
    if links:
        item["links"] = links
    return error(status, "invalid_state", message, [item])


def not_found(resource: str):
    return error(404, "invalid_api_usage", "Resource not found",
                 [{"reason": "resource_not_found", "message": f"{resource} not found"}])
