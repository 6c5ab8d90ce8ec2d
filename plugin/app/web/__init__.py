"""`kindly web`: Kindly's own web app, server-rendered (Flask, Jinja2), no JavaScript build.

Pages: sign-in; per organisation the overview (what is due now and why, what was left out,
sync now, review and send with a preview of each message as it will go out, what went out
and each note's state) and the clients with their settings. Every page checks that the
signed-in account may see the organisation it shows (an unknown or forbidden organisation
or client is a 404).

Safety: passwords hashed with argon2 (accounts.py); the session in a signed cookie
(HttpOnly, SameSite=Lax, Secure under https); a CSRF token on every form (guard.py);
sign-in attempts rate-limited per account; a strict Content-Security-Policy without inline
scripts, no framing but the previews' own, nosniff.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface

from plugin.app.web.guard import install_guard, organisation_id

if TYPE_CHECKING:
    from plugin.state.store import Store

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app", "organisation_id"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: The variable that holds the key the session cookie is signed with, if not the store.
SECRET_VARIABLE = "KINDLY_WEB_SECRET_KEY"  # noqa: S105 (a variable name)


def create_app(
    config: str | Path,
    *,
    public_url: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Flask:
    """The web app for a workspace's settings: the kindly.toml at ``config``, or db:NAME
    for settings the database holds.

    ``public_url``: where users reach it (https makes the session cookie Secure);
    ``clock``: what "now" is (tests).
    """
    from plugin.app.wiring import open_settings_and_store

    app = Flask(__name__)
    # Every template is HTML: escape all of them (Flask escapes only *.html by default).
    app.jinja_env.autoescape = True
    from plugin.app.stored_settings import is_stored

    app.config["KINDLY_CONFIG"] = str(config) if is_stored(config) else Path(config)
    app.session_interface = _ScopedSessions()
    app.config["KINDLY_CLOCK"] = clock or (lambda: datetime.now(UTC))
    app.config["KINDLY_PUBLIC_URL"] = public_url
    _settings, store = open_settings_and_store(config)
    try:
        # What a session is bound to: this workspace's store (its database and name). One
        # address may serve many workspaces, their sessions signed with one
        # KINDLY_WEB_SECRET_KEY; an account of the same name elsewhere is someone else.
        app.config["KINDLY_SESSION_SCOPE"] = store.identity
        app.secret_key = os.environ.get(SECRET_VARIABLE) or _stored_secret(store)
    finally:
        store.close()
    secure = bool(public_url and public_url.startswith("https://"))
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_NAME="kindly_session",
        MAX_CONTENT_LENGTH=1_000_000,
        PREFERRED_URL_SCHEME="https" if secure else "http",
    )
    install_guard(app)
    from plugin.app.web.i18n import install_i18n

    install_i18n(app)
    from plugin.compose.formatting import format_money

    # Amounts as the company writes them ("€ 1.745,00"), not as Money's repr.
    app.jinja_env.globals["money"] = format_money
    # The connections and settings pages add their routes to the same pages.
    from plugin.app.web import connections, runs_page, settings_page  # noqa: F401
    from plugin.app.web.views import pages

    app.register_blueprint(pages)
    from plugin.app.web.api import api

    app.register_blueprint(api)
    return app


class _ScopedSessions(SecureCookieSessionInterface):
    """The session cookie goes back to this app's pages only: under /w/NAME/ where one
    address serves many workspaces, behind any prefix a proxy adds."""

    def get_cookie_path(self, app: Flask) -> str:
        return (request.script_root if has_request_context() else "") + "/"


def _stored_secret(store: Store) -> str:
    """The key sessions are signed with: made once and kept in the store, so that every
    process serving the app signs alike and a restart signs no one out."""
    with store.exclusive("web.secret") as transaction:
        key = transaction.get_setting("web", "secret_key")
        if not isinstance(key, str):
            key = secrets.token_hex(32)
            transaction.set_setting("web", "secret_key", key, datetime.now(UTC))
    return key
