"""The only code that talks to GoCardless.

API calls go through the official ``gocardless-pro`` SDK with the firm's own
access token, pointed at ``GOCARDLESS_API_URL``: it sends the API version,
retries timeouts and dropped connections with the same Idempotency-Key, and
on a 409 ``idempotent_creation_conflict`` fetches the payment (or other
resource) the first attempt created instead of raising. The SDK has no OAuth
helpers, so the three OAuth calls of the partner flow are plain requests."""
from __future__ import annotations

from urllib.parse import urlencode

import gocardless_pro
import requests
from flask import current_app

from planman.integrations.tokens import load_token


def api(connection) -> gocardless_pro.Client:
    token = load_token(connection) or {}
    cfg = current_app.config
    return gocardless_pro.Client(access_token=token.get("access_token") or "-", base_url=cfg["GOCARDLESS_API_URL"],
                                 timeout=cfg["GOCARDLESS_HTTP_TIMEOUT"])


# -- OAuth (partner connect) ----------------------------------------------------------

def authorize_url(redirect_uri: str, state: str, *, email: str = "", organisation_name: str = "") -> str:
    cfg = current_app.config
    params = {"response_type": "code", "client_id": cfg["GOCARDLESS_CLIENT_ID"], "redirect_uri": redirect_uri,
              "scope": "read_write", "state": state, "initial_view": "login"}
    if email:
        params["prefill[email]"] = email
    if organisation_name:
        params["prefill[organisation_name]"] = organisation_name
    return f"{cfg['GOCARDLESS_CONNECT_URL']}/oauth/authorize?{urlencode(params)}"


class OAuthRefused(Exception):
    def __init__(self, error: str, description: str = ""):
        super().__init__(error)
        self.error, self.description = error, description


def _connect_post(path: str, data: dict) -> dict:
    cfg = current_app.config
    response = requests.post(f"{cfg['GOCARDLESS_CONNECT_URL']}{path}", timeout=cfg["GOCARDLESS_HTTP_TIMEOUT"],
                             data={**data, "client_id": cfg["GOCARDLESS_CLIENT_ID"],
                                   "client_secret": cfg["GOCARDLESS_CLIENT_SECRET"]},
                             headers={"Accept": "application/json"})
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400 or not isinstance(body, dict):
        body = body if isinstance(body, dict) else {}
        raise OAuthRefused(str(body.get("error") or f"http_{response.status_code}"),
                           str(body.get("error_description") or ""))
    return body


def exchange_code(code: str, redirect_uri: str) -> dict:
    """``access_token`` (no expiry, no refresh token) and the ``organisation_id`` it is for."""
    return _connect_post("/oauth/access_token", {"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": redirect_uri})


def revoke(access_token: str) -> None:
    _connect_post("/oauth/revoke", {"token": access_token})
