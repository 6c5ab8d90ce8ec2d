"""What every request passes: the CSRF check on forms, and the security headers.

A form carries the session's token in ``csrf_token``; a POST without it, or with another,
is refused with 403 before any view runs. Pages forbid inline scripts and framing; a
message's preview may be framed by the app's own pages only, and may hold inline styles
(an e-mail's) but never a script.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, Response, abort, g, request, session

__all__ = ["csrf_token", "install_guard", "organisation_id"]

#: The Content-Security-Policy of the app's own pages.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
#: ... and of a message shown in a preview frame: the e-mail's inline styles and its
#: QR code, nothing fetched, nothing run.
PREVIEW_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def organisation_id(source_id: str) -> str:
    """The organisation as URLs name it: short, stable, and telling nothing of the source."""
    return hashlib.sha256(source_id.encode("utf-8")).hexdigest()[:12]


def csrf_token() -> str:
    """The session's token for its forms, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def install_guard(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def check_csrf() -> None:
        if request.method in SAFE_METHODS:
            return
        sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
        expected = session.get("csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
            abort(403)

    @app.after_request
    def headers(response: Response) -> Response:
        preview = request.endpoint in ("pages.framed", "pages.template_preview")
        policy = PREVIEW_POLICY if preview else PAGE_POLICY
        # A connect button's form is answered by a redirect to the platform's sign-in,
        # which form-action governs too: the connections page names those sites alone.
        sign_in_sites = g.get("sign_in_sites", ())
        if sign_in_sites:
            policy = policy.replace(
                "form-action 'self'", "form-action 'self' " + " ".join(sorted(sign_in_sites))
            )
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "SAMEORIGIN" if preview else "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if request.endpoint != "static":
            # Pages hold clients' names and amounts: never kept by a shared cache.
            response.headers["Cache-Control"] = "no-store"
        return response
