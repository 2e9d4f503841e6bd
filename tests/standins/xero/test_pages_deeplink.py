"""Xero's deep links (as PlanMan's "View in Xero" builds them) open the record in the stand-in."""
from urllib.parse import quote

from standins.xero import create_app
from standins.xero.demo import UK_SHORT_CODE, UK_TENANT_ID


def test_deep_link_opens_the_organisation_at_the_record(tmp_path):
    app = create_app({"DATABASE": str(tmp_path / "x.db"), "TESTING": True})
    client = app.test_client()
    invoice_id = "22222222-2222-4222-8222-222222222222"
    target = quote(f"/AccountsReceivable/View.aspx?InvoiceID={invoice_id}", safe="")
    answer = client.get(f"/organisationlogin/default.aspx?shortcode={quote(UK_SHORT_CODE)}&redirecturl={target}")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/orgs/{UK_TENANT_ID}#invoice-{invoice_id}")
    assert client.get("/organisationlogin/default.aspx?shortcode=nope").status_code == 404
