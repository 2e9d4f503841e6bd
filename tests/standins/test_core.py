"""The one app that serves every provider's stand-in under its path prefix."""
from standins import create_app
from standins.xero.demo import UK_NAME, UK_TENANT_ID


def test_each_provider_answers_under_its_prefix_with_urls_that_keep_it(tmp_path):
    client = create_app({"DATABASE": str(tmp_path / "s.db"), "TESTING": True}).test_client()
    discovery = client.get("/xero/.well-known/openid-configuration").get_json()
    assert discovery["token_endpoint"] == "http://localhost/xero/connect/token"
    assert discovery["authorization_endpoint"] == "http://localhost/xero/identity/connect/authorize"
    assert client.get("/.well-known/openid-configuration").status_code == 404  # nothing outside a prefix
    assert (tmp_path / "s.xero.db").exists()  # each provider's state in its own file beside --db


def test_index_lists_each_provider_and_its_accounts_with_links(tmp_path):
    client = create_app({"DATABASE": str(tmp_path / "s.db"), "TESTING": True}).test_client()
    page = client.get("/").get_data(as_text=True)
    assert f'href="/xero/orgs/{UK_TENANT_ID}">{UK_NAME}</a>' in page
    assert client.get(f"/xero/orgs/{UK_TENANT_ID}").status_code == 200
    assert client.get("/favicon.ico").mimetype == "image/svg+xml"
