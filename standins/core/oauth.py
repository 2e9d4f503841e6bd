"""The OAuth 2.0 authorisation-code server every stand-in shares (RFC 6749, 7009, 7636).

What differs per provider is declared by the caller: lifetimes, whether PKCE
is offered, and the refresh rotation policy: `grace` seconds during which a
used refresh token still answers (Xero: 30 minutes), or None for single-use
refresh tokens (FreshBooks: a reused one is invalid_grant). Grants, codes and
tokens live in the core tables of the provider's store (core/store.py)."""
from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from urllib.parse import urlencode, urlsplit

from flask import Response, jsonify, redirect, request

from .store import Store


def error(error_code: str, status: int, description: str | None = None):
    body = {"error": error_code}
    if description:
        body["error_description"] = description
    return jsonify(body), status


def back(redirect_uri: str, **params) -> Response:
    """Redirect to the client's (already checked) redirect URI with params."""
    sep = "&" if "?" in redirect_uri else "?"
    return redirect(f"{redirect_uri}{sep}{urlencode({k: v for k, v in params.items() if v is not None})}")


def local_redirect_uri(uri: str) -> bool:
    """Any http://127.0.0.1:<port>/... or http://localhost:<port>/...: what the stand-ins accept by default."""
    parts = urlsplit(uri or "")
    try:
        port = parts.port
    except ValueError:
        return False
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost") and port is not None


def client_ok(client_id: str, client_secret: str) -> bool:
    """Client authentication by HTTP Basic or client_id/client_secret form fields."""
    auth = request.authorization
    if auth and auth.type == "basic":
        sent_id, sent_secret = auth.username, auth.password
    else:
        sent_id, sent_secret = request.form.get("client_id"), request.form.get("client_secret")
    return (secrets.compare_digest(sent_id or "", client_id)
            and secrets.compare_digest(sent_secret or "", client_secret))


def pkce_ok(challenge: str, verifier: str | None) -> bool:
    if not verifier:
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return secrets.compare_digest(digest, challenge)


def new_code(db, *, client_id: str, redirect_uri: str, scope: str, tenants: str, user_email: str,
             challenge: str | None = None) -> str:
    code = secrets.token_urlsafe(32)
    db.execute("INSERT INTO codes(code, client_id, redirect_uri, scope, challenge, tenants, created, user_email) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (code, client_id, redirect_uri, scope, challenge, tenants, time.time(), user_email))
    return code


def take_code(db, code: str, redirect_uri: str | None, verifier: str | None, lifetime: float):
    """(code row, None) or (row or None, problem). The code is spent by this attempt, right or wrong."""
    row = db.execute("SELECT * FROM codes WHERE code=?", (code or "",)).fetchone()
    problem = None
    if row is None or row["used"] or time.time() - row["created"] > lifetime:
        problem = "code is unknown, expired or already used"
    elif row["redirect_uri"] != redirect_uri:
        problem = "redirect_uri does not match the authorisation request"
    elif row["challenge"] and not pkce_ok(row["challenge"], verifier):
        problem = "code_verifier does not match code_challenge"
    if row is not None:
        db.execute("UPDATE codes SET used=1 WHERE code=?", (row["code"],))
    return row, problem


def new_grant(db, code_row) -> str:
    grant_id = str(uuid.uuid4())
    db.execute("INSERT INTO grants(grant_id, client_id, scope, created, user_email) VALUES (?, ?, ?, ?, ?)",
               (grant_id, code_row["client_id"], code_row["scope"], time.time(), code_row["user_email"]))
    return grant_id


def save_access_token(db, token: str, grant_id: str, lifetime: float) -> None:
    db.execute("INSERT INTO access_tokens(token, grant_id, expires) VALUES (?, ?, ?)",
               (token, grant_id, time.time() + lifetime))


def new_refresh_token(db, grant_id: str) -> str:
    token = secrets.token_urlsafe(40)
    db.execute("INSERT INTO refresh_tokens(token, grant_id, created) VALUES (?, ?, ?)", (token, grant_id, time.time()))
    return token


def find_refresh_token(db, token: str):
    return db.execute("SELECT r.*, g.scope, g.revoked, g.user_email, g.client_id FROM refresh_tokens r "
                      "JOIN grants g USING (grant_id) WHERE r.token=?", (token or "",)).fetchone()


def refresh_verdict(row, *, lifetime: float, grace: float | None) -> str | None:
    """"rotate" (first use), "grace" (a used token within the grace period) or None (invalid_grant).

    grace None: single-use refresh tokens, so any reuse is invalid_grant."""
    now = time.time()
    if row is None or row["revoked"] or now - row["created"] > lifetime:
        return None
    if row["used_at"] is None:
        return "rotate"
    if grace is not None and now - row["used_at"] <= grace:
        return "grace"
    return None


def mark_used(db, token: str) -> None:
    db.execute("UPDATE refresh_tokens SET used_at=? WHERE token=?", (time.time(), token))


def bearer(db):
    """(grant row with the token's `expires`, None) for a live access token, else (row or None, problem):
    problem "missing" (no bearer header), "unknown", or "expired" (row["expires"] says when)."""
    auth = request.headers.get("Authorization", "")
    if not auth.lower().startswith("bearer "):
        return None, "missing"
    row = db.execute("SELECT t.expires, g.* FROM access_tokens t JOIN grants g USING (grant_id) "
                     "WHERE t.token=? AND g.revoked=0", (auth[7:].strip(),)).fetchone()
    if row is None:
        return None, "unknown"
    if row["expires"] <= time.time():
        return row, "expired"
    return row, None


def drop_grant_tokens(db, grant_id: str) -> None:
    db.execute("UPDATE grants SET revoked=1 WHERE grant_id=?", (grant_id,))
    db.execute("DELETE FROM access_tokens WHERE grant_id=?", (grant_id,))
    db.execute("DELETE FROM refresh_tokens WHERE grant_id=?", (grant_id,))


def exchange_code(db, form, *, code_lifetime: float, issue, verifier: str | None = None):
    """grant_type=authorization_code inside the caller's write transaction: (answer dict, None) with
    issue(db, grant_id, code_row) making the answer, or (None, problem) for invalid_grant."""
    row, problem = take_code(db, form.get("code", ""), form.get("redirect_uri"), verifier, code_lifetime)
    if problem:
        Store.bump(db, "invalid_grants")
        return None, problem
    return issue(db, new_grant(db, row), row), None


def refresh(db, token: str, *, lifetime: float, grace: float | None, issue):
    """grant_type=refresh_token inside the caller's write transaction: the answer dict made by
    issue(db, grant_id, token_row), or None for invalid_grant. A first use spends the token
    (rotation); a reuse within `grace` answers a fresh pair and spends nothing more."""
    row = find_refresh_token(db, token)
    verdict = refresh_verdict(row, lifetime=lifetime, grace=grace)
    if verdict is None:
        Store.bump(db, "invalid_grants")
        return None
    Store.bump(db, "refreshes")
    Store.bump(db, "rotations" if verdict == "rotate" else "grace_refreshes")
    if verdict == "rotate":
        mark_used(db, row["token"])
    return issue(db, row["grant_id"], row)


def grant_of_token(db, token: str):
    """The grant id an access or refresh token belongs to (for revocation), or None."""
    row = (db.execute("SELECT grant_id FROM refresh_tokens WHERE token=?", (token or "",)).fetchone()
           or db.execute("SELECT grant_id FROM access_tokens WHERE token=?", (token or "",)).fetchone())
    return row["grant_id"] if row else None
