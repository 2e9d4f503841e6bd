"""GoCardless's partner OAuth (REFERENCE.md section 1): the consent page, the
token endpoint and revoke.

The token has no expiry and no refresh token; its answer names the
organisation (`organisation_id`) and the user's e-mail. A revoked token
answers 401 on every API call."""
from __future__ import annotations

import json
import secrets

from flask import Blueprint, jsonify, render_template, request

from ..core import oauth
from . import settings
from .settings import cfg

bp = Blueprint("auth", __name__)
NEVER = 100 * 365 * 24 * 3600  # "valid until revoked"
SCOPES = ("read_write", "read_only")


def redirect_uri_allowed(uri: str) -> bool:
    configured = cfg("REDIRECT_URIS")
    return uri in configured if configured is not None else oauth.local_redirect_uri(uri)


def _organisations(db) -> list[dict]:
    return [{"id": r["id"], "email": r["email"], "creditor": json.loads(r["creditor"])}
            for r in db.execute("SELECT * FROM organisations ORDER BY id")]


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    params = request.values
    client_id, redirect_uri, state = params.get("client_id", ""), params.get("redirect_uri", ""), params.get("state")
    if client_id != cfg("CLIENT_ID"):
        return render_template("gocardless/error.html", message="Unknown client_id."), 400
    if not redirect_uri_allowed(redirect_uri):
        return render_template("gocardless/error.html", message="redirect_uri is not registered for this app."), 400
    if params.get("response_type") != "code":
        return oauth.back(redirect_uri, error="unsupported_response_type", state=state)
    scope = params.get("scope") or ""
    if scope not in SCOPES:
        return oauth.back(redirect_uri, error="invalid_scope", state=state)
    hidden = {k: params.get(k, "") for k in ("response_type", "client_id", "redirect_uri", "scope", "state")}
    with settings.store().read() as db:
        organisations = _organisations(db)
    if request.method == "GET":
        return render_template("gocardless/consent.html", organisations=organisations, hidden=hidden, scope=scope,
                               prefill_email=params.get("prefill[email]", ""))
    if request.form.get("decision") != "allow":
        return oauth.back(redirect_uri, error="access_denied", state=state)
    chosen = next((o for o in organisations if o["id"] == request.form.get("organisation")), organisations[0])
    with settings.store().tx() as db:
        code = oauth.new_code(db, client_id=client_id, redirect_uri=redirect_uri, scope=scope,
                              tenants=json.dumps([chosen["id"]]), user_email=chosen["email"])
    return oauth.back(redirect_uri, code=code, state=state)


def _client_ok() -> bool:
    return (secrets.compare_digest(request.form.get("client_id") or "", cfg("CLIENT_ID"))
            and secrets.compare_digest(request.form.get("client_secret") or "", cfg("CLIENT_SECRET")))


@bp.post("/oauth/access_token")
def access_token():
    if not _client_ok():
        return oauth.error("invalid_client", 401, "client authentication failed")
    if request.form.get("grant_type") != "authorization_code":
        return oauth.error("unsupported_grant_type", 400)
    with settings.store().tx() as db:
        row, problem = oauth.take_code(db, request.form.get("code"), request.form.get("redirect_uri"), None,
                                       cfg("CODE_SECONDS"))
        if problem:
            return oauth.error("invalid_grant", 400, problem)
        grant_id = oauth.new_grant(db, row)
        organisation = json.loads(row["tenants"])[0]
        db.execute("INSERT INTO grant_organisations(grant_id, organisation_id) VALUES (?, ?)", (grant_id, organisation))
        token = "sandbox_" + secrets.token_urlsafe(30)
        oauth.save_access_token(db, token, grant_id, NEVER)
    return jsonify({"access_token": token, "token_type": "bearer", "scope": row["scope"],
                    "organisation_id": organisation, "email": row["user_email"]})


@bp.post("/oauth/revoke")
def revoke():
    if not _client_ok():
        return oauth.error("invalid_client", 401, "client authentication failed")
    with settings.store().tx() as db:
        found = db.execute("SELECT grant_id FROM access_tokens WHERE token=?",
                           (request.form.get("token") or "",)).fetchone()
        if found is not None:
            oauth.drop_grant_tokens(db, found["grant_id"])
    return jsonify({})  # RFC 7009: unknown tokens are not an error


def organisations(db) -> list[dict]:
    return _organisations(db)

