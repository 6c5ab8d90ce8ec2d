"""`kindly worker` and `kindly scheduler`: many organisations on Celery workers (Redis)."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import click

from plugin.app.cli.base import AppContext, cli, workspace_configs, workspaces_option
from plugin.errors import ConfigError

#: Where the workers' queue is when neither --broker nor KINDLY_BROKER_URL says.
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"

BROKER_OPTION = click.option(
    "--broker",
    envvar="KINDLY_BROKER_URL",
    default=DEFAULT_BROKER,
    show_default=True,
    help="The Celery broker (Redis). Also KINDLY_BROKER_URL.",
)


def workers_module(broker: str | None = None) -> ModuleType:
    # The tasks' module reads the broker when it is first imported: set it before.
    os.environ["KINDLY_BROKER_URL"] = (
        broker or os.environ.get("KINDLY_BROKER_URL") or DEFAULT_BROKER
    )
    try:
        from plugin.app import workers
    except ImportError as exc:
        raise ConfigError(
            f"the workers need Celery, which is not installed ({exc})",
            hint="pip install 'kindly-reminders[workers]'",
        ) from None
    return workers


@cli.command()
@BROKER_OPTION
@click.option("--concurrency", default=2, show_default=True, type=int, help="Processes.")
@click.option(
    "--json-logs", is_flag=True, help="Kindly's log lines as JSON, with organisation and task."
)
def worker(broker: str, concurrency: int, json_logs: bool) -> None:
    """Run the organisations' queued runs: sync, plan, send and write notes, each under
    its organisation's lease. Start as many as you like, on as many machines."""
    workers = workers_module(broker)
    if json_logs:
        workers.log_as_json()
    workers.app.worker_main(
        [
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            "--queues",
            workers.QUEUE,
            "--without-gossip",
            "--without-mingle",
        ]
    )


@cli.command()
@BROKER_OPTION
@workspaces_option("to schedule as well")
@click.option("--every", default=60.0, show_default=True, help="Seconds between looks.")
@click.pass_obj
def scheduler(app: AppContext, broker: str, extra: tuple[str, ...], every: float) -> None:
    """Queue each organisation's run soon after its clients' send windows open, on
    business days (docs/deployment.md). Run ONE scheduler; any number of workers."""
    from platformdirs import user_cache_dir

    workers = workers_module(broker)
    configs = workspace_configs(app, extra)
    workers.app.conf.beat_schedule = {
        "kindly-due": {"task": "kindly.enqueue_due", "schedule": every, "args": (configs,)}
    }
    state = Path(user_cache_dir("kindly")) / "celerybeat-schedule"
    state.parent.mkdir(parents=True, exist_ok=True)
    workers.app.Beat(schedule=str(state), loglevel="INFO").run()


@cli.command()
@BROKER_OPTION
@workspaces_option("to show as well")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.pass_obj
def status(app: AppContext, broker: str, extra: tuple[str, ...], as_json: bool) -> None:
    """The scheduled runs: each organisation's last run and what came of it, its next
    run, the runs that failed this week, and how many runs wait in the queue."""
    import json
    from datetime import UTC, datetime

    from rich.table import Table

    workers = workers_module(broker)
    configs = workspace_configs(app, extra)
    found = workers.status(configs, datetime.now(UTC), broker)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    table = Table(title="Scheduled runs")
    columns = ("Organisation", "Last run", "What came of it", "Next run", "Failed (7 days)")
    for column in (*columns, "Calls used"):
        table.add_column(column)
    for org in found["organisations"]:
        table.add_row(
            org["location"],
            org["last_run"] or "never",
            org["last_result"] or "",
            org["next_run"] or "at the next look",
            str(len(org["failed_this_week"])),
            "\n".join(f"{b['used']} of {b['limit']}" for b in org["budgets"]) or "-",
        )
    console = app.console()
    console.print(table)
    queued = found["queued"]
    console.print(
        f"Queued runs: {queued}"
        if queued is not None
        else "Queued runs: the broker cannot be asked"
    )
