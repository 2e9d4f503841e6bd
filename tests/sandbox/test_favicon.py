"""The stand-in's pages name their own favicon, and it is served (it 404ed)."""


def test_the_stand_ins_pages_have_a_favicon(xero):
    page = xero.get("/").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    icon = xero.get("/static/favicon.svg")
    assert icon.status_code == 200
    assert icon.mimetype == "image/svg+xml" and b"<svg" in icon.data
