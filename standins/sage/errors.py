"""Sage's answer shapes: bare objects, the list envelope and the error array (REF 4, 5).

Errors are a JSON array of {"$severity", "$dataCode", "$message", "$source"} (REF 5's
example: RecordInvalid on contact_type_ids). The $dataCode values other than
RecordInvalid and AuthorizationFailure (REF 3, 5) are guesses, as is every message's wording."""
from __future__ import annotations

import json

from flask import Response


def answer(body, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def item(code: str, message: str, source: str = "", severity: str = "error") -> dict:
    return {"$severity": severity, "$dataCode": code, "$message": message, "$source": source}


def errors(items: list[dict], status: int, headers: dict | None = None) -> Response:
    return answer(items, status, headers)


def error(status: int, code: str, message: str, source: str = "", headers: dict | None = None) -> Response:
    return errors([item(code, message, source)], status, headers)


class Invalid(Exception):
    """A 422 RecordInvalid with its $source (REF 5: 422 for validation)."""

    def __init__(self, source: str, message: str, code: str = "RecordInvalid"):
        super().__init__(message)
        self.items = [item(code, message, source)]

    @property
    def response(self) -> Response:
        return errors(self.items, 422)


def unauthorized(message: str) -> Response:
    # REF 3 shows 401 AuthorizationFailure for an expired trial; the same code for a bad token is a guess.
    return error(401, "AuthorizationFailure", message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def not_found(kind: str = "Resource") -> Response:
    return error(404, "RecordNotFound", f"{kind} not found")  # guess: code and wording


def too_many(retry_after: int | None) -> Response:
    # REF 5: 429 Too Many Requests; Retry-After unconfirmed (sent here), code and wording guesses.
    headers = {"Retry-After": str(max(int(retry_after), 1))} if retry_after else {}
    return error(429, "TooManyRequests", "Too many requests: slow down.", headers=headers)
