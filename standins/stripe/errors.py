"""Stripe's error envelope (REFERENCE.md section 4; docs.stripe.com/api/errors):
{"error": {"type", "code", "message", "param", "doc_url", "request_log_url"}} and a Request-Id header."""
from __future__ import annotations

import secrets

from flask import g, jsonify


class ApiError(Exception):
    def __init__(self, status: int, type_: str, message: str, *, code: str | None = None, param: str | None = None,
                 decline_code: str | None = None, headers: dict | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message
        self.code, self.param, self.decline_code = code, param, decline_code
        self.headers, self.extra = headers or {}, extra or {}

    def body(self) -> dict:
        error = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id()}"
        error.update(self.extra)
        return {"error": error}


def request_id() -> str:
    if "stripe_request_id" not in g:
        g.stripe_request_id = "req_" + secrets.token_hex(7)
    return g.stripe_request_id


def respond(error: ApiError):
    response = jsonify(error.body())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def missing(param: str) -> ApiError:
    return ApiError(400, "invalid_request_error", f"Missing required param: {param}.", code="parameter_missing",
                    param=param)


def invalid(param: str, message: str) -> ApiError:
    """A parameter Stripe would refuse; which error code Stripe gives each case is not stated (guess: none)."""
    return ApiError(400, "invalid_request_error", message, param=param)


def no_such(kind: str, object_id: str, param: str = "id") -> ApiError:
    # Wording as Stripe answers a missing object: "No such checkout.session: 'cs_...'".
    return ApiError(404, "invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing",
                    param=param)
