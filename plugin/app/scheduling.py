"""The schedule at work, without a queue: which runs of an organisation are due, and one
run (sync, plan, send, notes) under its lease, for the workers (plugin/app/workers.py)
and for the scheduler built into `kindly web --schedule` on one machine.

Which days and hours are due is worked out purely in :mod:`plugin.core.schedule`; here
are the store's side (the zones kept after each run, the runs claimed and done) and the
run itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plugin.core.schedule import Zone, due_ticks, latest_tick, zones_of
from plugin.errors import BusyError, KindlyError, PlatformRemindersOn

if TYPE_CHECKING:
    from plugin.core.decisions import Plan
    from plugin.run import Kindly

__all__ = [
    "CALENDAR_LOOK",
    "ZONES_SCOPE",
    "Ran",
    "claim_due",
    "due_runs",
    "look_once",
    "run_due",
    "start_scheduler",
]

log = logging.getLogger("kindly.schedule")

#: Where an organisation's zones are kept between runs.
ZONES_SCOPE = "schedule"
#: With a calendar, an organisation runs at least this often, to see new bookings.
CALENDAR_LOOK = timedelta(hours=1)


@dataclass
class Ran:
    """What a run did: its counts, and every (zone, local day) it served."""

    counts: dict[str, Any]
    served: list[tuple[str, str]] = field(default_factory=list)

    @property
    def detail(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.counts.items() if isinstance(v, int))


def due_runs(kindly: Kindly, now: datetime) -> list[tuple[str, str]]:
    """The organisation's runs due at ``now``: (zone key, local day) of each tick come
    and not yet run; "first" for one never run; a wake between ticks."""
    source = kindly.source_id
    kept = kindly.store.get_setting(ZONES_SCOPE, source)
    if kept is not None:
        zones = [Zone.from_key(str(key)) for key in kept]
        done = kindly.store.runs_done(source)
        due = [(t.zone.key, t.day.isoformat()) for t in due_ticks(zones, done, now)]
    else:
        # Never run: its zones are not known until it has synced once.
        due = [("first", now.astimezone(UTC).date().isoformat())]
    wake_text = kindly.store.get_setting(ZONES_SCOPE, f"{source}|wake")
    wake = datetime.fromisoformat(str(wake_text)) if wake_text else None
    if wake is not None and wake <= now:
        # An appointment reminder waits for this moment: a run between the ticks.
        due.append((f"wake|{wake.isoformat()}", wake.astimezone(UTC).date().isoformat()))
    return due


def claim_due(kindly: Kindly, now: datetime, *, stale_after: float) -> list[tuple[str, str]]:
    """The due runs this caller claimed (each with one conditional statement: of two
    schedulers at once, one gets it)."""
    return [
        (zone, day)
        for zone, day in due_runs(kindly, now)
        if kindly.store.claim_run(kindly.source_id, zone, day, now, stale_after=stale_after)
    ]


def run_due(kindly: Kindly, ticks: Sequence[tuple[str, str]], now: datetime) -> Ran:
    """Sync, plan, send and write notes for the organisation under its lease (none
    waited for: BusyError), and keep its zones and its next wake. Raises what stopped it;
    a shared call limit that ran out on the way is raised once what went is logged."""
    counts: dict[str, Any] = {"organisation": kindly.source_id, "ticks": list(ticks)}
    # The whole run under the organisation's lease: a webhook's sync or another run never
    # reads or writes its snapshot meanwhile.
    with kindly.holding(wait=0.0) as lease:
        snapshot = kindly.sync(now)
        plan = kindly.plan(now)
        result = kindly.send(plan, now, lease=lease)
        refused = limit_refusal(kindly)
        if refused is None and getattr(result.stopped, "later", False):
            refused = result.stopped  # a limit of this process's own (no workers)
        if refused is not None:
            # The rest of the notes, or a link to compose: the run goes on when the budget
            # returns.
            raise refused
    counts.update(
        sent=len(result.sent),
        deferred=len(result.deferred),
        failed=len(result.failed),
        unconfirmed=len(result.unconfirmed),
    )
    ran = Ran(counts, list(ticks))
    if result.stopped is not None:
        counts["stopped"] = str(result.stopped)
    zones = zones_of(snapshot, kindly.settings) | {home_zone(kindly)}
    kindly.store.set_setting(ZONES_SCOPE, kindly.source_id, sorted(z.key for z in zones), now)
    wake = wake_after(kindly, plan, now)
    kindly.store.set_setting(
        ZONES_SCOPE, f"{kindly.source_id}|wake", wake.isoformat() if wake else None, now
    )
    # The run served every zone whose tick had come, queued or not: none of them is due
    # again until its next tick.
    ran.served += [(t.zone.key, t.day.isoformat()) for z in zones if (t := latest_tick(z, now))]
    return ran


def detail_of(ran: Ran) -> str:
    """What `kindly status` shows of a run that ended."""
    detail = ran.detail
    if "stopped" in ran.counts:
        detail += f"; stopped: {ran.counts['stopped']}"
    return detail


def limit_refusal(kindly: Kindly) -> KindlyError | None:
    """The call the organisation's shared budget last refused in this run, if any."""
    http = getattr(kindly.source, "http", None)
    budget = getattr(http, "budget", None)
    refused = getattr(budget, "refused", None)
    return refused if isinstance(refused, KindlyError) else None


def home_zone(kindly: Kindly) -> Zone:
    """The company's own zone, on the default policy's window: an organisation with
    nothing open still runs once a business day, to find what became due."""
    from plugin.config.locales import default_timezone

    country = kindly.settings.company.country or "NL"
    timezone = default_timezone(country) or "UTC"
    window = kindly.settings.policies[kindly.settings.defaults.policy].send_window
    return Zone(timezone, country, window)


def wake_after(kindly: Kindly, plan: Plan, now: datetime) -> datetime | None:
    """When the organisation must run again, between its daily ticks, for appointment
    reminders (due hours before an event, or held by quiet hours): the soonest moment one
    waits for; with a calendar, within the hour at the latest, to see new bookings."""
    waits = [skip.next_date for skip in plan.appointment_skips if skip.next_date is not None]
    if kindly.calendar is not None:
        waits.append(now + CALENDAR_LOOK)
    later = [moment for moment in waits if moment > now]
    return min(later) if later else None


#: The in-process scheduler takes a run up again after this many seconds when it could
#: not finish it (the lease was held, a call limit ran out for a while).
AGAIN_AFTER = 600
#: A limit that returns later than this (a day's allowance) ends the run as deferred:
#: the next tick carries on, rather than a sync every ten minutes all day.
LONGEST_WAIT = 1800


def look_once(config: str | Path, clock: Callable[[], datetime]) -> list[dict[str, Any]]:
    """One look of the scheduler built into `kindly web --schedule`: every organisation
    of the workspace with a run due runs now, here, one after another (each on the clock
    as it starts); what each did.

    A run that finds its organisation busy (a `kindly run` holds the lease) or a call
    limit used up for a while is not marked done: it is taken up again at a look
    AGAIN_AFTER seconds on. Any other end, said in `kindly status`, is the tick's.
    """
    from plugin.app.cli.base import open_workspaces

    done: list[dict[str, Any]] = []
    workspaces = open_workspaces(config)
    try:
        for kindly in workspaces:
            try:
                entry = _look_at(kindly, clock())
            except Exception:  # the store, say: this organisation's look, not the others'
                log.exception("%s: the scheduler could not look at it", kindly.source_id)
                continue
            if entry is not None:
                done.append(entry)
    finally:
        if workspaces:
            workspaces[0].store.close()
    return done


def _look_at(kindly: Kindly, now: datetime) -> dict[str, Any] | None:
    ticks = claim_due(kindly, now, stale_after=AGAIN_AFTER)
    if not ticks:
        return None
    try:
        ran = run_due(kindly, ticks, now)
    except Exception as exc:
        wait = getattr(exc, "retry_after", None) or 0.0
        if isinstance(exc, BusyError) or (getattr(exc, "later", False) and wait <= LONGEST_WAIT):
            log.info("%s: again at a later look: %s", kindly.source_id, exc)
            return {"organisation": kindly.source_id, "detail": f"later: {exc}"}
        if getattr(exc, "later", False):
            detail = f"deferred: {exc}"
        elif isinstance(exc, PlatformRemindersOn):
            detail = f"held: {exc}"
        elif isinstance(exc, KindlyError):
            detail = f"failed: {exc}"
        else:  # not a trouble Kindly knows: said, and the next look goes on
            log.exception("%s: the run failed", kindly.source_id)
            detail = f"failed: {type(exc).__name__}: {exc}"
        kindly.store.cover_runs(kindly.source_id, list(ticks), now, detail)
        return {"organisation": kindly.source_id, "detail": detail}
    detail = detail_of(ran)
    kindly.store.cover_runs(kindly.source_id, ran.served, now, detail)
    return {**ran.counts, "detail": detail}


def start_scheduler(
    places: Sequence[str | Path],
    *,
    every: float = 60.0,
    clock: Callable[[], datetime] | None = None,
    after_look: Callable[[list[dict[str, Any]]], None] | None = None,
) -> threading.Event:
    """The scheduler built into `kindly web --schedule`: a thread that looks every
    ``every`` seconds (at once first) at every workspace of ``places`` (kindly.toml files,
    folders of them, db:NAME, db:; looked up again at each look) and runs what is due
    here; ``after_look`` is told what each look did. Set the event it returns to stop it."""
    from plugin.app.wiring import workspace_files

    stop = threading.Event()
    now = clock or (lambda: datetime.now(UTC))

    def loop() -> None:
        while True:
            done: list[dict[str, Any]] = []
            try:
                configs = workspace_files([str(place) for place in places])
            except Exception:  # the database is away: the next look tries
                log.exception("the scheduler could not list its workspaces")
                configs = []
            for config in configs:
                try:
                    looked = look_once(config, now)
                except Exception:  # a workspace that cannot be opened now: the next look tries
                    log.exception("the scheduler's look at %s failed", config)
                    continue
                for entry in looked:
                    log.info("scheduled run: %s", entry.get("detail"))
                done += looked
            if after_look is not None:
                after_look(done)
            if stop.wait(every):
                return

    threading.Thread(target=loop, name="kindly-scheduler", daemon=True).start()
    return stop
