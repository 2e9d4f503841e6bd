"""`python -m standins` (the session's `standins_url`): one process, every provider under its prefix,
each with its own state, and an index page listing each provider's accounts and what arrived."""
import pytest
import requests

from standins.freshbooks.demo import UK_ACCOUNT_ID, UK_NAME as FB_UK_NAME
from standins.xero.demo import UK_TENANT_ID

pytestmark = pytest.mark.integration
REDIRECT_URI = "http://127.0.0.1:5000/integrations/freshbooks/callback"


def _freshbooks_token(url: str) -> str:
    answer = requests.post(f"{url}/oauth/authorize", data={
        "response_type": "code", "client_id": "planman-dev", "redirect_uri": REDIRECT_URI, "decision": "allow"},
        allow_redirects=False, timeout=10)
    code = answer.headers["Location"].split("code=")[1].split("&")[0]
    tokens = requests.post(f"{url}/auth/oauth/token", json={
        "grant_type": "authorization_code", "code": code, "client_id": "planman-dev",
        "client_secret": "planman-dev-secret", "redirect_uri": REDIRECT_URI}, timeout=10).json()
    return tokens["access_token"]


def test_each_provider_under_its_prefix_with_its_own_state_and_one_index(standins_url, sandbox, freshbooks_standin):
    token = _freshbooks_token(freshbooks_standin.url)
    created = requests.post(f"{freshbooks_standin.url}/accounting/account/{UK_ACCOUNT_ID}/users/clients",
                            json={"client": {"organization": "One Process Ltd"}},
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert created.status_code == 200
    [uk] = [a for a in freshbooks_standin.state()["accounts"] if a["account_id"] == UK_ACCOUNT_ID]
    assert [c["organization"] for c in uk["clients"]] == ["One Process Ltd"]
    assert all(o["contacts"] == [] for o in sandbox.state()["organisations"])  # Xero's state is its own

    index = requests.get(f"{standins_url}/", timeout=10).text
    assert f'href="/xero/orgs/{UK_TENANT_ID}"' in index
    assert f'href="/freshbooks/accounts/{UK_ACCOUNT_ID}">{FB_UK_NAME}</a>' in index
    row = index[index.index(f'/freshbooks/accounts/{UK_ACCOUNT_ID}'):].split("</tr>")[0]
    assert '<td class="num">1</td>' in row  # one client arrived
