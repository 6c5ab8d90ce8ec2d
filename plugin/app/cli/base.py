"""The `kindly` group: options every command shares, opening a workspace, and errors.

Only click is imported at start-up; everything else is imported inside the command that
needs it, so `kindly --help` answers at once. Errors a user can act on are printed as one
line plus a hint; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from plugin import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from plugin.config.settings import Settings
    from plugin.run import Kindly
    from plugin.state.store import Store


@dataclass
class AppContext:
    config: Path
    debug: bool
    organisation: str | None = None

    def console(self) -> Console:
        from rich.console import Console

        return Console(highlight=False)

    def workspace(self) -> Kindly:
        return open_workspace(self.config, self.organisation)

    def workspaces(self) -> list[Kindly]:
        return open_workspaces(self.config, self.organisation)


_Command = TypeVar("_Command", bound=Callable[..., Any])


def workspaces_option(what: str) -> Callable[[_Command], _Command]:
    """``--workspace`` (repeatable): another workspace's kindly.toml, a folder of them, or
    settings held in the database, for a command that serves many (scheduler, status,
    serve)."""
    return click.option(
        "--workspace",
        "extra",
        multiple=True,
        help=f"Another workspace's kindly.toml {what}, or a folder: every */kindly.toml "
        "in it; db:NAME for a workspace whose settings the database (KINDLY_STORE_URL) "
        "holds, db: for all of them (repeat it).",
    )


def workspace_configs(app: AppContext, extra: tuple[str, ...]) -> list[str]:
    """--config (unless only --workspace is given and --config is not there) and each
    --workspace, resolved (a folder stays a folder: it is looked into at each look;
    db: entries are looked up in the database at each look)."""
    from plugin.app.stored_settings import is_stored, place_key

    for place in extra:
        if not is_stored(place) and not Path(place).exists():
            raise click.BadParameter(f"{place} does not exist", param_hint="'--workspace'")
    config_there = is_stored(app.config) or app.config.exists()
    places = [str(app.config), *extra] if config_there or not extra else list(extra)
    return [place_key(place) for place in places]


def open_workspaces(config: str | Path, organisation: str | None = None) -> list[Kindly]:
    """Settings, store and connectors for a workspace's settings (a kindly.toml, or
    db:NAME): one per source."""
    from plugin.app.wiring import open_settings_and_store

    settings, store = open_settings_and_store(config)
    try:
        return workspaces_with(settings, store, organisation)
    except BaseException:
        store.close()
        raise


def workspaces_with(
    settings: Settings, store: Store, organisation: str | None = None
) -> list[Kindly]:
    """The workspaces on settings and a store already opened: one per source."""
    from plugin.app.wiring import open_calendar, open_sources, sms_gateway_factory
    from plugin.run import Kindly

    calendar = open_calendar(settings, store)
    return [
        Kindly(settings, store, source, calendar, sms_gateway_factory(settings, store))
        for source in open_sources(settings, store, organisation)
    ]


def open_workspace(config: str | Path, organisation: str | None = None) -> Kindly:
    """The one source a command looks at; with several organisations, --org chooses."""
    from plugin.errors import ConfigError

    workspaces = open_workspaces(config, organisation)
    if len(workspaces) > 1:
        names = ", ".join(repr(k.source.location) for k in workspaces)
        raise ConfigError(
            f"several organisations are connected ({names})",
            hint="Choose one with --org NAME (or KINDLY_ORG).",
        )
    return workspaces[0]


def _fail(message: str, hint: str | None, code: int = 1) -> NoReturn:
    click.secho(f"Error: {message}", fg="red", err=True)
    if hint:
        click.echo(f"Hint: {hint}", err=True)
    sys.exit(code)


class KindlyGroup(click.Group):
    """Turns known errors into one clear line; shows tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        from plugin.errors import KindlyError

        try:
            return super().invoke(ctx)
        except KindlyError as exc:
            if _debugging(ctx):
                raise
            _fail(str(exc), exc.hint, exc.exit_code)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", "Run the command again; it continues where it stopped.", 130)
        except Exception as exc:
            if _debugging(ctx):
                raise
            _fail(
                f"unexpected {type(exc).__name__}: {exc}",
                "Run again with --debug for the traceback, and please report it.",
                2,
            )


def _debugging(ctx: click.Context) -> bool:
    obj = ctx.obj
    return bool(getattr(obj, "debug", False)) or os.environ.get("KINDLY_DEBUG") == "1"


def _parse_at(value: str | None, zone: str | None = None) -> datetime:
    """``--at``: a moment; without an offset, on the clock of ``zone`` (the company's,
    as the docs say), or of this computer when the company's country has several."""
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date and time such as 2026-12-01T10:00", param_hint="--at"
        ) from None
    if not 1900 <= moment.year <= 2199:
        # Planning adds days and years to it: the ends of the calendar have no room.
        raise click.BadParameter(
            f"{value!r} is outside the years Kindly plans in (1900 to 2199)", param_hint="--at"
        )
    if moment.tzinfo is not None:
        return moment
    if zone is not None:
        from zoneinfo import ZoneInfo

        return moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone()


def company_zone(kindly: Kindly) -> str | None:
    """The company's time zone, where its country has one clock."""
    from plugin.config.locales import default_timezone

    country = kindly.settings.company.country
    return default_timezone(country) if country else None


if TYPE_CHECKING:
    _DayType = click.ParamType[date]
else:  # generic from click 8.2 on
    _DayType = click.ParamType


class CalendarDay(_DayType):
    """A day such as 2026-03-01, within the years Kindly plans in (1900 to 2199): charges
    and plans add days and years to it, and the ends of the calendar have no room."""

    name = "date"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> date:
        if isinstance(value, date):
            return value
        try:
            day = date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a day such as 2026-03-01", param, ctx)
        if not 1900 <= day.year <= 2199:
            self.fail(f"{value!r} is outside the years Kindly plans in (1900 to 2199)", param, ctx)
        return day


AT_OPTION = click.option(
    "--at",
    "at",
    metavar="DATETIME",
    help="Act as if it were this moment (ISO 8601, e.g. 2026-12-01T10:00; without an offset, "
    "on the company's clock). Default: now.",
)


REVIEW_OPTIONS = (
    click.option("--review", is_flag=True, help="Show the batch and ask before sending."),
    click.option("--yes", is_flag=True, help="With --review: send without asking (scripts)."),
)


@click.group(cls=KindlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="KINDLY_CONFIG",
    default="kindly.toml",
    show_default=True,
    help="Settings file (also KINDLY_CONFIG).",
)
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.option(
    "--org",
    envvar="KINDLY_ORG",
    metavar="NAME",
    help="With several organisations connected: the one to use (also KINDLY_ORG).",
)
@click.version_option(__version__, prog_name="kindly")
@click.pass_context
def cli(ctx: click.Context, config: Path, debug: bool, org: str | None) -> None:
    """Kindly sends tactful payment reminders for the invoices in your accounting tool.

    Start with `kindly demo` to see it work on sample data, or `kindly init` to set up
    your own company. Then: `kindly sync`, `kindly plan`, `kindly send` (or `kindly run`
    for all three) and `kindly history`.
    """
    ctx.obj = AppContext(config=config, debug=debug, organisation=org)
    if debug or os.environ.get("KINDLY_DEBUG") == "1":
        _log_calls()


def _log_calls() -> None:
    """--debug: every call to a platform on stderr, one line each, secrets masked.

    integrations/http.py writes them ("GET https://api.xero.com/... -> 200 in 84 ms"),
    with tokens and keys replaced by *** before the line is formatted.
    """
    import logging

    kindly = logging.getLogger("kindly")
    kindly.setLevel(logging.DEBUG)
    for handler in kindly.handlers:
        if handler.get_name() == "kindly-debug":
            kindly.removeHandler(handler)  # one per command, on this command's stderr
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("kindly-debug")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
    kindly.addHandler(handler)


def main() -> None:
    cli(prog_name="kindly")
