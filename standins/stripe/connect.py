"""Stripe Connect OAuth for Standard accounts (REFERENCE.md section 1; docs.stripe.com/connect/oauth-reference):
the authorize page (sign in to an account, or make one, and connect it), the token call and deauthorize."""
from __future__ import annotations

import re
import secrets
import time

from flask import Blueprint, jsonify, render_template, request

from ..core import oauth
from ..core.store import Store
from . import demo, objects, settings
from .api import api_key

bp = Blueprint("connect", __name__)
SCOPES = ("read_write", "read_only")


def _redirect_ok(uri: str) -> bool:
    allowed = settings.cfg("REDIRECT_URIS")
    return uri in allowed if allowed else oauth.local_redirect_uri(uri)


def _page_error(message: str, status: int = 400):
    return render_template("stripe/error.html", message=message), status


def _oauth_error(code: str, description: str, status: int = 400):
    return jsonify({"error": code, "error_description": description}), status


@bp.route("/oauth/authorize", methods=["GET", "POST"])
@bp.route("/express/oauth/authorize", methods=["GET", "POST"])
def authorize():
    values = request.values
    client_id, redirect_uri = values.get("client_id", ""), values.get("redirect_uri", "")
    scope, state = values.get("scope") or "read_only", values.get("state")
    if client_id != settings.cfg("CLIENT_ID"):
        return _page_error(f"Invalid client_id: {client_id or '(none)'}. No application matches this id.")
    if not redirect_uri:
        return _page_error("This application has no redirect URI registered; pass redirect_uri.")
    if not _redirect_ok(redirect_uri):
        return _page_error(f"Invalid redirect URI '{redirect_uri}'. Ensure this uri exactly matches one of the "
                           "uris specified in your application settings.")
    if values.get("response_type", "code") != "code" or scope not in SCOPES:
        return oauth.back(redirect_uri, error="invalid_request" if scope in SCOPES else "invalid_scope",
                          error_description=f"Invalid scope: {scope}" if scope not in SCOPES
                          else "response_type must be code", state=state)
    hidden = {k: values.get(k) for k in ("client_id", "redirect_uri", "scope", "state", "response_type")
              if values.get(k) is not None}
    with settings.store().read() as db:
        accounts = [objects.account(db, r["id"]) for r in db.execute("SELECT id FROM accounts ORDER BY created, id")]
    if request.method == "GET":
        return render_template("stripe/consent.html", hidden=hidden, accounts=accounts, scope=scope,
                               landing=values.get("stripe_landing") or "register",
                               prefill=values.get("stripe_user[business_name]", ""), message=None)
    if request.form.get("decision") != "connect":
        return oauth.back(redirect_uri, error="access_denied", error_description="The user denied your request",
                          state=state)
    choice = request.form.get("account", "")
    with settings.store().tx() as db:
        if choice == "new":
            name = request.form.get("business_name", "").strip()
            if not name:
                return render_template("stripe/consent.html", hidden=hidden, accounts=accounts, scope=scope,
                                       landing="register", prefill="", message="Enter your business name."), 422
            account_id = "acct_1" + re.sub("[^A-Za-z0-9]", "", secrets.token_urlsafe(12))[:15]
            objects.save_account(db, demo.account_doc(account_id, name[:100], "GB", "gbp",
                                                      request.form.get("email", "").strip() or "owner@example.test"))
        elif objects.account(db, choice) is None:
            return render_template("stripe/consent.html", hidden=hidden, accounts=accounts, scope=scope,
                                   landing="login", prefill="", message="Choose an account to connect."), 422
        else:
            account_id = choice
        code = "ac_" + secrets.token_hex(16)
        db.execute("INSERT INTO oauth_codes(code, client_id, account_id, scope, redirect_uri, created) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (code, client_id, account_id, scope, redirect_uri, time.time()))
    return oauth.back(redirect_uri, code=code, scope=scope, state=state)


def _platform_key_ok() -> bool:
    key = api_key() or request.form.get("client_secret", "")
    return secrets.compare_digest(key, settings.cfg("SECRET_KEY"))


@bp.post("/oauth/token")
def token():
    if not _platform_key_ok():
        return _oauth_error("invalid_client", "No such API key: the platform's secret key is required.", 401)
    grant = request.form.get("grant_type")
    if grant != "authorization_code":
        return _oauth_error("unsupported_grant_type", f"Unsupported grant type: {grant}")  # refresh: not needed
    code = request.form.get("code", "")
    with settings.store().tx() as db:
        row = db.execute("SELECT * FROM oauth_codes WHERE code=?", (code,)).fetchone()
        if row is None or row["used"] or time.time() - row["created"] > settings.cfg("CODE_SECONDS"):
            if row is not None and not row["used"]:
                db.execute("UPDATE oauth_codes SET used=1 WHERE code=?", (code,))
            # Stripe's words for a spent or unknown code (docs.stripe.com/connect/oauth-reference, errors).
            return _oauth_error("invalid_grant", f"Authorization code does not exist: {code}")
        db.execute("UPDATE oauth_codes SET used=1 WHERE code=?", (code,))
        db.execute("INSERT INTO connections(account_id, client_id, scope, created) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT(account_id) DO UPDATE SET scope=excluded.scope", (row["account_id"], row["client_id"],
                                                                                   row["scope"], time.time()))
        Store.bump(db, "oauth_tokens")
    return jsonify({"access_token": "sk_test_" + secrets.token_hex(20), "livemode": False,
                    "refresh_token": "rt_" + secrets.token_hex(20), "scope": row["scope"],
                    "stripe_publishable_key": "pk_test_" + secrets.token_hex(20),
                    "stripe_user_id": row["account_id"], "token_type": "bearer"})


def deauthorize_account(db, account_id: str) -> bool:
    """The connection ends and the platform is told (account.application.deauthorized)."""
    if db.execute("DELETE FROM connections WHERE account_id=?", (account_id,)).rowcount == 0:
        return False
    application = {"id": settings.cfg("CLIENT_ID"), "object": "application", "name": "PlanMan"}
    objects.emit(db, "account.application.deauthorized", application, account_id)
    return True


@bp.post("/oauth/deauthorize")
def deauthorize():
    if not _platform_key_ok():
        return _oauth_error("invalid_client", "No such API key: the platform's secret key is required.", 401)
    client_id, account_id = request.form.get("client_id", ""), request.form.get("stripe_user_id", "")
    if client_id != settings.cfg("CLIENT_ID"):
        return _oauth_error("invalid_client", f"No such application: '{client_id}'")
    with settings.store().tx() as db:
        if not deauthorize_account(db, account_id):
            # guess: the wording Stripe uses for an account this application is not connected to
            return _oauth_error("invalid_client", f"This application is not connected to stripe account "
                                f"{account_id}, or that account does not exist.")
    return jsonify({"stripe_user_id": account_id})
