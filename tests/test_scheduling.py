"""The scheduler built into `kindly web --schedule`: one machine, no queue, no cron. Each
organisation runs once per tick, in this process, under its lease; a busy organisation is
taken up again at a later look (real SQLite, the demo workspace)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from plugin.app.scheduling import AGAIN_AFTER, look_once, start_scheduler
from tests.conftest import DEMO_NOW


def _outbox(workspace: Path) -> list[Path]:
    return sorted((workspace.parent / "outbox").glob("*.eml"))


def test_each_tick_runs_once_and_the_next_day_runs_again(demo_workspace: Path) -> None:
    config = demo_workspace / "kindly.toml"
    (first,) = look_once(config, lambda: DEMO_NOW)
    assert first["sent"] > 0 and first["detail"].startswith("sent ")
    sent = _outbox(demo_workspace)
    assert len(sent) == first["sent"]
    assert look_once(config, lambda: DEMO_NOW) == [], "the tick was served"
    assert look_once(config, lambda: DEMO_NOW + timedelta(minutes=30)) == []
    (next_day,) = look_once(config, lambda: DEMO_NOW + timedelta(days=1))
    assert next_day["sent"] == 0 and _outbox(demo_workspace) == sent


def test_a_busy_organisation_is_taken_up_at_a_later_look(demo_workspace: Path) -> None:
    """`kindly run` holds the organisation's lease: the look leaves the run unclaimed
    for AGAIN_AFTER seconds and does not mark it done; then it runs."""
    from plugin.app.cli.base import open_workspaces

    config = demo_workspace / "kindly.toml"
    (other,) = open_workspaces(config)
    try:
        with other.holding():
            (busy,) = look_once(config, lambda: DEMO_NOW)
            assert busy["detail"].startswith("later: another Kindly is sending")
            assert look_once(config, lambda: DEMO_NOW + timedelta(seconds=60)) == []
        assert _outbox(demo_workspace) == []
        later = DEMO_NOW + timedelta(seconds=AGAIN_AFTER + 1)
        (ran,) = look_once(config, lambda: later)
        assert ran["sent"] > 0 and len(_outbox(demo_workspace)) == ran["sent"]
    finally:
        other.store.close()


def test_the_scheduler_thread_looks_at_once_and_stops_when_told(demo_workspace: Path) -> None:
    looked = threading.Event()
    seen: list[list[dict[str, Any]]] = []

    def after(done: list[dict[str, Any]]) -> None:
        seen.append(done)
        looked.set()

    stop = start_scheduler(
        [demo_workspace / "kindly.toml"], every=3600, clock=lambda: DEMO_NOW, after_look=after
    )
    try:
        assert looked.wait(60), "the first look came at once"
    finally:
        stop.set()
    (first,) = seen[0]
    assert first["sent"] == len(_outbox(demo_workspace)) > 0


def test_a_days_allowance_used_up_defers_the_tick_and_a_short_wait_comes_back(
    demo_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform's limit returns in a minute: the run is taken up again at a later
    look; it returns tomorrow: the tick ends "deferred" (no sync every ten minutes all
    day), and `kindly status` would list it."""
    from integrations.http import RetriableError
    from plugin.run import Kindly

    config = demo_workspace / "kindly.toml"
    waits = [60.0, 50_000.0]

    def used_up(self: Kindly, now: object) -> None:
        raise RetriableError("the allowance is used up", retry_after=waits.pop(0), later=True)

    monkeypatch.setattr(Kindly, "sync", used_up)
    (soon,) = look_once(config, lambda: DEMO_NOW)
    assert soon["detail"].startswith("later: ")
    later = DEMO_NOW + timedelta(seconds=AGAIN_AFTER + 1)
    (tomorrow,) = look_once(config, lambda: later)
    assert tomorrow["detail"] == "deferred: the allowance is used up"
    assert look_once(config, lambda: later + timedelta(seconds=AGAIN_AFTER + 1)) == []
