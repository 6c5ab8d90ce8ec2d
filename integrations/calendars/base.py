"""What the OAuth calendars (Google Calendar, Outlook) share: signing in, the token
vault, the bearer client, and opening from the ``[calendar]`` section."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.base import (
    CalendarConnector,
    ConnectorSettings,
    ConnectRequest,
    Workspace,
)
from integrations.http import HttpClient
from integrations.oauth import (
    BearerAuth,
    OAuthApp,
    Token,
    TokenVault,
    identity_refresher,
    revoke_and_forget,
    secret_key,
    sign_in_and_keep,
)
from plugin.config.locales import default_timezone
from plugin.core.model import Appointment
from plugin.errors import ConfigError

__all__ = ["CLIENT_SECRET", "REFRESH_TOKEN", "OAuthCalendar", "OAuthCalendarSection", "zone"]

CLIENT_SECRET = "KINDLY_CALENDAR_CLIENT_SECRET"  # noqa: S105 (a variable name)
REFRESH_TOKEN = "KINDLY_CALENDAR_REFRESH_TOKEN"  # noqa: S105 (a variable name)


def _url() -> dict[str, Any]:
    return {"base_url": True, "schema": {"pattern": "^https?://"}}


@dataclass(frozen=True)
class OAuthCalendarSection(ConnectorSettings):
    """[calendar] for Google Calendar or Outlook (kindly connect google|outlook)."""

    client_id: str = field(
        metadata={
            "schema": {
                "minLength": 1,
                "description": "Google or Outlook: the OAuth app's client id (a secret, if "
                "any, only in KINDLY_CALENDAR_CLIENT_SECRET)",
            }
        }
    )
    redirect_port: int = field(default=8719, metadata={"schema": {"minimum": 0, "maximum": 65535}})
    horizon_days: int = field(
        default=14,
        metadata={"schema": {"minimum": 1, "maximum": 90, "description": "How far ahead to read"}},
    )
    authorize_url: str | None = field(default=None, metadata=_url())
    token_url: str | None = field(default=None, metadata=_url())
    revoke_url: str | None = field(default=None, metadata=_url())
    api_url: str | None = field(default=None, metadata=_url())


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


class CalendarApiSettings(Protocol):
    """What every OAuth calendar's settings say: where its API is, and how far to read."""

    @property
    def api_url(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def horizon_days(self) -> int: ...


class OAuthCalendar(CalendarConnector):
    """A calendar behind OAuth 2; subclasses give the endpoints and read the events."""

    auth: ClassVar[str] = "oauth2"
    settings_type: ClassVar[type[ConnectorSettings]] = OAuthCalendarSection
    secret_variables: ClassVar[Mapping[str, str]] = {
        CLIENT_SECRET: "the OAuth app's client secret, if it has one",
        REFRESH_TOKEN: "a refresh token for `kindly connect` without a browser",
    }
    #: The platform's name in messages and logs.
    platform: ClassVar[str]
    #: The API's name in messages about its calls, where it differs (Microsoft Graph).
    api_title: ClassVar[str | None] = None
    #: Endpoints used where [calendar] names none.
    endpoints: ClassVar[Mapping[str, str]]
    #: Further parameters the platform wants on the sign-in address.
    extra_authorization: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(
        self,
        settings: CalendarApiSettings,
        vault: TokenVault,
        refresh: Callable[[Token], Token],
        http: HttpClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.vault = vault
        self.bearer = BearerAuth(vault, refresh)
        self.http = http or self.bearer.client(
            self.api_title or self.platform, self.headers(settings), sleep=sleep
        )

    @classmethod
    def headers(cls, settings: CalendarApiSettings) -> Mapping[str, str]:
        return {"Accept": "application/json"}

    def in_window(
        self,
        events: Mapping[str, dict[str, Any]],
        now: datetime,
        convert: Callable[[dict[str, Any]], Appointment | None],
    ) -> tuple[tuple[Appointment, ...], dict[str, dict[str, Any]]]:
        """The known events from a day ago to the horizon as appointments, and the events
        to keep for the next read (those not over).

        An event that cannot be read is left out and named, and kept, so that it is named
        at every read until it is mended or gone: one bad event stops no other, nor any
        invoice reminder (issue 18).
        """
        horizon = now + timedelta(days=self.settings.horizon_days)
        found: list[Appointment] = []
        keep: dict[str, dict[str, Any]] = {}
        for event_id, item in events.items():
            try:
                appointment = convert(item)
            except (ValueError, KeyError, TypeError, OverflowError) as exc:
                self.skip(
                    f"{self.platform}: the event {event_id} in {self.location} is left out: {exc}"
                )
                keep[event_id] = item
                continue
            if appointment is None or appointment.end < now - timedelta(days=1):
                continue  # gone, or over: forgotten
            keep[event_id] = item
            if appointment.start <= horizon:
                found.append(appointment)
        return tuple(found), keep

    @classmethod
    def section_of(cls, workspace: Workspace) -> OAuthCalendarSection:
        section = cls.settings_of(workspace.settings)
        assert isinstance(section, OAuthCalendarSection)
        return section

    @classmethod
    def endpoint(cls, section: OAuthCalendarSection, name: str) -> str | None:
        value: str | None = getattr(section, name) or cls.endpoints.get(name)
        return value

    @classmethod
    def oauth_app(cls, section: OAuthCalendarSection) -> OAuthApp:
        authorize_url = cls.endpoint(section, "authorize_url")
        token_url = cls.endpoint(section, "token_url")
        if not section.client_id or not authorize_url or not token_url:
            raise ConfigError(f"[calendar] client_id is missing: the {cls.name} app's client id")
        return OAuthApp(
            platform=cls.platform,
            client_id=section.client_id,
            authorize_url=authorize_url,
            token_url=token_url,
            scopes=cls.oauth_scopes,
            client_secret=os.environ.get(CLIENT_SECRET),
            revoke_url=cls.endpoint(section, "revoke_url"),
            extra_authorization=cls.extra_authorization,
        )

    @classmethod
    def vault_of(cls, workspace: Workspace) -> TokenVault:
        return TokenVault(workspace.store, cls.name, secret_key(), clock=workspace.now)

    @classmethod
    def make_settings(cls, section: OAuthCalendarSection, timezone: str) -> CalendarApiSettings:
        """The connector's own settings from [calendar] and the company's time zone."""
        raise NotImplementedError

    @classmethod
    def open(cls, workspace: Workspace) -> Self:
        section = cls.section_of(workspace)
        app = cls.oauth_app(section)
        timezone = default_timezone(workspace.settings.company.country) or "UTC"
        vault = cls.vault_of(workspace)

        def secrets() -> list[str]:
            token = vault.load()
            return [token.access_token, token.refresh_token] if token else []

        return cls(
            cls.make_settings(section, timezone),
            vault,
            identity_refresher(app, workspace.now, secrets=secrets),
        )

    @classmethod
    def connect(cls, workspace: Workspace, request: ConnectRequest) -> str:
        """Sign in (or take a refresh token) and keep the tokens."""
        section = cls.section_of(workspace)
        app = cls.oauth_app(section)
        sign_in_and_keep(
            app,
            cls.vault_of(workspace),
            request,
            redirect_port=section.redirect_port,
            refresh_token=request.refresh_token or os.environ.get(REFRESH_TOKEN),
            what="calendar",
            now=workspace.now,
        )
        return f"Connected {app.platform}: appointments are read at every sync."

    @classmethod
    def web_sign_in(cls, workspace: Workspace) -> OAuthApp:
        return cls.oauth_app(cls.section_of(workspace))

    @classmethod
    def signed_in(
        cls, workspace: Workspace, token: Token, http: HttpClient
    ) -> list[tuple[str, str]]:
        cls.vault_of(workspace).save(token)
        return []

    @classmethod
    def keep_organisations(cls, workspace: Workspace, chosen: Sequence[tuple[str, str]]) -> str:
        return f"Connected {cls.platform}: appointments are read at every sync."

    @classmethod
    def connected(cls, workspace: Workspace) -> list[str] | None:
        return [] if cls.vault_of(workspace).load() is not None else None

    @classmethod
    def disconnect(cls, workspace: Workspace) -> str:
        """Revoke the token where the platform offers it, and forget it. With [calendar]
        naming another calendar by now, the app's settings are gone: forgotten only."""
        vault = cls.vault_of(workspace)
        if workspace.settings.calendar != cls.name:
            vault.forget()
            return f"Forgot the {cls.title} tokens ([calendar] names another calendar now)."
        revoke_and_forget(vault, lambda: cls.oauth_app(cls.section_of(workspace)))
        return f"Disconnected {cls.platform}; Kindly's tokens are forgotten."
