"""`kindly settings`: a workspace's settings held in the database (KINDLY_STORE_URL) instead
of a kindly.toml, for workers serving many organisations (docs/deployment.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from plugin.app.cli.base import AppContext, cli

NAME_HELP = "The workspace's name in the database (letters, digits, '.', '-', '_')."


@cli.group("settings")
def settings_group() -> None:
    """Hold workspaces' settings in the database: import a kindly.toml, export it back,
    list them. Any command then takes --config db:NAME, and the scheduler, status and
    serve --workspace db: (every workspace held there)."""


@settings_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "name", required=True, help=NAME_HELP)
@click.option("--replace", is_flag=True, help="Put these in place of settings held already.")
def import_command(file: Path, name: str, replace: bool) -> None:
    """Hold FILE (a kindly.toml, comments and all) as the settings of workspace NAME.
    Checked as Kindly checks the file; nothing is saved unless all of it passes."""
    from plugin.app.stored_settings import import_settings, locator

    left_out = import_settings(file, name, datetime.now(UTC), replace=replace)
    for note in left_out:
        click.echo(f"Left out {note}.")
    click.echo(f"Held {file} as {locator(name)}; use it with --config {locator(name)}.")


@settings_group.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of printing (an existing one is not overwritten).",
)
@click.pass_obj
def export_command(app: AppContext, output: Path | None) -> None:
    """The settings held for --config db:NAME, as they were imported or last changed."""
    from plugin.app.stored_settings import export_settings, is_stored

    if not is_stored(app.config):
        raise click.UsageError("name the workspace held in the database: --config db:NAME")
    text = export_settings(str(app.config))
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with output.open("x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise click.UsageError(f"{output} exists already; name another file") from None
    click.echo(f"Wrote {app.config} to {output}.")


@settings_group.command("list")
def list_command() -> None:
    """Every workspace whose settings the database holds."""
    from plugin.app.stored_settings import stored_locators

    for locator in stored_locators():
        click.echo(locator)
