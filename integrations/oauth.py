"""OAuth 2 for platforms: PKCE sign-in through a loopback redirect, and tokens kept safe.

- :class:`OAuthApp` builds the authorization URL and trades codes and refresh tokens with
  oauthlib; the HTTP goes through :mod:`integrations.http` like every other call.
- :class:`TokenVault` keeps tokens in Kindly's store, encrypted (Fernet, from the
  ``cryptography`` package) under a key from ``KINDLY_SECRET_KEY`` or the OS keyring, never
  on disk in the clear.
- :meth:`TokenVault.fresh` renews an expiring access token under a lock in the store, so
  two processes that both find it expiring refresh it once: platforms such as Xero rotate
  the refresh token on every use, and a second refresh with the old one would lock the
  user out. The new refresh token is committed before the access token is used.
- :func:`wait_for_redirect` is the loopback receiver of ``kindly connect``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from integrations.http import AuthError, FatalError, HttpClient, HttpError, RetriableError

if TYPE_CHECKING:
    from integrations.workspace import ConnectorState, ConnectRequest, SettingsTransaction
from plugin.errors import KindlyError

__all__ = [
    "REFRESH_MARGIN",
    "BearerAuth",
    "OAuthApp",
    "Token",
    "TokenVault",
    "identity_refresher",
    "revoke_and_forget",
    "secret_key",
    "sign_in",
    "sign_in_and_keep",
    "wait_for_redirect",
    "with_granted",
]

SECRET_KEY_VARIABLE = "KINDLY_SECRET_KEY"  # noqa: S105 (a variable name)
KEYRING_SERVICE = "kindly-reminders"
#: Renew this long before the access token expires: a long sync must not cross it.
REFRESH_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Token:
    access_token: str
    refresh_token: str
    expires_at: datetime
    scope: str = ""
    #: What the sign-in's redirect carried besides the code and the state (QuickBooks
    #: names the company there: realmId). Not kept with the token.
    granted: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        # Never print a credential, even in a traceback or a debugger.
        return f"Token(expires_at={self.expires_at.isoformat()}, scope={self.scope!r})"

    def expiring(self, now: datetime) -> bool:
        return self.expires_at - REFRESH_MARGIN <= now

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_at": self.expires_at.isoformat(),
                "scope": self.scope,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Token:
        data = json.loads(text)
        return cls(
            data["access_token"],
            data["refresh_token"],
            datetime.fromisoformat(data["expires_at"]),
            data.get("scope", ""),
        )

    @classmethod
    def from_response(
        cls, data: dict[str, Any], now: datetime, keep_refresh: str | None = None
    ) -> Token:
        # Google answers a refresh without a new refresh token: the old one stays good.
        if keep_refresh and not data.get("refresh_token"):
            data = {**data, "refresh_token": keep_refresh}
        if not data.get("access_token") or not data.get("refresh_token"):
            raise AuthError(
                "the platform gave no refresh token; was offline_access granted?",
                hint="Connect again and allow Kindly to stay connected.",
            )
        scope = data.get("scope", "")
        return cls(
            str(data["access_token"]),
            str(data["refresh_token"]),
            now + timedelta(seconds=int(data.get("expires_in") or 1800)),
            " ".join(scope) if isinstance(scope, list) else str(scope),
        )


def secret_key() -> bytes:
    """The key tokens are encrypted with: the environment first, then the OS keyring."""
    value = os.environ.get(SECRET_KEY_VARIABLE)
    if not value:
        try:
            import keyring

            value = keyring.get_password(KEYRING_SERVICE, "secret-key")
            if not value:
                from cryptography.fernet import Fernet

                value = Fernet.generate_key().decode()
                keyring.set_password(KEYRING_SERVICE, "secret-key", value)
        except Exception:  # no keyring package, or no keyring backend on this machine
            value = None
    if not value:
        raise KindlyError(
            f"no key to encrypt the connection's tokens with: set {SECRET_KEY_VARIABLE}",
            hint=f"Make one with `kindly secret-key` and export it as {SECRET_KEY_VARIABLE} "
            "(or pip install keyring to keep it in the OS keyring).",
        )
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise KindlyError(
            f"{SECRET_KEY_VARIABLE} is not a key Kindly made",
            hint="Make one with `kindly secret-key`.",
        )
    return value.encode()


class TokenVault:
    """Tokens of one connection, encrypted in the store under scope ``secret:NAME``."""

    def __init__(
        self,
        store: ConnectorState,
        name: str,
        key: bytes,
        clock: Callable[[], datetime],
        margin: timedelta = REFRESH_MARGIN,
    ) -> None:
        from cryptography.fernet import Fernet

        self.store = store
        self.name = name
        self._fernet = Fernet(key)
        self.clock = clock
        #: How long before its expiry an access token is renewed.
        self.margin = margin

    def __repr__(self) -> str:
        return f"TokenVault({self.name!r})"

    @property
    def scope(self) -> str:
        return f"secret:{self.name}"

    def load(self, tx: SettingsTransaction | None = None) -> Token | None:
        value = (tx or self.store).get_setting(self.scope, "token")
        if value is None:
            return None
        from cryptography.fernet import InvalidToken

        try:
            return Token.from_json(self._fernet.decrypt(value.encode()).decode())
        except InvalidToken:
            raise KindlyError(
                f"the saved {self.name} tokens cannot be decrypted with this {SECRET_KEY_VARIABLE}",
                hint=f"Use the key they were saved with, or connect again: kindly connect "
                f"{self.name.split(':')[0]}",
            ) from None

    def save(self, token: Token, tx: SettingsTransaction | None = None) -> None:
        sealed = self._fernet.encrypt(token.to_json().encode()).decode()
        (tx or self.store).set_setting(self.scope, "token", sealed, self.clock())

    def forget(self) -> None:
        self.store.delete_setting(self.scope, "token")

    def fresh(self, refresh: Callable[[Token], Token], rejected: str | None = None) -> Token:
        """A token that is good for a while yet, refreshed (once, under a lock) if needed.

        ``rejected`` is an access token the platform refused: it is renewed whatever its
        expiry says, unless another process renewed it already.
        """
        token = self.load()
        if token is None:
            raise AuthError(
                f"{self.name} is not connected",
                hint=f"Run: kindly connect {self.name.split(':')[0]}",
            )

        def usable(candidate: Token) -> bool:
            expiring = candidate.expires_at - self.margin <= self.clock()
            return not expiring and candidate.access_token != rejected

        if usable(token):
            return token
        with self.store.exclusive(f"oauth:{self.name}") as tx:
            current = self.load(tx)
            if current is None:
                raise AuthError(f"{self.name} was disconnected")
            if usable(current):
                return current  # another process refreshed it while we waited
            renewed = refresh(current)
            # Committed when the lock is released, before anyone uses the new token.
            self.save(renewed, tx)
        return renewed


class BearerAuth:
    """A vault's tokens as the HTTP module wants them: a fresh access token on each call,
    renewed once when the platform refuses it early (401), and masked in every log line."""

    #: Tries at renewing when the token endpoint answers 429 (each after its Retry-After).
    RENEW_TRIES = 3

    def __init__(
        self,
        vault: TokenVault,
        renew: Callable[[Token], Token],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.vault = vault
        self.renew = renew
        self._sleep = sleep
        self._rejected: str | None = None
        #: The access token the last call went out with.
        self._sent: str | None = None

    def __repr__(self) -> str:
        return f"BearerAuth({self.vault!r})"

    def token(self) -> Token:
        for attempt in range(1, self.RENEW_TRIES + 1):
            try:
                return self.vault.fresh(self.renew, rejected=self._rejected)
            except RetriableError as exc:
                # The token endpoint asks us to slow down: wait outside the store's lock
                # (the renewal holds up every other writer), then look again; another
                # process may have renewed it meanwhile.
                if exc.status != 429 or exc.later or attempt == self.RENEW_TRIES:
                    raise
                self._sleep(exc.retry_after if exc.retry_after is not None else 2.0**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def authorization(self) -> str:
        token = self.token()
        self._sent = token.access_token
        return f"Bearer {token.access_token}"

    def refresh_after_401(self) -> bool:
        # Refused before its time (revoked, or a clock out of step): renew it once, then
        # let the call be tried again. What was refused is the token the call carried:
        # if another process has stored a newer one since, that one is used as it is.
        if self._sent is None:
            return False
        refused = self._sent
        self._rejected = refused
        try:
            return self.token().access_token != refused
        finally:
            self._rejected = None

    def secrets(self) -> Iterator[str]:
        token = self.vault.load()
        if token is not None:
            yield token.access_token
            yield token.refresh_token

    def client(self, platform: str, headers: Mapping[str, str], **options: Any) -> HttpClient:
        """An HTTP client that sends these headers and the bearer token on every call."""
        return HttpClient(
            platform,
            authorize=lambda: {"Authorization": self.authorization(), **headers},
            refresh=self.refresh_after_401,
            secrets=self.secrets,
            **options,
        )


@dataclass(frozen=True)
class OAuthApp:
    """One platform's OAuth endpoints and this installation's client."""

    platform: str
    client_id: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    client_secret: str | None = None
    revoke_url: str | None = None
    #: Further parameters the platform wants on the sign-in address.
    extra_authorization: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        return f"OAuthApp({self.platform!r}, client_id={self.client_id!r})"

    def _client(self) -> Any:
        from oauthlib.oauth2 import WebApplicationClient

        return WebApplicationClient(self.client_id)

    @staticmethod
    def new_state_and_verifier() -> tuple[str, str]:
        """A fresh ``state`` (against forged answers) and PKCE code verifier."""
        from oauthlib.oauth2 import WebApplicationClient

        return secrets.token_urlsafe(24), WebApplicationClient("").create_code_verifier(64)

    def authorization_url(self, redirect_uri: str, state: str, verifier: str) -> str:
        """The sign-in address to open, asking for our scopes with an S256 PKCE challenge."""
        # Built here rather than by oauthlib's prepare_request_uri, which refuses the plain
        # http of a local test server even on loopback.
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
            "code_challenge": self._client().create_code_challenge(verifier, "S256"),
            "code_challenge_method": "S256",
            **dict(self.extra_authorization),
        }
        separator = "&" if "?" in self.authorize_url else "?"
        return f"{self.authorize_url}{separator}{urlencode(query)}"

    def exchange(
        self, http: HttpClient, code: str, redirect_uri: str, verifier: str, now: datetime
    ) -> Token:
        body = self._client().prepare_request_body(
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=verifier,
            include_client_id=True,
        )
        return self._token_call(http, body, now)

    def refresh(self, http: HttpClient, token: Token, now: datetime) -> Token:
        # A public (PKCE) client names itself in the body; a confidential one by Basic auth.
        extra = {} if self.client_secret else {"client_id": self.client_id}
        body = self._client().prepare_refresh_body(refresh_token=token.refresh_token, **extra)
        try:
            return self._token_call(http, body, now, keep_refresh=token.refresh_token)
        except RetriableError as exc:
            if not exc.maybe_received or exc.later:
                raise
        # The answer was lost after the request arrived: the platform may have rotated the
        # refresh token already. Platforms that rotate keep the previous one for a while
        # for exactly this (Xero: 30 minutes), so it is asked again at once, once.
        try:
            return self._token_call(http, body, now, keep_refresh=token.refresh_token)
        except AuthError:
            raise AuthError(
                f"{self.platform} renewed Kindly's connection, but its answer was lost on "
                "the way and the previous key is no longer accepted",
                hint=f"Connect again: kindly connect {self.platform.lower()}",
            ) from None

    def revoke(self, http: HttpClient, token: Token) -> None:
        if self.revoke_url:
            http.request(
                "POST",
                self.revoke_url,
                data={"token": token.refresh_token, "client_id": self.client_id},
                auth=(self.client_id, self.client_secret) if self.client_secret else None,
            )

    def _token_call(
        self, http: HttpClient, body: str, now: datetime, keep_refresh: str | None = None
    ) -> Token:
        form = {key: values[-1] for key, values in parse_qs(body).items()}
        try:
            response = http.request(
                "POST",
                self.token_url,
                data=form,
                headers={"Accept": "application/json"},
                auth=(self.client_id, self.client_secret) if self.client_secret else None,
            )
        except FatalError as exc:
            if exc.status in (400, 401):
                raise AuthError(
                    f"{self.platform} no longer accepts Kindly's connection (it answered "
                    f"{exc.status} to renewing it): it was disconnected there, left unused "
                    "too long, or the answer to an earlier renewal was lost",
                    status=exc.status,
                    hint=f"Connect again: kindly connect {self.platform.lower()}",
                ) from None
            raise
        data = response.json()
        if not isinstance(data, dict):
            raise FatalError(f"{self.platform}: the token answer is not an object")
        return Token.from_response(data, now, keep_refresh)


def wait_for_redirect(
    port: int, expected_state: str, ready: Callable[[str], None], timeout: float = 300
) -> dict[str, str]:
    """Serve one request on 127.0.0.1:``port`` and return its query: the authorization
    ``code`` and what else the platform put there.

    ``ready`` gets the redirect URI once the socket listens (to open the browser). The
    state must match what we sent, or the answer is not for us (RFC 6749 §10.12).
    """
    found: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            if query.get("state") and secrets.compare_digest(query["state"], expected_state):
                found.update(query)
                if "code" in query:
                    text = "Kindly is connected. You can close this tab."
                else:
                    text = "Kindly was not allowed access; nothing was connected."
                self.send_response(200 if "code" in query else 400)
            else:
                text = "This sign-in answer was not for Kindly."
                self.send_response(400)
            data = text.encode()
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with _serving(port, Handler, timeout) as server:
        ready(f"http://127.0.0.1:{server.server_address[1]}/callback")
        while not found:
            server.handle_request()
            if getattr(server, "timed_out", False):
                raise KindlyError(
                    "no answer from the sign-in page within five minutes",
                    hint="Run kindly connect again.",
                )
    if "code" not in found:
        raise AuthError(
            f"the sign-in was not completed: {found.get('error', 'no code came back')}",
            hint="Run kindly connect again and allow access.",
        )
    return found


@contextmanager
def _serving(port: int, handler: type[BaseHTTPRequestHandler], timeout: float) -> Iterator[Any]:
    class OneShot(HTTPServer):
        timed_out = False

        def handle_timeout(self) -> None:
            self.timed_out = True

    server = OneShot(("127.0.0.1", port), handler)
    server.timeout = timeout
    try:
        yield server
    finally:
        server.server_close()


def sign_in(
    app: OAuthApp,
    http: HttpClient,
    *,
    redirect_port: int,
    refresh_token: str | None,
    open_browser: Callable[[str], object],
    say: Callable[[str], None],
    what: str,
    now: Callable[[], datetime],
) -> Token:
    """A token: from a refresh token given (servers), or by signing in in the browser with
    PKCE and a loopback redirect. ``what`` names what Kindly asks to read."""
    if refresh_token:
        return app.refresh(http, Token("", refresh_token, now()), now())
    state, verifier = app.new_state_and_verifier()
    redirect: dict[str, str] = {}

    def ready(redirect_uri: str) -> None:
        redirect["uri"] = redirect_uri
        url = app.authorization_url(redirect_uri, state, verifier)
        say(f"Open this address to allow Kindly to read your {what}:\n{url}")
        open_browser(url)

    answer = wait_for_redirect(redirect_port, state, ready)
    token = app.exchange(http, answer["code"], redirect["uri"], verifier, now())
    return with_granted(token, answer)


def with_granted(token: Token, answer: Mapping[str, str]) -> Token:
    """The token with what the redirect ``answer`` carried besides the code and state."""
    extra = {k: v for k, v in answer.items() if k not in ("code", "state", "scope")}
    return dataclasses.replace(token, granted=extra)


def identity_refresher(
    app: OAuthApp,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None] | None = None,
    secrets: Callable[[], Iterable[str]] = lambda: (),
) -> Callable[[Token], Token]:
    """Renews a token at the platform's token endpoint.

    The refresh runs under a lock in the store that holds up every other writer: one try,
    with a deadline inside the store's 10-second busy timeout.
    """
    options: dict[str, Any] = {"attempts": 1, "timeout": (3.0, 6.0), "secrets": secrets}
    if sleep is not None:
        options["sleep"] = sleep
    identity = HttpClient(app.platform, **options)

    def refresh(token: Token) -> Token:
        return app.refresh(identity, token, clock())

    return refresh


def sign_in_and_keep(
    app: OAuthApp,
    vault: TokenVault,
    request: ConnectRequest,
    *,
    redirect_port: int,
    refresh_token: str | None,
    what: str,
    now: Callable[[], datetime],
) -> tuple[Token, HttpClient]:
    """`kindly connect`'s sign-in: the token, saved at once (a platform that rotates
    refresh tokens retired the old one already), and the client that got it."""
    http = HttpClient(app.platform, secrets=lambda: [refresh_token or ""])
    token = sign_in(
        app,
        http,
        redirect_port=redirect_port,
        refresh_token=refresh_token,
        open_browser=request.open_browser,
        say=request.say,
        what=what,
        now=now,
    )
    vault.save(token)
    return token, http


def revoke_and_forget(vault: TokenVault, app: Callable[[], OAuthApp]) -> None:
    """`kindly disconnect`'s end: revoke the token where the platform offers it, and forget
    it even when the platform cannot be reached (an unused token expires)."""
    token = vault.load()
    if token is None:
        return
    oauth_app = app()
    with contextlib.suppress(HttpError):
        oauth_app.revoke(
            HttpClient(oauth_app.platform, secrets=lambda: [token.refresh_token]), token
        )
    vault.forget()
