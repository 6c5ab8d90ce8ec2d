"""Connecting accounting systems: which sources a workspace reads, and signing in to them.

`kindly connect xero` signs in through the browser (authorization code with PKCE and a
loopback redirect), or takes a refresh token on the command line or from
``KINDLY_XERO_REFRESH_TOKEN`` for servers without a browser. It then lists the
organisations the user allowed and keeps the chosen ones. One token covers them all, so
it is kept once (encrypted) and shared by every organisation's connector: Xero rotates it
on every refresh, and two copies would soon hold a dead one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plugin.errors import ConfigError, KindlyError

if TYPE_CHECKING:
    from integrations.base import BookkeepingConnector
    from integrations.bookkeeping.xero import Tenant
    from integrations.oauth import OAuthApp, TokenVault
    from plugin.config.settings import Settings
    from plugin.ports import LedgerSource, SmsGateway
    from plugin.state.store import Store

__all__ = ["CONNECTION_SCOPE", "connect_xero", "disconnect_xero", "open_sources"]

CONNECTION_SCOPE = "connection:"
XERO_CLIENT_SECRET = "KINDLY_XERO_CLIENT_SECRET"  # noqa: S105 (a variable name)
XERO_REFRESH_TOKEN = "KINDLY_XERO_REFRESH_TOKEN"  # noqa: S105 (a variable name)


def _now() -> datetime:
    return datetime.now(UTC)


def open_sources(
    settings: Settings, store: Store, organisation: str | None = None
) -> list[BookkeepingConnector]:
    """The connectors this workspace reads: one ledger, or one per Xero organisation."""
    if settings.connector == "ledger":
        from integrations.bookkeeping.ledger import LocalLedger

        # kindly.toml says where the ledger is; otherwise `kindly connect ledger` did.
        connected = store.get_setting(CONNECTION_SCOPE + "ledger", "path")
        path = settings.ledger_path or (Path(connected) if connected else None)
        if path is None:
            raise ConfigError(
                "no ledger is connected",
                hint="Run `kindly connect ledger FOLDER`, or set [ledger] path in kindly.toml.",
            )
        return [LocalLedger(path)]
    if settings.connector == "xero":
        from integrations.bookkeeping.xero import XeroConnector

        tenants = _chosen(xero_tenants(store), organisation, settings.xero.tenants)
        vault = xero_vault(store)
        return [
            XeroConnector(
                settings.xero,
                vault,
                tenant,
                company_country=settings.company.country,
                client_secret=os.environ.get(XERO_CLIENT_SECRET),
            )
            for tenant in tenants
        ]
    raise ConfigError(f"connector {settings.connector!r} is not available yet")


def xero_vault(store: Store) -> TokenVault:
    from integrations.oauth import TokenVault, secret_key

    return TokenVault(store, "xero", secret_key(), clock=_now)


def xero_tenants(store: Store) -> list[Tenant]:
    from integrations.bookkeeping.xero import Tenant

    saved = store.get_setting(CONNECTION_SCOPE + "xero", "tenants") or []
    return [Tenant(item["id"], item["name"]) for item in saved]


def _chosen(
    tenants: list[Tenant], organisation: str | None, configured: tuple[str, ...]
) -> list[Tenant]:
    if not tenants:
        raise ConfigError(
            "Xero is not connected", hint="Run `kindly connect xero` (it opens the browser)."
        )
    if configured:
        tenants = [t for t in tenants if t.tenant_id in configured or t.name in configured]
    if organisation is not None:
        tenants = [t for t in tenants if organisation in (t.tenant_id, t.name)]
        if not tenants:
            raise ConfigError(
                f"no connected Xero organisation is called {organisation!r}",
                hint="`kindly connect xero` lists the organisations it connected.",
            )
    return tenants


def connect_xero(
    settings: Settings,
    store: Store,
    *,
    refresh_token: str | None,
    organisation: str | None,
    open_browser: Callable[[str], object],
    say: Callable[[str], None],
) -> list[Tenant]:
    """Sign in (or take a refresh token), list the organisations and keep the chosen ones."""
    from integrations.bookkeeping.xero import tenants_from, xero_app
    from integrations.http import HttpClient

    vault = xero_vault(store)
    app = xero_app(settings.xero, os.environ.get(XERO_CLIENT_SECRET))
    refresh_token = refresh_token or os.environ.get(XERO_REFRESH_TOKEN)
    http = HttpClient("Xero", secrets=lambda: [refresh_token or ""])
    token = _sign_in(
        app, http, settings.xero.redirect_port, refresh_token, open_browser, say, "Xero invoices"
    )
    # Kept before anything else is done with it: Xero has already retired the old one.
    vault.save(token)
    response = http.request(
        "GET",
        settings.xero.connections_url,
        headers={"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"},
    )
    listed = response.json()
    tenants = tenants_from(listed if isinstance(listed, list) else [])
    if organisation is not None:
        tenants = [t for t in tenants if organisation in (t.tenant_id, t.name)]
    if not tenants:
        raise KindlyError(
            "Xero granted access to no organisation"
            + (f" called {organisation!r}" if organisation else ""),
            hint="Run `kindly connect xero` again and tick the organisation to connect.",
        )
    store.set_setting(
        CONNECTION_SCOPE + "xero",
        "tenants",
        [{"id": t.tenant_id, "name": t.name} for t in tenants],
        _now(),
    )
    return tenants


def disconnect_xero(settings: Settings, store: Store) -> int:
    """Revoke the token at Xero and forget it and the organisations; how many were connected."""
    from integrations.bookkeeping.xero import xero_app
    from integrations.http import HttpClient, HttpError

    tenants = xero_tenants(store)
    vault = xero_vault(store)
    token = vault.load()
    if token is not None:
        app = xero_app(settings.xero, os.environ.get(XERO_CLIENT_SECRET))
        # Forgotten here even if Xero cannot be reached: an unused token dies in 60 days.
        with contextlib.suppress(HttpError):
            app.revoke(HttpClient("Xero", secrets=lambda: [token.refresh_token]), token)
        vault.forget()
    store.delete_setting(CONNECTION_SCOPE + "xero", "tenants")
    return len(tenants)


def connector_of(source: LedgerSource) -> BookkeepingConnector:
    """The connector behind a workspace's source (the app made it, so it is one)."""
    from integrations.base import BookkeepingConnector

    assert isinstance(source, BookkeepingConnector)
    return source


def sms_gateway_factory(settings: Settings) -> Callable[[], SmsGateway] | None:
    """Builds the SMS gateway [sms] names when a reminder first needs it, if it names one."""
    gateway = settings.sms_gateway
    if gateway is None:
        return None

    def build() -> SmsGateway:
        from integrations.sms.gateways import gateway_for

        return gateway_for(gateway)

    return build


CALENDAR_CLIENT_SECRET = "KINDLY_CALENDAR_CLIENT_SECRET"  # noqa: S105 (a variable name)
CALENDAR_REFRESH_TOKEN = "KINDLY_CALENDAR_REFRESH_TOKEN"  # noqa: S105 (a variable name)


def calendar_app(settings: Settings) -> OAuthApp:
    """The OAuth app for Google Calendar or Outlook, from [calendar]."""
    from integrations.oauth import OAuthApp

    calendar = settings.calendar
    if calendar is None or calendar.kind not in ("google", "outlook"):
        raise ConfigError('set [calendar] type = "google" or "outlook" in kindly.toml first')
    if not calendar.client_id or not calendar.authorize_url or not calendar.token_url:
        raise ConfigError(f"[calendar] client_id is missing: the {calendar.kind} app's client id")
    from integrations.calendars import google as google_calendar
    from integrations.calendars import outlook as outlook_calendar

    scopes: tuple[str, ...] = (
        google_calendar.SCOPES if calendar.kind == "google" else outlook_calendar.SCOPES
    )
    return OAuthApp(
        platform="Google" if calendar.kind == "google" else "Outlook",
        client_id=calendar.client_id,
        authorize_url=calendar.authorize_url,
        token_url=calendar.token_url,
        scopes=scopes,
        client_secret=os.environ.get(CALENDAR_CLIENT_SECRET),
        revoke_url=calendar.revoke_url,
        # Google gives a refresh token only when asked for offline access, with consent.
        extra_authorization=(("access_type", "offline"), ("prompt", "consent"))
        if calendar.kind == "google"
        else (),
    )


def open_calendar(settings: Settings, store: Store) -> Any:
    """The calendar connector [calendar] names, or None."""
    calendar = settings.calendar
    if calendar is None:
        return None
    from plugin.config.locales import default_timezone

    zone = default_timezone(settings.company.country) or "UTC"
    if calendar.kind == "caldav":
        from integrations.calendars.caldav import PASSWORD_VARIABLE, CalDAVCalendar, CalDAVSettings

        if not calendar.url:
            raise ConfigError("[calendar] url is missing: the CalDAV server's address")
        return CalDAVCalendar(
            CalDAVSettings(
                url=calendar.url,
                username=calendar.username,
                password=os.environ.get(PASSWORD_VARIABLE),
                calendars=calendar.calendars,
                horizon_days=calendar.horizon_days,
                timezone=zone,
            ),
            store=store,
        )
    from integrations.http import HttpClient
    from integrations.oauth import TokenVault, secret_key

    app = calendar_app(settings)
    vault = TokenVault(store, calendar.kind, secret_key(), clock=_now)
    # One try within the store's busy timeout: the refresh holds the store's lock.
    identity = HttpClient(app.platform, attempts=1, timeout=(3.0, 6.0))

    def refresh(token: Any) -> Any:
        return app.refresh(identity, token, _now())

    if calendar.kind == "google":
        from integrations.calendars.google import GoogleCalendar, GoogleCalendarSettings

        return GoogleCalendar(
            GoogleCalendarSettings(
                calendar_id=calendar.calendar_id,
                api_url=calendar.api_url or "",
                timezone=zone,
                horizon_days=calendar.horizon_days,
            ),
            vault,
            refresh,
            store,
        )
    from integrations.calendars.outlook import OutlookCalendar, OutlookCalendarSettings

    return OutlookCalendar(
        OutlookCalendarSettings(
            api_url=calendar.api_url or "", timezone=zone, horizon_days=calendar.horizon_days
        ),
        vault,
        refresh,
        store,
    )


def connect_calendar(
    settings: Settings,
    store: Store,
    *,
    refresh_token: str | None,
    open_browser: Callable[[str], object],
    say: Callable[[str], None],
) -> str:
    """Sign in to Google Calendar or Outlook (or take a refresh token); keep the tokens."""
    from integrations.http import HttpClient
    from integrations.oauth import TokenVault, secret_key

    assert settings.calendar is not None
    app = calendar_app(settings)
    vault = TokenVault(store, settings.calendar.kind, secret_key(), clock=_now)
    refresh_token = refresh_token or os.environ.get(CALENDAR_REFRESH_TOKEN)
    http = HttpClient(app.platform, secrets=lambda: [refresh_token or ""])
    token = _sign_in(
        app, http, settings.calendar.redirect_port, refresh_token, open_browser, say, "calendar"
    )
    vault.save(token)
    return app.platform


def _sign_in(
    app: OAuthApp,
    http: Any,
    redirect_port: int,
    refresh_token: str | None,
    open_browser: Callable[[str], object],
    say: Callable[[str], None],
    what: str,
) -> Any:
    """A token: from a refresh token given (servers), or by signing in in the browser with
    PKCE and a loopback redirect."""
    from integrations.oauth import Token, wait_for_redirect

    if refresh_token:
        return app.refresh(http, Token("", refresh_token, _now()), _now())
    state, verifier = app.new_state_and_verifier()
    redirect: dict[str, str] = {}

    def ready(redirect_uri: str) -> None:
        redirect["uri"] = redirect_uri
        url = app.authorization_url(redirect_uri, state, verifier)
        say(f"Open this address to allow Kindly to read your {what}:\n{url}")
        open_browser(url)

    code = wait_for_redirect(redirect_port, state, ready)
    return app.exchange(http, code, redirect["uri"], verifier, _now())
