"""The GoCardless stand-in served over real HTTP at the root of its own port
(as `python -m standins.gocardless` serves it), on a temp SQLite file per
test, with a real receiver for its webhook deliveries."""
from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import gocardless_pro
import pytest
import requests
from werkzeug.serving import make_server

from standins.gocardless import create_app
from tests.standins.receiver import Receiver

CLIENT_ID, CLIENT_SECRET, HOOK_SECRET = "planman-dev", "planman-dev-secret", "hook-secret"
REDIRECT_URI = "http://127.0.0.1:5000/integrations/gocardless/callback"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


class Standin:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.http = requests.Session()

    def control(self, path: str, **body):
        return self.http.post(f"{self.url}/_control/{path}", json=body)

    def flush(self) -> list[dict]:
        return self.control("webhooks/flush").json()["attempts"]

    def connect(self, organisation: str | None = None) -> dict:
        """The partner OAuth walk, as PlanMan makes it: consent, code, token."""
        params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
                  "scope": "read_write", "state": "state-1"}
        page = self.http.get(f"{self.url}/oauth/authorize", params=params)
        assert page.status_code == 200 and "Connect" in page.text
        data = {**params, "decision": "allow"}
        if organisation:
            data["organisation"] = organisation
        back = self.http.post(f"{self.url}/oauth/authorize", data=data, allow_redirects=False)
        query = {k: v[0] for k, v in parse_qs(urlsplit(back.headers["Location"]).query).items()}
        assert query["state"] == "state-1"
        token = self.http.post(f"{self.url}/oauth/access_token", data={
            "grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        assert token.status_code == 200, token.text
        return token.json()

    def sdk(self, token: dict, **kwargs) -> gocardless_pro.Client:
        return gocardless_pro.Client(access_token=token["access_token"], base_url=self.url, **kwargs)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def standin(tmp_path, receiver):
    s = Standin(create_app({"DATABASE": str(tmp_path / "gc.db"), "TESTING": True, "WEBHOOK_URL": receiver.url,
                            "WEBHOOK_SECRET": HOOK_SECRET}))
    yield s
    s.stop()
