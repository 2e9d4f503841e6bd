"""The ledgers' shared transport (planman.integrations.http), through each
ledger's own client: the requests it really sends (captured by ``responses``)
and what it makes of the answers. The rules every ledger shares are checked
on all three; each provider's own readings once each."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import requests
import responses

from planman.integrations.errors import NeedsReconnect, RateLimited, RemoteNotFound, TemporaryFailure
from planman.integrations.freshbooks.client import FreshBooksClient
from planman.integrations.sage.client import SageClient
from planman.integrations.xero.client import XeroClient

API = "https://api.ledger.test"


@dataclass
class Tokens:
    """Hands out an access token and rotates it when told the old one was refused."""

    current: str = "token-1"
    refreshed_after: list = field(default_factory=list)

    def access_token(self) -> str:
        return self.current

    def refresh_after_401(self, refused: str) -> None:
        self.refreshed_after.append(refused)
        self.current = f"token-{len(self.refreshed_after) + 1}"


@dataclass
class Throttle:
    slots: int = 0
    blocked_for: list = field(default_factory=list)

    @contextmanager
    def slot(self):
        self.slots += 1
        yield

    def block_for(self, seconds: float) -> None:
        self.blocked_for.append(seconds)


@dataclass
class Ledger:
    """One ledger's client and the one call these tests make with it."""

    label: str
    url: str
    ok_body: object
    make: object
    fetch: object

    def client(self, tokens, throttle, forbidden):
        return self.make(tokens=tokens, throttle=throttle, on_forbidden=forbidden)


LEDGERS = {
    "xero": Ledger(
        "Xero", f"{API}/api.xro/2.0/Organisation", {"Organisations": [{"Name": "Demo"}]},
        lambda on_forbidden, **kw: XeroClient(api_url=API, tenant_id="t-1", timeout=5,
                                              on_tenant_forbidden=on_forbidden, **kw),
        lambda client: client.organisation()),
    "freshbooks": Ledger(
        "FreshBooks", f"{API}/accounting/account/acc-1/users/clients/7",
        {"response": {"result": {"client": {"id": 7}}}},
        lambda **kw: FreshBooksClient(api_url=API, account_id="acc-1", timeout=5, **kw),
        lambda client: client.get_client("7")),
    "sage": Ledger(
        "Sage", f"{API}/contacts/c-7", {"id": "c-7"},
        lambda **kw: SageClient(api_url=API, business_id="b-1", timeout=5, **kw),
        lambda client: client.get_contact("c-7")),
}


@pytest.fixture(params=sorted(LEDGERS))
def ledger(request):
    return LEDGERS[request.param]


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


def answered(ledger: Ledger, forbidden=None):
    tokens, throttle = Tokens(), Throttle()
    client = ledger.client(tokens, throttle, forbidden)
    return client, tokens, throttle


def test_every_call_carries_the_bearer_token_asks_for_json_and_takes_a_throttle_slot(api, ledger):
    api.get(ledger.url, json=ledger.ok_body)
    client, _, throttle = answered(ledger)

    assert ledger.fetch(client)
    [call] = api.calls
    assert call.request.headers["Authorization"] == "Bearer token-1"
    assert call.request.headers["Accept"] == "application/json"
    assert (throttle.slots, client.calls_made) == (1, 1)


def test_a_401_refreshes_the_token_once_and_sends_the_same_call_again(api, ledger):
    api.get(ledger.url, status=401, json={})
    api.get(ledger.url, json=ledger.ok_body)
    client, tokens, _ = answered(ledger)

    assert ledger.fetch(client)
    assert tokens.refreshed_after == ["token-1"]
    assert [c.request.headers["Authorization"] for c in api.calls] == ["Bearer token-1", "Bearer token-2"]


def test_a_401_after_a_refresh_asks_for_reconnecting_and_says_so_once(api, ledger):
    api.get(ledger.url, status=401, json={})
    told = []
    client, tokens, _ = answered(ledger, forbidden=told.append)

    with pytest.raises(NeedsReconnect) as raised:
        ledger.fetch(client)
    assert len(api.calls) == 2 and tokens.refreshed_after == ["token-1"]
    assert told == ["401"]
    assert raised.value.user_message.startswith(f"{ledger.label} needs reconnecting")


def test_a_429_blocks_the_shared_throttle_for_the_retry_after_it_names(api, ledger):
    api.get(ledger.url, status=429, headers={"Retry-After": "17"}, json={})
    client, _, throttle = answered(ledger)

    with pytest.raises(RateLimited) as raised:
        ledger.fetch(client)
    assert raised.value.retry_after == 17.0 and throttle.blocked_for == [17.0]
    assert len(api.calls) == 1  # never called again in the same breath


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_a_temporary_failure_worth_retrying(api, ledger, status):
    api.get(ledger.url, status=status, body="<html>down</html>")
    client, _, _ = answered(ledger)

    with pytest.raises(TemporaryFailure) as raised:
        ledger.fetch(client)
    assert f": {status}" in raised.value.detail and raised.value.provider == ledger.label


def test_a_timeout_and_a_lost_connection_are_temporary_and_name_the_provider(api, ledger):
    api.get(ledger.url, body=requests.Timeout("slow"))
    api.get(ledger.url, body=requests.ConnectionError("reset"))
    client, _, _ = answered(ledger)

    with pytest.raises(TemporaryFailure) as timeout:
        ledger.fetch(client)
    with pytest.raises(TemporaryFailure) as lost:
        ledger.fetch(client)
    assert timeout.value.user_message == f"{ledger.label} did not answer in time."
    assert lost.value.user_message == f"The connection to {ledger.label} failed."


def test_a_404_says_the_record_is_gone(api, ledger):
    api.get(ledger.url, status=404, json={})
    client, _, _ = answered(ledger)

    with pytest.raises(RemoteNotFound) as raised:
        ledger.fetch(client)
    assert raised.value.user_message == f"The record no longer exists in {ledger.label}."


def test_an_answer_no_rule_covers_is_reported_as_unexpected_not_taken_as_success(api, ledger):
    api.get(ledger.url, status=304)
    client, _, _ = answered(ledger)

    with pytest.raises(TemporaryFailure) as raised:
        ledger.fetch(client)
    assert raised.value.user_message == f"{ledger.label} answered with an unexpected status (304)."


# -- each provider's own readings ------------------------------------------------------

def test_sage_does_not_refresh_for_a_lapsed_subscription_it_asks_for_reconnecting(api):
    ledger = LEDGERS["sage"]
    api.get(ledger.url, status=401, json=[{"$severity": "error", "$dataCode": "Unauthorized",
                                          "$message": "The subscription for this business has expired."}])
    told = []
    client, tokens, _ = answered(ledger, forbidden=told.append)

    with pytest.raises(NeedsReconnect):
        ledger.fetch(client)
    assert tokens.refreshed_after == [] and len(api.calls) == 1
    assert told == ["The subscription for this business has expired."]


def test_freshbooks_changing_the_record_at_the_same_moment_is_worth_another_attempt(api):
    ledger = LEDGERS["freshbooks"]
    api.get(ledger.url, status=422, json={"response": {"errors": [{"errno": 409, "message": "Conflict"}]}})
    client, _, _ = answered(ledger)

    with pytest.raises(TemporaryFailure) as raised:
        ledger.fetch(client)
    assert raised.value.user_message == "FreshBooks was changing the record at the same moment."


def test_freshbooks_access_denied_asks_for_reconnecting_without_a_refresh(api):
    ledger = LEDGERS["freshbooks"]
    api.get(ledger.url, status=403, json={"response": {"errors": [{"errno": 1003, "message": "Access denied"}]}})
    told = []
    client, tokens, _ = answered(ledger, forbidden=told.append)

    with pytest.raises(NeedsReconnect):
        ledger.fetch(client)
    assert tokens.refreshed_after == [] and told == ["Access denied"]


def test_xero_stops_calling_when_its_minute_allowance_is_used_up(api):
    ledger = LEDGERS["xero"]
    api.get(ledger.url, json=ledger.ok_body, headers={"X-MinLimit-Remaining": "0", "Retry-After": "42"})
    client, _, throttle = answered(ledger)

    assert ledger.fetch(client)  # the answer is still good
    assert throttle.blocked_for == [42.0]


def test_xero_412_is_temporary_and_accounting_calls_name_the_tenant(api):
    ledger = LEDGERS["xero"]
    api.get(ledger.url, status=412, json={})
    client, _, _ = answered(ledger)

    with pytest.raises(TemporaryFailure) as raised:
        ledger.fetch(client)
    assert raised.value.detail.endswith(": 412")
    assert api.calls[0].request.headers["xero-tenant-id"] == "t-1"
