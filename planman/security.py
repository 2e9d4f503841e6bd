"""Response headers that hold for every page."""
from flask import Flask


def init_app(app: Flask) -> None:
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
        return response
