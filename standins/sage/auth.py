"""Sage's OAuth 2.0 server (REF 1): the consent page with a business picker, the token
endpoint with Sage's lifetimes and rotation, and revoke.

Codes live 60 s and are single use; access tokens 5 minutes; refresh tokens rotate on
every use (the old one is dead at once: core/oauth.py's policy with grace None) and
die after 31 days unused. All three lifetimes are settable through the control API."""
from __future__ import annotations

import json
import secrets

from flask import Blueprint, jsonify, render_template, request

from ..core import faults, oauth
from . import demo, errors, settings
from .settings import cfg

bp = Blueprint("auth", __name__)

SCOPES = ("full_access", "readonly")  # REF 1


def redirect_uri_allowed(uri: str) -> bool:
    configured = cfg("REDIRECT_URIS")
    if configured is not None:
        return uri in configured  # REF 1: registered per app, matched character for character
    return oauth.local_redirect_uri(uri)


def user_businesses(db, email: str) -> list[dict]:
    rows = db.execute("SELECT doc FROM businesses WHERE user_email=? ORDER BY position", (email,)).fetchall()
    return [json.loads(r["doc"]) for r in rows]


@bp.route("/oauth2/auth/central", methods=["GET", "POST"])
def authorize():
    """REF 1's authorize URL. `country` preselects that country's first business (REF 1: it skips Sage's
    country picker); `login` picks which demo user is signed in (the stand-in's own parameter)."""
    params = request.values
    client_id, redirect_uri, state = params.get("client_id", ""), params.get("redirect_uri", ""), params.get("state")
    if client_id != cfg("CLIENT_ID"):
        return render_template("sage/error.html", message="Unknown client_id."), 400
    if not redirect_uri_allowed(redirect_uri):
        return render_template("sage/error.html", message="redirect_uri is not registered for this app."), 400
    if params.get("response_type") != "code":
        return oauth.back(redirect_uri, error="unsupported_response_type", state=state)
    scope = params.get("scope") or "full_access"
    if scope not in SCOPES:
        return oauth.back(redirect_uri, error="invalid_scope", state=state)
    user = params.get("login") or demo.DEMO_USER
    if user not in demo.USERS:
        return render_template("sage/error.html", message="No such demo user."), 400
    with settings.store().read() as db:
        businesses = user_businesses(db, user)
    if request.method == "GET":
        country = (params.get("country") or "").upper()
        chosen = next((b["id"] for b in businesses if b["country"]["id"] == country), businesses[0]["id"])
        hidden = {k: params.get(k, "") for k in ("response_type", "client_id", "redirect_uri", "scope", "state",
                                                 "country", "filter", "locale")}
        others = [u for u in demo.USERS if u != user]
        return render_template("sage/consent.html", user=user, businesses=businesses, chosen=chosen,
                               hidden={**hidden, "login": user}, scope=scope, others=others, params=params)
    if request.form.get("decision") != "allow":
        return oauth.back(redirect_uri, error="access_denied", state=state)
    business_id = request.form.get("business_id", "")
    if business_id not in {b["id"] for b in businesses}:
        return render_template("sage/error.html", message="Pick one of your businesses."), 400
    with settings.store().tx() as db:
        code = oauth.new_code(db, client_id=client_id, redirect_uri=redirect_uri, scope=scope,
                              tenants=json.dumps([business_id]), user_email=user)
    return oauth.back(redirect_uri, code=code, state=state)


def _issue(db, grant_id: str, row) -> dict:
    times = settings.lifetimes(db)
    access = secrets.token_urlsafe(48)
    oauth.save_access_token(db, access, grant_id, times["access_token_seconds"])
    user = db.execute("SELECT user_email FROM grants WHERE grant_id=?", (grant_id,)).fetchone()["user_email"]
    # REF 1: the fields Sage's sample reads; requested_by_id (the user) is unconfirmed there.
    return {"access_token": access, "expires_in": int(times["access_token_seconds"]), "token_type": "bearer",
            "refresh_token": oauth.new_refresh_token(db, grant_id),
            "refresh_token_expires_in": int(times["refresh_token_seconds"]), "scope": row["scope"],
            "requested_by_id": demo.USERS[user]["id"]}


def _issue_for_code(db, grant_id: str, code_row) -> dict:
    db.execute("INSERT INTO grant_leads(grant_id, business_id) VALUES (?, ?)",
               (grant_id, json.loads(code_row["tenants"])[0]))
    return _issue(db, grant_id, code_row)


@bp.post("/token")
def token():
    """REF 1: form-encoded; client_id/client_secret in the form (or HTTP Basic)."""
    form = request.form
    if not oauth.client_ok(cfg("CLIENT_ID"), cfg("CLIENT_SECRET")):
        return oauth.error("invalid_client", 401, "Client authentication failed.")  # guess: status and body
    grant_type = form.get("grant_type")
    if grant_type not in ("authorization_code", "refresh_token"):
        return oauth.error("unsupported_grant_type", 400)
    with settings.store().tx() as db:
        lose_answer = faults.take_token_answer_drop(db)
        times = settings.lifetimes(db)
        if grant_type == "authorization_code":
            body, problem = oauth.exchange_code(db, form, code_lifetime=times["code_seconds"], issue=_issue_for_code)
        else:
            body = oauth.refresh(db, form.get("refresh_token", ""), lifetime=times["refresh_token_seconds"],
                                 grace=None, issue=_issue)
            problem = None if body else "The refresh token is invalid, expired, revoked or already used."
    if body is None:
        return oauth.error("invalid_grant", 400, problem)  # REF 1: invalid_grant, HTTP 400
    if lose_answer:  # committed: the code or refresh token is spent, the new pair never arrives
        faults.drop_connection(settings.store())
    return jsonify(body)


@bp.post("/revoke")
def revoke():
    """REF 1: client_id, client_secret, token=<refresh token>; the user must authorize again. An access
    token is taken too, and an unknown token is no error (RFC 7009; Sage's answer: guess)."""
    if not oauth.client_ok(cfg("CLIENT_ID"), cfg("CLIENT_SECRET")):
        return oauth.error("invalid_client", 401, "Client authentication failed.")
    with settings.store().tx() as db:
        grant_id = oauth.grant_of_token(db, request.form.get("token", ""))
        if grant_id:
            oauth.drop_grant_tokens(db, grant_id)
    return jsonify({}), 200


def bearer(db):
    """(grant row, None) for a live access token, else (None, 401 response)."""
    grant, problem = oauth.bearer(db)
    if problem == "expired":
        return None, errors.unauthorized("The access token has expired.")  # guess: wording
    if problem:
        return None, errors.unauthorized("The access token is missing or invalid.")
    return grant, None
