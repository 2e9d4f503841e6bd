"""Xero's identity service: discovery, consent, tokens, revocation, connections.

One grant is one completed authorisation by one Xero user (its id is the
authEventId, and the access tokens' authentication_event_id claim). A
connection joins a user, the app and an organisation: it outlives the grant
that made it, so GET /connections lists every organisation the user has
connected to the app, and re-approving an organisation moves its connection to
the new grant (same id, new authEventId and updatedDateUtc). Access tokens are
RS256 JWTs (keys at the discovery document's jwks_uri). Revoking a refresh
token removes that token family and every connection of the user to the app."""
from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Blueprint, jsonify, render_template, request

from ..core import oauth
from ..core.store import Store
from . import settings, specval
from .settings import cfg
from .xdates import utc_iso

bp = Blueprint("identity", __name__)


def _base_url() -> str:
    # url_root keeps the path prefix this provider is mounted under (/xero in `python -m standins`).
    return request.url_root.rstrip("/")


@bp.get("/.well-known/openid-configuration")
def discovery():
    base = _base_url()
    return jsonify({
        "issuer": base,
        "authorization_endpoint": f"{base}/identity/connect/authorize",
        "token_endpoint": f"{base}/connect/token",
        "revocation_endpoint": f"{base}/connect/revocation",
        "jwks_uri": f"{base}/.well-known/openid-configuration/jwks",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "profile", "email", "offline_access", "accounting.contacts",
                             "accounting.contacts.read", "accounting.transactions",
                             "accounting.transactions.read", "accounting.invoices",
                             "accounting.invoices.read", "accounting.payments", "accounting.payments.read",
                             "accounting.settings", "accounting.settings.read"],
    })


@bp.get("/.well-known/openid-configuration/jwks")
def jwks():
    with settings.store().tx() as db:
        key = _signing_key(db)
    numbers = key.public_key().public_numbers()

    def b64(n: int) -> str:
        return _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))
    return jsonify({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": _kid(key),
                              "n": b64(numbers.n), "e": b64(numbers.e)}]})


# -- access tokens (JWTs) --------------------------------------------------

DEFAULT_USER = "demo@xero-stand-in.test"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _signing_key(db):
    """The RSA key tokens are signed with, kept in the shared state so every process signs alike."""
    pem = Store.get_setting(db, "jwt_key", None)
    if pem is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        Store.put_setting(db, "jwt_key", pem)
    return serialization.load_pem_private_key(pem.encode(), None)


def _kid(key) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha1(der).hexdigest().upper()


def user_id(email: str) -> str:
    """A stable xero_userid for a stand-in user (the e-mail typed on the consent page)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "xero-stand-in-user:" + email.strip().lower()))


def _jwt(db, claims: dict) -> str:
    key = _signing_key(db)
    header = {"alg": "RS256", "kid": _kid(key), "typ": "JWT"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


# -- consent ---------------------------------------------------------------

def redirect_uri_allowed(uri: str) -> bool:
    configured = cfg("REDIRECT_URIS")
    if configured is not None:
        return uri in configured  # exact match, like Xero's registered URIs
    return oauth.local_redirect_uri(uri)


_back = oauth.back


@bp.route("/identity/connect/authorize", methods=["GET", "POST"])
def authorize():
    params = request.values
    client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
    state = params.get("state")
    # Never redirect to an unchecked URI: an unknown client or URI is shown, not bounced.
    if client_id != cfg("CLIENT_ID"):
        return render_template("error.html", message="Unknown client_id."), 400
    if not redirect_uri_allowed(redirect_uri):
        return render_template("error.html", message="redirect_uri is not registered for this app."), 400
    if params.get("response_type") != "code":
        return _back(redirect_uri, error="unsupported_response_type", state=state)
    challenge = params.get("code_challenge")
    if challenge and params.get("code_challenge_method") != "S256":
        return _back(redirect_uri, error="invalid_request",
                     error_description="code_challenge_method must be S256", state=state)

    with settings.store().read() as db:
        orgs = [dict(tenant_id=r["tenant_id"], name=json.loads(r["doc"])["Name"])
                for r in db.execute("SELECT tenant_id, doc FROM organisations ORDER BY tenant_id")]
    hidden = {k: params.get(k, "") for k in ("response_type", "client_id", "redirect_uri", "scope", "state",
                                              "code_challenge", "code_challenge_method")}
    user = (request.form.get("user") or DEFAULT_USER).strip().lower()
    if request.method == "GET":
        return render_template("consent.html", orgs=orgs, hidden=hidden, message=None, user=user,
                               scopes=params.get("scope", "").split())

    if request.form.get("decision") != "allow":
        return _back(redirect_uri, error="access_denied", state=state)
    known = {o["tenant_id"] for o in orgs}
    tenants = [t for t in request.form.getlist("tenant") if t in known]
    if not tenants:
        return render_template("consent.html", orgs=orgs, hidden=hidden, scopes=params.get("scope", "").split(),
                               user=user, message="Select at least one organisation to allow access to."), 200
    with settings.store().tx() as db:
        code = oauth.new_code(db, client_id=client_id, redirect_uri=redirect_uri, scope=params.get("scope", ""),
                              challenge=challenge or None, tenants=json.dumps(tenants), user_email=user)
    return _back(redirect_uri, code=code, scope=params.get("scope"), state=state)


# -- token endpoint ----------------------------------------------------------

_oauth_error = oauth.error


def _client_ok() -> bool:
    return oauth.client_ok(cfg("CLIENT_ID"), cfg("CLIENT_SECRET"))


def _issue(db, grant_id: str, scope: str) -> dict:
    now = time.time()
    lifetime = settings.lifetimes(db)["access_token_seconds"]
    grant = db.execute("SELECT * FROM grants WHERE grant_id=?", (grant_id,)).fetchone()
    xero_userid = user_id(grant["user_email"])
    # The claims of a real Xero access token (README.md, "Access tokens").
    access = _jwt(db, {
        "nbf": int(now), "exp": int(now + lifetime), "iss": _base_url(), "aud": f"{_base_url()}/resources",
        "client_id": grant["client_id"], "sub": hashlib.sha256(xero_userid.encode()).hexdigest()[:32],
        "auth_time": int(grant["created"]), "xero_userid": xero_userid,
        "global_session_id": uuid.UUID(grant_id).hex, "sid": uuid.UUID(grant_id).hex, "jti": uuid.uuid4().hex,
        "authentication_event_id": grant_id, "scope": scope.split()})
    oauth.save_access_token(db, access, grant_id, lifetime)
    body = {"access_token": access, "expires_in": int(lifetime), "token_type": "Bearer", "scope": scope}
    if "offline_access" in scope.split():  # as Xero: no refresh token without offline_access
        body["refresh_token"] = oauth.new_refresh_token(db, grant_id)
    return body


@bp.post("/connect/token")
def token():
    if not _client_ok():
        return _oauth_error("invalid_client", 401)
    grant_type = request.form.get("grant_type")
    if grant_type == "authorization_code":
        return _exchange_code()
    if grant_type == "refresh_token":
        return _refresh()
    return _oauth_error("unsupported_grant_type", 400)


def _exchange_code():
    form, now = request.form, time.time()
    with settings.store().tx() as db:
        row, problem = oauth.take_code(db, form.get("code", ""), form.get("redirect_uri"), form.get("code_verifier"),
                                       cfg("CODE_SECONDS"))
        if problem:
            Store.bump(db, "invalid_grants")
        else:
            grant_id = oauth.new_grant(db, row)
            existing = {r["tenant_id"]: r["id"] for r in _user_connections(db, row["user_email"], row["client_id"])}
            for tenant_id in json.loads(row["tenants"]):
                if tenant_id in existing:  # approved again: the same connection, now this grant's
                    db.execute("UPDATE connections SET grant_id=?, updated=? WHERE id=?",
                               (grant_id, now, existing[tenant_id]))
                else:
                    db.execute("INSERT INTO connections(id, grant_id, tenant_id, created, updated) "
                               "VALUES (?, ?, ?, ?, ?)", (str(uuid.uuid4()), grant_id, tenant_id, now, now))
            body = _issue(db, grant_id, row["scope"])
    if problem:
        return _oauth_error("invalid_grant", 400, problem)
    return jsonify(body)


def _refresh():
    with settings.store().tx() as db:
        row = oauth.find_refresh_token(db, request.form.get("refresh_token", ""))
        verdict = oauth.refresh_verdict(row, lifetime=cfg("REFRESH_TOKEN_SECONDS"),
                                        grace=settings.lifetimes(db)["refresh_grace_seconds"])
        ok = verdict is not None
        if not ok:
            Store.bump(db, "invalid_grants")
        else:
            # Within the grace period a used token answers with a fresh pair each time
            # (the lost-response retry); every pair issued stays valid on its own.
            Store.bump(db, "refreshes")
            if verdict == "rotate":
                Store.bump(db, "rotations")
                oauth.mark_used(db, row["token"])
            else:
                Store.bump(db, "grace_refreshes")
            body = _issue(db, row["grant_id"], row["scope"])
    if not ok:
        return _oauth_error("invalid_grant", 400)
    return jsonify(body)


@bp.post("/connect/revocation")
def revocation():
    if not _client_ok():
        return _oauth_error("invalid_client", 401)
    with settings.store().tx() as db:
        row = db.execute("SELECT grant_id FROM refresh_tokens WHERE token=?",
                         (request.form.get("token", ""),)).fetchone()
        if row:
            revoke_grant(db, row["grant_id"])
    return "", 200  # RFC 7009: unknown tokens are not an error


def _user_connections(db, user_email: str, client_id: str) -> list:
    """Every connection of one Xero user to one app, whichever grant made it."""
    return db.execute("SELECT c.* FROM connections c JOIN grants g USING (grant_id) "
                      "WHERE g.user_email=? AND g.client_id=? ORDER BY c.created, c.id",
                      (user_email, client_id)).fetchall()


def connected(db, grant, tenant_id: str) -> bool:
    """Whether the token's user has connected this organisation to the app (through any grant)."""
    return any(c["tenant_id"] == tenant_id for c in _user_connections(db, grant["user_email"], grant["client_id"]))


def revoke_grant(db, grant_id: str) -> None:
    grant = db.execute("SELECT * FROM grants WHERE grant_id=?", (grant_id,)).fetchone()
    for connection in _user_connections(db, grant["user_email"], grant["client_id"]):
        db.execute("DELETE FROM connections WHERE id=?", (connection["id"],))
    oauth.drop_grant_tokens(db, grant_id)


# -- bearer tokens and connections ----------------------------------------

def unauthorized(detail: str):
    body = {"type": None, "title": "Unauthorized", "status": 401, "detail": detail,
            "instance": str(uuid.uuid4()), "extensions": {}}
    response = jsonify(body)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def bearer_grant(db):
    """(grant row, None) for a live access token, else (None, 401 response)."""
    row, problem = oauth.bearer(db)
    if problem == "expired":
        return None, unauthorized(f"TokenExpired: token expired at {utc_iso(row['expires'])}")
    if problem:
        return None, unauthorized("AuthenticationUnsuccessful")
    return row, None


def _connection_json(row, tenant_names):
    return {"id": row["id"], "authEventId": row["grant_id"], "tenantId": row["tenant_id"],
            "tenantType": "ORGANISATION", "tenantName": tenant_names.get(row["tenant_id"]),
            "createdDateUtc": utc_iso(row["created"]), "updatedDateUtc": utc_iso(row["updated"])}


# The identity spec (and so xero-python) spells the path /Connections; Xero's own docs /connections.
@bp.get("/connections")
@bp.get("/Connections")
def list_connections():
    with settings.store().read() as db:
        grant, error = bearer_grant(db)
    if error:
        return error
    refusal = specval.check(request)
    if refusal:
        return refusal
    with settings.store().read() as db:
        names = {r["tenant_id"]: json.loads(r["doc"])["Name"]
                 for r in db.execute("SELECT tenant_id, doc FROM organisations")}
        rows = _user_connections(db, grant["user_email"], grant["client_id"])
    if request.args.get("authEventId"):  # the organisations that one approval added (or approved again)
        rows = [r for r in rows if r["grant_id"] == request.args["authEventId"].lower()]
    return jsonify([_connection_json(r, names) for r in rows])


@bp.delete("/connections/<connection_id>")
@bp.delete("/Connections/<connection_id>")
def delete_connection(connection_id):
    with settings.store().read() as db:
        grant, error = bearer_grant(db)
    if error:
        return error
    refusal = specval.check(request)
    if refusal:
        return refusal
    with settings.store().tx() as db:
        mine = {c["id"] for c in _user_connections(db, grant["user_email"], grant["client_id"])}
        deleted = connection_id in mine and db.execute("DELETE FROM connections WHERE id=?", (connection_id,)).rowcount
    if not deleted:
        return jsonify({"title": "Not Found", "status": 404, "detail": "Connection not found"}), 404
    return "", 204
