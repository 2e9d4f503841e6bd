"""FreshBooks' OAuth 2.0 server and identity endpoint (REFERENCE.md sections 1 and 2).

Authorization-code flow without PKCE (FreshBooks documents none); the consent
page shows the identity's business memberships (access covers all of them: the
app picks one afterwards from /users/me). Access tokens live 12 hours; refresh
tokens are single-use with no grace period (core/oauth.py's policy with grace
None): a reused one is invalid_grant, even a second later."""
from __future__ import annotations

import secrets
import time

from flask import Blueprint, jsonify, render_template, request

from ..core import faults, oauth
from . import demo, errors, settings
from .settings import cfg

bp = Blueprint("auth", __name__)

USER = demo.IDENTITY["email"]
# What the consent grants when the request names no scope (REFERENCE.md section 1:
# "Omitting scope grants the app's registered default scopes"; these defaults are the stand-in's choice).
DEFAULT_SCOPES = ("user:profile:read user:clients:read user:clients:write user:invoices:read user:invoices:write "
                  "user:taxes:read")


def redirect_uri_allowed(uri: str) -> bool:
    configured = cfg("REDIRECT_URIS")
    if configured is not None:
        return uri in configured  # registered per app, matched exactly
    return oauth.local_redirect_uri(uri)


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    params = request.values
    client_id, redirect_uri, state = params.get("client_id", ""), params.get("redirect_uri", ""), params.get("state")
    if client_id != cfg("CLIENT_ID"):
        return render_template("freshbooks/error.html", message="Unknown client_id."), 400
    if not redirect_uri_allowed(redirect_uri):
        return render_template("freshbooks/error.html", message="redirect_uri is not registered for this app."), 400
    if params.get("response_type") != "code":
        return oauth.back(redirect_uri, error="unsupported_response_type", state=state)
    scope = params.get("scope") or DEFAULT_SCOPES
    hidden = {k: params.get(k, "") for k in ("response_type", "client_id", "redirect_uri", "scope", "state")}
    if request.method == "GET":
        with settings.store().read() as db:
            memberships = demo.memberships(db)
        return render_template("freshbooks/consent.html", identity=demo.IDENTITY, memberships=memberships,
                               hidden=hidden, scopes=scope.split())
    if request.form.get("decision") != "allow":
        return oauth.back(redirect_uri, error="access_denied", state=state)
    with settings.store().tx() as db:
        code = oauth.new_code(db, client_id=client_id, redirect_uri=redirect_uri, scope=scope, tenants="[]",
                              user_email=USER)
    return oauth.back(redirect_uri, code=code, state=state)


def _form() -> dict:
    """The token endpoint takes JSON (FreshBooks' docs) or a form (what freshbooks-sdk sends)."""
    return request.get_json(silent=True) or request.form.to_dict()


def _client_ok(form: dict) -> bool:
    if request.authorization:
        return oauth.client_ok(cfg("CLIENT_ID"), cfg("CLIENT_SECRET"))
    return (secrets.compare_digest(form.get("client_id") or "", cfg("CLIENT_ID"))
            and secrets.compare_digest(form.get("client_secret") or "", cfg("CLIENT_SECRET")))


def _issue(db, grant_id: str, row) -> dict:
    lifetime = settings.lifetimes(db)["access_token_seconds"]
    access = secrets.token_hex(32)
    oauth.save_access_token(db, access, grant_id, lifetime)
    return {"access_token": access, "token_type": "Bearer", "expires_in": int(lifetime),
            "refresh_token": oauth.new_refresh_token(db, grant_id), "scope": row["scope"],
            "created_at": int(time.time())}


@bp.post("/auth/oauth/token")
def token():
    form = _form()
    if not _client_ok(form):
        return oauth.error("invalid_client", 401, "Client authentication failed.")
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        with settings.store().tx() as db:
            body, problem = oauth.exchange_code(db, form, code_lifetime=cfg("CODE_SECONDS"), issue=_issue)
        return oauth.error("invalid_grant", 400, problem) if problem else jsonify(body)
    if grant_type == "refresh_token":
        with settings.store().tx() as db:
            lose_answer = faults.take_token_answer_drop(db)
            body = oauth.refresh(db, form.get("refresh_token", ""), lifetime=cfg("REFRESH_TOKEN_SECONDS"),
                                 grace=settings.lifetimes(db)["refresh_grace_seconds"], issue=_issue)
        if body is None:
            return oauth.error("invalid_grant", 400, "The provided authorization grant is invalid, expired, "
                                                     "revoked, or was issued to another client.")
        if lose_answer:  # committed: the old refresh token is spent, the new pair never arrives
            faults.drop_connection(settings.store())
        return jsonify(body)
    return oauth.error("unsupported_grant_type", 400)


@bp.post("/auth/oauth/revoke")
def revoke():
    """Revoke an access or refresh token: its whole grant goes (RFC 7009; unknown tokens are no error)."""
    form = _form()
    if not _client_ok(form):
        return oauth.error("invalid_client", 401, "Client authentication failed.")
    with settings.store().tx() as db:
        grant_id = oauth.grant_of_token(db, form.get("token", ""))
        if grant_id:
            oauth.drop_grant_tokens(db, grant_id)
    return jsonify({}), 200


def bearer(db):
    """(grant, None) for a live access token, else (None, 401 response)."""
    grant, problem = oauth.bearer(db)
    if problem == "expired":
        return None, errors.unauthorized("The access token expired.")
    if problem:
        return None, errors.unauthorized("The access token is missing or invalid.")
    return grant, None


@bp.get("/auth/api/v1/users/me")
def me():
    with settings.store().read() as db:
        grant, refusal = bearer(db)
        if refusal:
            return refusal
        memberships = demo.memberships(db)
    # The identity model (REFERENCE.md section 2); the fields beyond memberships are the stand-in's choice.
    return jsonify({"response": {**demo.IDENTITY, "id": demo.IDENTITY["identity_id"],
                                 "business_memberships": memberships, "roles": [], "groups": []}})
