"""The base of an accounting platform behind OAuth 2 (Xero today; QuickBooks, Exact Online,
Moneybird, Fiken and Pennylane next): its settings, signing in, and one connector per
organisation the user allowed.

`kindly connect NAME` signs in through the browser (authorization code with PKCE and a
loopback redirect), or takes a refresh token on the command line or from the platform's
``KINDLY_<NAME>_REFRESH_TOKEN`` for servers without a browser. It then lists the
organisations ("tenants") the user allowed and keeps the chosen ones. One token covers
them all, so it is kept once (encrypted) and shared by every organisation's connector:
platforms rotate it on every refresh, and two copies would soon hold a dead one.

A platform subclass gives its constants, :meth:`OAuthPlatform.list_tenants`, the headers
naming the organisation, and its mapping of records.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self

from rich.markup import escape

from integrations.base import BookkeepingConnector, ConnectorSettings, ConnectRequest, Workspace
from integrations.http import (
    CallBudget,
    HttpClient,
    HttpError,
    Limit,
    Response,
    SharedBudget,
    shared_limits,
)
from integrations.oauth import (
    REFRESH_MARGIN,
    BearerAuth,
    OAuthApp,
    Token,
    TokenVault,
    revoke_and_forget,
    secret_key,
    sign_in_and_keep,
)
from plugin.core.model import LedgerSnapshot, Note
from plugin.errors import ConfigError, KindlyError
from plugin.ports import SyncResult

__all__ = ["OAuthPlatform", "OAuthPlatformSettings", "Tenant", "endpoint"]


def endpoint(description: str, base: bool = False) -> dict[str, Any]:
    """Field metadata of a URL setting (``base``: an API root, kept without a final /)."""
    return {
        "base_url": base,
        "schema": {"pattern": "^https?://", "minLength": 8, "description": description},
    }


@dataclass(frozen=True)
class OAuthPlatformSettings(ConnectorSettings):
    """What every OAuth platform's section has; a subclass gives the endpoints' defaults."""

    client_id: str | None = field(
        default=None,
        metadata={
            "schema": {
                "minLength": 1,
                "description": "The app's client id (a PKCE app needs no secret)",
            }
        },
    )
    tenants: tuple[str, ...] = field(
        default=(),
        metadata={
            "schema": {
                "description": "Organisation (tenant) ids to sync; kindly connect fills "
                "this in the store"
            }
        },
    )
    #: Register http://127.0.0.1:PORT/callback as the app's redirect URI at the platform.
    redirect_port: int = field(
        default=8719,
        metadata={
            "schema": {
                "minimum": 0,
                "maximum": 65535,
                "description": "Loopback port for the sign-in redirect (0: any free port; "
                "the platform needs the exact URI registered)",
            }
        },
    )
    authorize_url: str = field(default="", metadata=endpoint("The authorization endpoint"))
    token_url: str = field(default="", metadata=endpoint("The token endpoint"))
    revoke_url: str = field(default="", metadata=endpoint("The revocation endpoint"))
    api_url: str = field(default="", metadata=endpoint("The API's base address", base=True))
    #: OAuth scopes to ask for; empty: the connector's own.
    scopes: tuple[str, ...] = field(
        default=(), metadata={"schema": {"description": "OAuth scopes; default: the connector's"}}
    )


@dataclass(frozen=True)
class Tenant:
    """One organisation a connection may read."""

    tenant_id: str
    name: str


class OAuthPlatform(BookkeepingConnector):
    """One organisation of an OAuth platform; see the module's description."""

    auth: ClassVar[str] = "oauth2"
    settings_type: ClassVar[type[ConnectorSettings]] = OAuthPlatformSettings
    #: The variables of the app's secret and of a refresh token handed in on a server.
    client_secret_variable: ClassVar[str]
    refresh_token_variable: ClassVar[str]
    #: Where the platform's developer portal makes an app, for the error without one.
    app_hint: ClassVar[str] = ""
    #: The platform's rate limit per organisation, and its rate-limit headers (minute, day).
    calls_per_minute: ClassVar[int] = 60
    #: How long before it expires an access token is renewed: long enough that a sync does
    #: not cross it, short enough for a platform that limits renewals (Exact: ten-minute
    #: tokens, about one renewal per 9.5 minutes).
    refresh_margin: ClassVar[timedelta] = REFRESH_MARGIN
    rate_headers: ClassVar[tuple[str, str] | None] = None
    #: The platform counts calls per token, which reaches several organisations: their
    #: connectors in one process share one budget (Moneybird).
    budget_per_token: ClassVar[bool] = False
    #: The platform's limits, counted across every worker when a worker shares them
    #: (:func:`integrations.http.share_limits`); a single process keeps to its budget.
    call_limits: ClassVar[tuple[Limit, ...]] = ()

    def __init__(
        self,
        settings: OAuthPlatformSettings,
        vault: TokenVault,
        tenant: Tenant,
        *,
        company_country: str = "NL",
        client_secret: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        budget: CallBudget | None = None,
    ) -> None:
        self.settings = settings
        self.vault = vault
        self.tenant = tenant
        self.company_country = company_country
        self.clock = clock
        self.app = self.oauth_app(settings, client_secret)
        self.bearer = BearerAuth(
            vault, lambda current: self.app.refresh(self.identity, current, self.clock()), sleep
        )
        # The refresh runs under a lock in the store that holds up every other writer:
        # one try, with a deadline inside the store's 10-second busy timeout.
        self.identity = HttpClient(
            self.title, secrets=self.bearer.secrets, sleep=sleep, attempts=1, timeout=(3.0, 6.0)
        )
        self.http = self.bearer.client(
            self.title,
            {**self.tenant_headers(tenant), "Accept": "application/json"},
            budget=self._shared(budget or self.new_budget(sleep)),
            rate_headers=self.rate_headers,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tenant.name!r}, tenant={self.tenant.tenant_id!r})"

    def _shared(self, budget: CallBudget) -> CallBudget:
        """``budget``, and the platform's limits counted with every other worker's calls
        where this process shares them."""
        limits = shared_limits()
        if limits is None or not self.call_limits:
            return budget
        rules = self.limit_rules()
        return SharedBudget(local=budget, limits=limits, rules=rules, platform=self.title)

    def limit_rules(self) -> list[tuple[str, int, float]]:
        """The platform's limits as the workers count them: (key, calls, seconds)."""
        rules = []
        for limit in self.call_limits:
            if limit.scope == "organisation":
                scope = self.tenant.tenant_id
            elif limit.scope == "token":
                token = hashlib.sha256(f"{self.vault.store.identity}\n{self.vault.name}".encode())
                scope = f"token:{token.hexdigest()[:24]}"
            else:
                scope = f"app:{self.settings.client_id}"
            key = f"kindly:limit:{self.name}:{scope}:{limit.calls}/{limit.seconds:g}s"
            rules.append((key, limit.calls, limit.seconds))
        return rules

    @classmethod
    def new_budget(cls, sleep: Callable[[float], None] = time.sleep) -> CallBudget:
        """What keeps the calls within the platform's limits: ``calls_per_minute``, or
        a connector's own (a platform's window of seconds or minutes)."""
        return CallBudget(per_minute=cls.calls_per_minute, sleep=sleep)

    @property
    def source_id(self) -> str:
        return f"{self.name}:{self.tenant.tenant_id}"

    @property
    def location(self) -> str:
        return f"{self.title} organisation {self.tenant.name}"

    def allowance(self) -> Mapping[str, int] | None:
        budget = self.http.budget
        if budget is None:
            return None
        left = {"minute": budget.minute_remaining, "day": budget.day_remaining}
        return {period: calls for period, calls in left.items() if calls is not None} or None

    @abc.abstractmethod
    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        """Each platform syncs by its own change tracking (the base's default would read
        the whole snapshot, which here is this sync from nothing)."""

    def read_snapshot(self) -> LedgerSnapshot:
        """A platform's full read is its incremental sync from nothing."""
        return self.sync(None, {}).snapshot

    def write_note(self, note: Note) -> None:
        """One note is a batch of one: :meth:`write_notes` says why it failed, if it did."""
        failed = [reason for reason in self.write_notes([note]).values() if reason]
        if failed:
            raise HttpError(failed[0])

    def get(self, path: str, params: Mapping[str, Any] | None = None, **options: Any) -> Response:
        return self.http.request("GET", f"{self.settings.api_url}/{path}", params=params, **options)

    # -- what a platform gives -------------------------------------------------------------

    def tenant_headers(self, tenant: Tenant) -> Mapping[str, str]:
        """Headers naming the organisation on every call (Xero: xero-tenant-id)."""
        return {}

    @classmethod
    @abc.abstractmethod
    def list_tenants(
        cls, settings: OAuthPlatformSettings, http: HttpClient, token: Token
    ) -> list[Tenant]:
        """The organisations a fresh token may read."""

    # -- connecting ------------------------------------------------------------------------

    @classmethod
    def own_settings(cls, workspace: Workspace) -> OAuthPlatformSettings:
        settings = cls.settings_of(workspace.settings)
        assert isinstance(settings, OAuthPlatformSettings)
        return settings

    @classmethod
    def oauth_app(cls, settings: OAuthPlatformSettings, client_secret: str | None) -> OAuthApp:
        if not settings.client_id:
            raise KindlyError(
                f"no {cls.title} app is set up: [{cls.name}] client_id is missing in kindly.toml",
                hint=cls.app_hint or None,
            )
        return OAuthApp(
            platform=cls.title,
            client_id=settings.client_id,
            authorize_url=settings.authorize_url,
            token_url=settings.token_url,
            revoke_url=settings.revoke_url or None,
            scopes=settings.scopes or cls.oauth_scopes,
            client_secret=client_secret,
        )

    @classmethod
    def token_vault(cls, workspace: Workspace) -> TokenVault:
        return TokenVault(
            workspace.store, cls.name, secret_key(), clock=workspace.now, margin=cls.refresh_margin
        )

    @classmethod
    def tenants(cls, workspace: Workspace) -> list[Tenant]:
        saved = workspace.store.get_setting(cls.connection_scope(), "tenants") or []
        return [Tenant(item["id"], item["name"]) for item in saved]

    @classmethod
    def open(cls, workspace: Workspace) -> list[Self]:
        """One connector per organisation chosen at `kindly connect` (or --org)."""
        settings = cls.own_settings(workspace)
        tenants = cls.tenants(workspace)
        if not tenants:
            raise ConfigError(
                f"{cls.title} is not connected",
                hint=f"Run `kindly connect {cls.name}` (it opens the browser).",
            )
        if settings.tenants:
            tenants = [t for t in tenants if {t.tenant_id, t.name} & set(settings.tenants)]
        if workspace.organisation is not None:
            tenants = [t for t in tenants if workspace.organisation in (t.tenant_id, t.name)]
            if not tenants:
                raise ConfigError(
                    f"no connected {cls.title} organisation is called {workspace.organisation!r}",
                    hint=f"`kindly connect {cls.name}` lists the organisations it connected.",
                )
        vault = cls.token_vault(workspace)
        shared = cls.new_budget() if cls.budget_per_token else None
        return [
            cls(
                settings,
                vault,
                tenant,
                company_country=workspace.settings.company.country,
                client_secret=os.environ.get(cls.client_secret_variable),
                clock=workspace.now,
                budget=shared,
            )
            for tenant in tenants
        ]

    @classmethod
    def connect(cls, workspace: Workspace, request: ConnectRequest) -> str:
        """Sign in (or take a refresh token), list the organisations, keep the chosen ones."""
        settings = cls.own_settings(workspace)
        # The key the tokens are kept with, before signing in: without it, say so first.
        vault = cls.token_vault(workspace)
        app = cls.web_sign_in(workspace)
        token, http = sign_in_and_keep(
            app,
            vault,
            request,
            redirect_port=settings.redirect_port,
            refresh_token=request.refresh_token or os.environ.get(cls.refresh_token_variable),
            what=f"{cls.title} invoices",
            now=workspace.now,
        )
        tenants = cls.list_tenants(settings, http, token)
        organisation = workspace.organisation
        if organisation is not None:
            tenants = [t for t in tenants if organisation in (t.tenant_id, t.name)]
        cls._keep(workspace, tenants, organisation)
        names = ", ".join(f"[bold]{escape(t.name)}[/]" for t in tenants)
        message = f"Connected {cls.title}: {names}."
        extra = cls.after_connect(workspace)
        if extra:
            message += "\n" + escape(extra)
        if workspace.settings.connector != cls.name:
            where = workspace.settings.where
            message += (
                f'\n[yellow]Note:[/] set connector = "{cls.name}" in {escape(str(where))} to '
                f"sync from {cls.title}."
            )
        return message

    @classmethod
    def _keep(cls, workspace: Workspace, tenants: list[Tenant], organisation: str | None) -> str:
        if not tenants:
            raise KindlyError(
                f"{cls.title} granted access to no organisation"
                + (f" called {organisation!r}" if organisation else ""),
                hint=f"Connect {cls.title} again and tick the organisation to connect.",
            )
        workspace.store.set_setting(
            cls.connection_scope(),
            "tenants",
            [{"id": t.tenant_id, "name": t.name} for t in tenants],
            workspace.now(),
        )
        return f"Connected {cls.title}: {', '.join(t.name for t in tenants)}."

    @classmethod
    def web_sign_in(cls, workspace: Workspace) -> OAuthApp:
        """The app to sign in with, asking for the scopes this workspace needs (unless
        ``scopes`` in the connector's section says which)."""
        settings = cls.own_settings(workspace)
        app = cls.oauth_app(settings, os.environ.get(cls.client_secret_variable))
        if settings.scopes:
            return app
        return dataclasses.replace(app, scopes=cls.wanted_scopes(workspace))

    @classmethod
    def wanted_scopes(cls, workspace: Workspace) -> tuple[str, ...]:
        """The scopes for what this workspace does with the platform; by default the
        connector's own (a connector asks for a write scope only where it is used)."""
        return cls.oauth_scopes

    @classmethod
    def signed_in(
        cls, workspace: Workspace, token: Token, http: HttpClient
    ) -> list[tuple[str, str]]:
        # Kept at once: a platform that rotates refresh tokens retired the code already.
        cls.token_vault(workspace).save(token)
        tenants = cls.list_tenants(cls.own_settings(workspace), http, token)
        return [(t.tenant_id, t.name) for t in tenants]

    @classmethod
    def keep_organisations(cls, workspace: Workspace, chosen: Sequence[tuple[str, str]]) -> str:
        message = cls._keep(workspace, [Tenant(i, name) for i, name in chosen], None)
        extra = cls.after_connect(workspace)
        return f"{message} {extra}" if extra else message

    @classmethod
    def after_connect(cls, workspace: Workspace) -> str:
        """What a platform sets up once its organisations are kept (Exact: webhook
        subscriptions); a sentence for the user, or "". It never undoes the connection."""
        return ""

    @classmethod
    def before_disconnect(cls, workspace: Workspace) -> str:
        """What a platform ends while its tokens still work; a sentence, or ""."""
        return ""

    @classmethod
    def connected(cls, workspace: Workspace) -> list[str] | None:
        tenants = cls.tenants(workspace)
        return [t.name for t in tenants] if tenants else None

    @classmethod
    def disconnect(cls, workspace: Workspace) -> str:
        """Revoke the token at the platform, forget it and the organisations."""
        settings = cls.own_settings(workspace)
        tenants = cls.tenants(workspace)
        ended = cls.before_disconnect(workspace)
        secret = os.environ.get(cls.client_secret_variable)
        revoke_and_forget(cls.token_vault(workspace), lambda: cls.oauth_app(settings, secret))
        workspace.store.delete_setting(cls.connection_scope(), "tenants")
        message = (
            f"Disconnected {cls.title} ({len(tenants)} organisation(s)); "
            "Kindly's access is revoked."
        )
        return f"{message} {ended}" if ended else message
