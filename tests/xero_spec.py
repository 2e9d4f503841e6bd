"""Check requests PlanMan sends to Xero's accounting API against the official spec.

The spec is loaded once per test session with openapi-core (strict spec
validation off: the file fails it, see TOOLING.md). Two ways to use it:

* ``assert_valid_xero_request(prepared_request)`` on any captured
  ``requests.PreparedRequest`` (for instance ``responses.calls[i].request``);
  ``spec_violations(prepared_request)`` returns the problems instead of raising.
* the ``xero_api`` fixture (a ``XeroApiMock``): activates ``responses`` for the
  test, and fails the test at teardown if any request to
  ``https://api.xero.com/api.xro/2.0`` broke the spec, whether it was registered
  through ``xero_api.add`` or straight on ``xero_api.rsps``. ``xero_api.add``
  validates inside the callback too, and answers a violating request with a
  400 so the code under test cannot carry on as if Xero had accepted it::

      def test_push(xero_api):
          xero_api.add("GET", "/Organisation", json={"Organisations": [...]})
          xero_api.rsps.add("GET", "https://api.xero.com/connections", json=[...])
          ...
          assert xero_api.accounting_requests  # PreparedRequests, in order

Import the fixture in a test module (``from tests.xero_spec import xero_api``)
or list ``tests.xero_spec`` in a conftest's ``pytest_plugins``.
"""
from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import pytest
import requests
import responses
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Xero's official spec, vendored unchanged (tests/standins/xero/test_spec.py checks its blob id).
SPEC_CANDIDATES = (REPO_ROOT / "standins" / "xero" / "spec" / "xero_accounting.yaml",)
XERO_API = "https://api.xero.com"
ACCOUNTING_BASE = f"{XERO_API}/api.xro/2.0"

_lock = threading.Lock()
_openapi: OpenAPI | None = None


def spec_path() -> Path:
    for path in SPEC_CANDIDATES:
        if path.exists():
            return path
    raise FileNotFoundError("xero_accounting.yaml not found in " + ", ".join(map(str, SPEC_CANDIDATES)))


def xero_openapi() -> OpenAPI:
    """The parsed accounting spec (loaded on first use, then shared by the session)."""
    global _openapi
    with _lock:
        if _openapi is None:
            _openapi = OpenAPI.from_file_path(str(spec_path()), config=Config(spec_validator_cls=None))
        return _openapi


def is_accounting_request(request) -> bool:
    return (request.url or "").startswith(ACCOUNTING_BASE + "/")


def spec_violations(request: requests.PreparedRequest) -> list[str]:
    """Every way ``request`` breaks the accounting spec; empty when it conforms."""
    try:
        with warnings.catch_warnings():
            # openapi-core does not check OAuth2 security schemes and says so each time.
            warnings.simplefilter("ignore", UserWarning)
            xero_openapi().validate_request(RequestsOpenAPIRequest(request))
    except Exception as exc:  # openapi-core raises one exception; unpack its details
        return _describe(request, exc)
    return []


def assert_valid_xero_request(request: requests.PreparedRequest) -> None:
    problems = spec_violations(request)
    assert not problems, f"{request.method} {request.url} breaks Xero's spec:\n  " + "\n  ".join(problems)


def _describe(request, exc: Exception) -> list[str]:
    cause = exc.__cause__
    details = getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None)
    if details:
        out = []
        for err in details:
            where = "/".join(str(p) for p in err.absolute_path)
            out.append(f"{type(exc).__name__}: {where + ': ' if where else ''}{err.message}")
        return out
    return [f"{type(exc).__name__}: {exc}" + (f" ({cause})" if cause else "")]


class XeroApiMock:
    """``responses`` for one test, with every accounting request checked against the spec."""

    def __init__(self, rsps: responses.RequestsMock):
        self.rsps = rsps
        self.violations: list[str] = []
        self._checked: set[int] = set()

    def add(self, method: str, path_or_url: str, *, json=None, status: int = 200, headers: dict | None = None,
            body: str | None = None, match_querystring: bool = False):
        """Answer ``method path`` (a path below /api.xro/2.0, or a full URL) after validating the request."""
        url = path_or_url if path_or_url.startswith("http") else ACCOUNTING_BASE + path_or_url
        payload = body if body is not None else (_dumps(json) if json is not None else "")

        def callback(request):
            problems = self.check(request)
            if problems:
                return 400, {"Content-Type": "application/json"}, _dumps(
                    {"ErrorNumber": 10, "Type": "ValidationException", "Message": "; ".join(problems)})
            return status, {"Content-Type": "application/json", **(headers or {})}, payload

        self.rsps.add_callback(method, url, callback=callback)

    def check(self, request) -> list[str]:
        """Validate ``request`` once (accounting URLs only); remember any violation."""
        if not is_accounting_request(request) or id(request) in self._checked:
            return []
        self._checked.add(id(request))
        problems = spec_violations(request)
        self.violations.extend(f"{request.method} {request.url}: {p}" for p in problems)
        return problems

    @property
    def calls(self):
        return self.rsps.calls

    @property
    def accounting_requests(self) -> list[requests.PreparedRequest]:
        return [call.request for call in self.rsps.calls if is_accounting_request(call.request)]

    def requests_to(self, method: str, url_part: str) -> list[requests.PreparedRequest]:
        return [c.request for c in self.rsps.calls if c.request.method == method and url_part in c.request.url]

    def check_all(self) -> list[str]:
        for call in self.rsps.calls:
            self.check(call.request)
        return self.violations


def _dumps(data) -> str:
    return json.dumps(data)


@pytest.fixture
def xero_api():
    """``responses`` active for the test; any accounting request that breaks the spec fails it."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mock = XeroApiMock(rsps)
        yield mock
        problems = mock.check_all()
    if problems:
        pytest.fail("Requests to Xero's accounting API broke the spec:\n  " + "\n  ".join(problems))
