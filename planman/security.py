"""Response headers that hold for every page, and the one check for where a
``next`` parameter may send someone."""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

import redis
from flask import Flask, current_app, render_template, request, url_for

log = logging.getLogger(__name__)


def safe_next(target: str | None, fallback: str) -> str:
    """``target`` if it is a path on this site, else ``fallback``.

    Browsers drop tabs and newlines inside a URL and read a backslash as a
    slash, so ``/<TAB>/evil.example`` or ``/\\evil.example`` would become
    ``//evil.example`` (another host): any whitespace, control character or
    backslash disqualifies the target, as does anything with a scheme or host."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or not target.isprintable()
        or any(char.isspace() for char in target)
    ):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


def public_url(endpoint: str, **values) -> str:
    """An absolute link to give someone outside this request (an invite link):
    built on PUBLIC_BASE_URL, never on the request's Host header, which the
    sender of the request chooses."""
    return current_app.config["PUBLIC_BASE_URL"] + url_for(endpoint, **values)


def init_app(app: Flask) -> None:
    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def redis_unavailable(error):
        # Redis holds the log-in throttle, the queue and the locks: without it
        # a request cannot be answered safely, so say so plainly rather than
        # fail open (log-in unthrottled) or with a 500.
        log.warning("Redis unavailable during %s %s: %s", request.method, request.path, error)
        signing_in = request.blueprint == "auth"
        response = app.make_response((render_template("errors/503.html", signing_in=signing_in), 503))
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(413)
    def too_large(_error):
        # Werkzeug refuses the body before reading it (MAX_CONTENT_LENGTH in config.py).
        limit_mb = round(app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024), 1)
        return render_template("errors/413.html", limit_mb=f"{limit_mb:g}"), 413

    @app.after_request
    def set_security_headers(response):
        # Only the app's own scripts and styles run; the OAuth start is a form
        # POST that redirects to the provider's login page, so form-action
        # must allow that origin too.
        form_targets = " ".join(sorted(app.config.get("CSP_FORM_ACTION_ORIGINS", set())))
        response.headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self' {form_targets}".strip(),
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.endpoint != "static":
            # Pages carry firm data or a CSRF token: no browser or proxy may
            # keep a copy (the back button after logging out, a shared
            # computer). Deciding per page would load the user on every
            # request, which the panel poll avoids; only static files are cached.
            response.headers["Cache-Control"] = "no-store"
        if app.config["SESSION_COOKIE_SECURE"]:
            # Served over HTTPS (that is what the setting says): browsers
            # should never try plain HTTP, where the cookie could be stripped.
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
