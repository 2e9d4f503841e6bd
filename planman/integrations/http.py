"""The one loop that sends a call to a ledger's API. Each provider's client
builds its calls and reads its answers; what every ledger shares is here.

Every call carries the bearer token, asks for JSON, has a timeout and (unless
told otherwise) takes a slot of the shared throttle. A 401 refreshes the token
once, under the shared lock, and sends the call again. What means the same at
every provider becomes the same typed error: a timeout or a lost connection,
404, 429 (its Retry-After also blocks the throttle, so no other worker calls
meanwhile), 5xx. What a provider's refusals mean is its client's to say,
through the hooks of ``BearerApiClient``."""
from __future__ import annotations

import logging
from typing import Any, Callable

import requests

from planman.integrations.errors import NeedsReconnect, RateLimited, RemoteNotFound, TemporaryFailure
from planman.integrations.throttle import TenantThrottle

log = logging.getLogger(__name__)


class BearerApiClient:
    label = ""  # what messages call the provider
    key = ""  # the provider's key: the first word of each call's log line
    default_retry_after = 60.0  # seconds to wait after a 429 that does not say

    def __init__(self, *, api_url: str, tokens, throttle: TenantThrottle | None, timeout: float,
                 on_forbidden: Callable[[str], None] | None = None, http: requests.Session | None = None):
        self.api_url = api_url.rstrip("/")
        self.tokens = tokens
        self.throttle = throttle
        self.timeout = timeout
        self.on_forbidden = on_forbidden  # told why, when the provider refuses the connection itself
        self.http = http or requests.Session()
        self.calls_made = 0

    # -- the provider's readings (override where the provider differs) ---------------
    def check_answer(self, response: requests.Response, shown: str) -> None:
        """Read first, whatever the status: raise if the answer must not be used."""

    def refresh_helps(self, response: requests.Response) -> bool:
        """Whether a new access token could turn this 401 into an answer."""
        return True

    def needs_reconnect(self, response: requests.Response) -> bool:
        """The provider refuses the connection itself: only reconnecting helps."""
        return response.status_code in (401, 403)

    def forbidden_reason(self, response: requests.Response) -> str:
        return str(response.status_code)

    def rate_limit_problem(self, response: requests.Response) -> str:
        return "429"

    def refuse(self, response: requests.Response, record_type: str, shown: str) -> None:
        """Raise the provider's own error for an answer the shared rules do not
        settle (its refusals of the data, mostly); return to leave it to them."""

    # -- sending -----------------------------------------------------------------------
    def call(self, method: str, url: str, *, record_type: str = "", params=None, json=None,
             headers: dict | None = None, throttled: bool = True, shown: str = "",
             _retried: bool = False) -> requests.Response:
        """Send one call. Returns the answer when its status is 2xx, else raises
        the typed error. ``shown`` names the call in errors' details (default:
        the method and URL); ``record_type`` is what field errors are about."""
        shown = shown or f"{method} {url}"
        access_token = self.tokens.access_token()
        sent_headers = {**(headers or {}), "Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        try:
            if throttled and self.throttle is not None:
                with self.throttle.slot():
                    response = self._http(method, url, sent_headers, params, json)
            else:
                response = self._http(method, url, sent_headers, params, json)
        except requests.Timeout as exc:
            raise TemporaryFailure(f"{self.label} did not answer in time.", detail=f"{shown}: timeout",
                                   provider=self.label) from exc
        except requests.ConnectionError as exc:
            raise TemporaryFailure(f"The connection to {self.label} failed.",
                                   detail=f"{shown}: {type(exc).__name__}", provider=self.label) from exc

        self.check_answer(response, shown)
        status = response.status_code
        if 200 <= status < 300:
            return response
        if status == 401 and not _retried and self.refresh_helps(response):
            # An expired or revoked access token: refresh once (under the shared lock) and send again.
            self.tokens.refresh_after_401(access_token)
            return self.call(method, url, record_type=record_type, params=params, json=json, headers=headers,
                             throttled=throttled, shown=shown, _retried=True)
        if self.needs_reconnect(response):
            reason = self.forbidden_reason(response)
            if self.on_forbidden:
                self.on_forbidden(reason)
            raise NeedsReconnect(detail=f"{shown}: {status} {reason}", provider=self.label)
        if status == 404:
            raise RemoteNotFound(detail=f"{shown}: 404", provider=self.label)
        if status == 429:
            retry_after = number_or(response.headers.get("Retry-After"), self.default_retry_after)
            if self.throttle is not None:
                self.throttle.block_for(retry_after)
            raise RateLimited(retry_after, self.rate_limit_problem(response), provider=self.label)
        self.refuse(response, record_type, shown)
        if status >= 500:
            raise TemporaryFailure(detail=f"{shown}: {status}", provider=self.label)
        raise TemporaryFailure(f"{self.label} answered with an unexpected status ({status}).", detail=shown,
                               provider=self.label)

    def _http(self, method, url, headers, params, json):
        self.calls_made += 1
        log.info("%s %s %s", self.key, method, url.replace(self.api_url, ""))
        return self.http.request(method, url, headers=headers, params=params, json=json, timeout=self.timeout)


def number_or(value, default: float) -> float:
    """A header's number, or ``default`` when it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def json_or_none(response: requests.Response) -> Any:
    """The answer's JSON body; None when it is empty or not JSON."""
    try:
        return response.json() if response.content else None
    except ValueError:
        return None
