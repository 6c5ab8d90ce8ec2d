"""Many organisations on workers: Celery tasks on Redis, and the schedule that feeds them.

``kindly scheduler`` runs Celery beat with one periodic task, :func:`enqueue_due`: every
minute it looks at every organisation of the workspaces it was given, works out which of
their zones' runs are due (:mod:`plugin.core.schedule`), claims each in the store (one
conditional statement: two schedulers never queue the same run) and queues it.
``kindly worker`` runs Celery workers that take :func:`run_organisation`: sync, plan,
send and write notes for one organisation, under its run lease, for all its ticks due
(one run serves every zone whose window has opened), then mark them done and keep the
organisation's zones for the next ticks.

Every guarantee of a single ``kindly run`` holds with many workers: the run lease keeps
one run per organisation at a time across machines, and each reminder and note is claimed
once in the store. A task is acknowledged only once it finished (``acks_late``), so a
worker killed mid-run leaves its task to another, which runs it again safely; a run that
finds the organisation's lease held is put back on the queue for a minute later, not slept
on. A claim the queue lost (a broker restarted without its data) is queued again after
:data:`REQUEUE_AFTER` seconds.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import os
import resource
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from celery import Celery, Task

from integrations.http import RetriableError, share_limits
from plugin.app.scheduling import ZONES_SCOPE, claim_due, detail_of, run_due
from plugin.app.wiring import workspace_files
from plugin.core.schedule import Zone
from plugin.errors import BusyError, KindlyError, PlatformRemindersOn

if TYPE_CHECKING:
    from plugin.run import Kindly

__all__ = [
    "BROKER_VARIABLE",
    "DEFAULT_BROKER",
    "REDIS_VARIABLE",
    "app",
    "enqueue_due",
    "make_app",
    "organisation_step",
    "queue_step",
    "queue_sync",
    "run_organisation",
    "status",
    "workspace_files",
]

log = logging.getLogger("kindly.workers")

BROKER_VARIABLE = "KINDLY_BROKER_URL"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
#: The Redis that keeps the runs' results, the shared call limits and the webhook syncs
#: waiting, when the broker is not Redis itself (RabbitMQ); by default the broker.
REDIS_VARIABLE = "KINDLY_REDIS_URL"
QUEUE = "kindly"
#: Seconds after which Redis hands a run a worker took and never finished (the worker
#: was killed, its machine lost) to another worker: Celery's ``visibility_timeout``. A run
#: must end well within it (a longer one is handed out twice; the lease makes the second
#: wait). KINDLY_VISIBILITY_TIMEOUT changes it, for every worker and the scheduler alike.
VISIBILITY_TIMEOUT = int(os.environ.get("KINDLY_VISIBILITY_TIMEOUT") or 3600)
#: Seconds after which a claimed run that never finished may be queued again: the
#: redelivery time, and a little more.
REQUEUE_AFTER = VISIBILITY_TIMEOUT + 600
#: Seconds a run waits before it tries again when the organisation's lease is held.
BUSY_RETRY = 60
#: The longest a task waits on the queue for a limit: under the redelivery time, which
#: would hand it out again meanwhile. A longer wait is left to the next tick.
LONGEST_COUNTDOWN = VISIBILITY_TIMEOUT // 2


#: The organisation and task a worker's log lines are about.
_context: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "kindly_task", default=()
)


class TaskContext(logging.Filter):
    """Puts the organisation and the task id on every log record of the task."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get():
            setattr(record, name, value)
        return True


class JsonLines(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the organisation and
    task it is about (for a log collector to search by)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("organisation", "task", "workspace"):
            value = getattr(record, name, None)
            if value:
                line[name] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def log_as_json(stream: Any = None) -> None:
    """Kindly's log lines on ``stream`` (stderr) as JSON, with the organisation and task."""
    kindly = logging.getLogger("kindly")
    kindly.setLevel(logging.INFO)
    for handler in list(kindly.handlers):
        if handler.get_name() == "kindly-json":
            kindly.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.set_name("kindly-json")
    handler.setFormatter(JsonLines())
    handler.addFilter(TaskContext())
    kindly.addHandler(handler)
    kindly.propagate = False


@contextlib.contextmanager
def _about(task: Task, config: str, source: str) -> Iterator[None]:
    token = _context.set(
        (("organisation", source), ("workspace", config), ("task", str(task.request.id or "")))
    )
    try:
        yield
    finally:
        _context.reset(token)


#: A sliding window per key (a sorted set of the calls' times, on Redis's own clock, so
#: that the workers' clocks do not matter): every rule is checked first, and the call is
#: counted under all of them or none.
_TAKE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ms - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local free = tonumber(oldest[2]) + window - ms
    if free > wait then wait = free end
  end
end
if wait > 0 then return wait end
local member = ms .. '-' .. redis.call('INCR', 'kindly:limit:sequence')
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, ms, member)
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i]))
end
return 0
"""


class RedisLimits:
    """The platforms' limits shared by every worker, in Redis (SharedLimits)."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self._take = self.client.register_script(_TAKE)

    def take(self, rules: Sequence[tuple[str, int, float]]) -> float:
        keys = [key for key, _, _ in rules]
        args: list[int] = []
        for _, calls, seconds in rules:
            # Counted over a slightly longer window: the platform counts a call when it
            # arrives, not when a worker took it; one taken at the window's last moment
            # and arriving a moment later was met with 429 (Xero's fake counts so too).
            args += [calls, int(seconds * 1000 + max(100, seconds * 20))]
        waited = int(self._take(keys=keys, args=args))
        return waited / 1000


def _share_limits(**_: object) -> None:
    """Each worker process counts its calls with every other's (Celery's
    worker_process_init, and the main process for a solo pool), and keeps one connection
    pool per database for every workspace it serves."""
    from plugin.app.wiring import share_connections

    share_limits(RedisLimits(redis_url(app.conf.broker_url)))
    share_connections()


#: RabbitMQ closes a channel whose message stays unacknowledged this long (its default
#: consumer_timeout, 30 minutes); a task waiting for its countdown is one.
RABBITMQ_CONSUMER_TIMEOUT = 1800


def longest_countdown(broker: str) -> float:
    """The longest a task may wait on the queue for a limit on this broker."""
    if broker.startswith(("redis://", "rediss://")):
        return LONGEST_COUNTDOWN
    return min(LONGEST_COUNTDOWN, RABBITMQ_CONSUMER_TIMEOUT * 0.8)


def redis_url(broker: str) -> str:
    """The Redis beside the broker: KINDLY_REDIS_URL, else the broker when it is Redis,
    else Redis's default on this machine."""
    if os.environ.get(REDIS_VARIABLE):
        return os.environ[REDIS_VARIABLE]
    return broker if broker.startswith(("redis://", "rediss://")) else DEFAULT_BROKER


def make_app(broker: str) -> Celery:
    # Results in Redis (the broker's, or KINDLY_REDIS_URL beside RabbitMQ), kept a day:
    # `kindly status` and tests read them.
    celery = Celery("kindly", broker=broker, backend=redis_url(broker))
    celery.conf.update(
        result_expires=86400,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        # Acknowledged once done: a worker killed mid-run leaves the task to another.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT,
            # How often the workers look for runs a killed worker left: kombu's default
            # (every ~100 s) suits the hour; a shorter timeout wants shorter looks.
            "unacked_restore_interval": max(1, min(10, VISIBILITY_TIMEOUT // 5)),
            "unacked_restore_throttle": max(1, min(10, VISIBILITY_TIMEOUT // 100)),
            # The lock of that look: a worker killed while it held it would hold up every
            # look for kombu's five minutes.
            "unacked_mutex_expire": max(5, min(300, VISIBILITY_TIMEOUT // 3)),
        },
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
    )
    celery.task(name="kindly.run_organisation", bind=True, max_retries=None)(run_organisation)
    celery.task(name="kindly.enqueue_due")(enqueue_due)
    from celery.signals import worker_process_init

    worker_process_init.connect(_share_limits, weak=False)
    for step, name in STEPS.items():
        celery.task(name=name, bind=True, max_retries=None)(_step(step))
    celery.task(name="kindly.web_sync")(web_sync)
    return celery


def run_organisation(
    task: Task,
    config: str,
    source: str,
    ticks: Sequence[Sequence[str]],
    at: str | None = None,
) -> dict[str, Any]:
    """Sync, plan, send and write notes for the organisation ``source`` of the workspace
    ``config``, for its due ``ticks`` (zone key, local day); ``at`` stands in for the
    clock (tests, and a catch-up that must plan as of a given moment)."""
    from plugin.app.cli.base import open_workspaces

    now = datetime.fromisoformat(at) if at else datetime.now(UTC)
    with _about(task, config, source):
        found = [k for k in open_workspaces(config) if k.source_id == source]
        if not found:
            raise KindlyError(f"{config} no longer connects the organisation {source}")
        (kindly,) = found
        log.info("run for %s", ", ".join(f"{zone} {day}" for zone, day in ticks))
        try:
            return _run(task, kindly, [(str(zone), str(day)) for zone, day in ticks], now)
        finally:
            kindly.store.close()


def _run(task: Task, kindly: Kindly, ticks: list[tuple[str, str]], now: datetime) -> dict[str, Any]:
    counts: dict[str, Any] = {"organisation": kindly.source_id, "ticks": ticks}
    served = list(ticks)
    try:
        ran = run_due(kindly, ticks, now)
        detail = detail_of(ran)
        counts = {k: v for k, v in ran.counts.items() if k != "stopped"}
        served = ran.served
    except BusyError as exc:
        # Another worker runs this organisation: again in a minute, not slept on here.
        log.info("%s busy, again in %s s: %s", kindly.source_id, BUSY_RETRY, exc)
        raise task.retry(countdown=BUSY_RETRY) from None
    except RetriableError as exc:
        countdown = max(1.0, exc.retry_after or BUSY_RETRY)
        if not exc.later or countdown > longest_countdown(task.app.conf.broker_url):
            # Not worth waiting on the queue (a daily allowance, the platform down):
            # the next tick tries again. What was sent is logged and not sent again.
            detail = f"deferred: {exc}"
            log.warning("%s: %s", kindly.source_id, exc)
        else:
            # A limit shared by every worker is used up: back on the queue for when it
            # returns.
            log.info("%s waits %.0f s for its call limit: %s", kindly.source_id, countdown, exc)
            raise task.retry(countdown=countdown) from None
    except PlatformRemindersOn as exc:
        detail = f"held: {exc}"
    except KindlyError as exc:
        # One organisation's trouble is its own: the run is over, the others go on.
        detail = f"failed: {exc}"
        log.warning("%s: %s", kindly.source_id, exc)
    except Exception as exc:
        # Not a trouble Kindly knows (a bug, a database gone): said, and the run is over,
        # not claimed for ever.
        detail = f"failed: {type(exc).__name__}: {exc}"
        log.exception("%s: the run failed", kindly.source_id)
    kindly.store.cover_runs(kindly.source_id, served, datetime.now(UTC), detail)
    counts["detail"] = detail
    # For `kindly status` and the benchmark: when it ended, and the worker's peak memory.
    counts["finished_at"] = time.time()
    counts["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return counts


def enqueue_due(
    configs: Sequence[str], at: str | None = None, *, via: Celery | None = None
) -> list[dict[str, Any]]:
    """Queue a run of every organisation of ``configs`` with a tick due now (or at
    ``at``), one task for all its due ticks (on ``via``, by default this module's app);
    each run queued, with its task's id. An organisation never run yet runs at once."""
    now = datetime.fromisoformat(at) if at else datetime.now(UTC)
    queued: list[dict[str, Any]] = []
    for config in workspace_files(configs):
        try:
            queued += _enqueue_workspace(config, now, at, via or app)
        except Exception:
            # One workspace that cannot be opened or queued must not stop the others.
            log.exception("%s: its runs could not be queued", config)
    return queued


def _enqueue_workspace(
    config: str, now: datetime, at: str | None, via: Celery
) -> list[dict[str, Any]]:
    from plugin.app.cli.base import open_workspaces

    queued = []
    workspaces = open_workspaces(config)
    try:
        for kindly in workspaces:
            source = kindly.source_id
            claimed = claim_due(kindly, now, stale_after=REQUEUE_AFTER)
            if not claimed:
                continue
            sent = via.send_task("kindly.run_organisation", args=(config, source, claimed, at))
            queued.append({"config": config, "source": source, "ticks": claimed, "task": sent.id})
    finally:
        if workspaces:
            workspaces[0].store.close()  # one store for the whole workspace
    return queued


#: While this key is in Redis, a step of the organisation (its sync, plan, send or notes)
#: waits in the queue: asking for it again queues nothing more.
PENDING = "kindly:pending:{step}:{config}:{source}"
#: The tasks of an organisation's steps, by step: each keyed by (workspace, organisation),
#: idempotent (a step run twice does what is left, nothing twice).
STEPS = {
    "sync": "kindly.sync_organisation",
    "plan": "kindly.plan_organisation",
    "send": "kindly.send_organisation",
    "notes": "kindly.write_notes",
}


@functools.cache
def _redis(url: str) -> Any:
    """One client (and its connection pool) per Redis URL for the process: a burst of
    webhooks, or `kindly status` over many organisations, reuses its connections."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)


def queue_step(
    step: str, config: str, source: str, *, via: Celery | None = None, at: str | None = None
) -> str | None:
    """Queue one step of ``source`` (sync, plan, send, notes), unless the same waits in
    the queue already: a burst of a thousand webhooks for one organisation is one sync.
    The task's id when this call queued it."""
    celery = via or app
    client = _redis(redis_url(celery.conf.broker_url))
    pending = PENDING.format(step=step, source=source, config=config)
    if not client.set(pending, "1", nx=True, ex=REQUEUE_AFTER):
        return None
    try:
        return str(celery.send_task(STEPS[step], args=(config, source, at)).id)
    except Exception:
        client.delete(pending)  # not queued: the next ask tries again
        raise


def queue_sync(config: str, source: str, *, via: Celery | None = None) -> str | None:
    """Queue a sync of ``source`` (a webhook named its records): see :func:`queue_step`."""
    return queue_step("sync", config, source, via=via)


def _step(step: str) -> Any:
    def task_of_step(task: Task, config: str, source: str, at: str | None = None) -> dict[str, Any]:
        with _about(task, config, source):
            return organisation_step(task, step, config, source, at)

    task_of_step.__name__ = f"{step}_organisation"
    task_of_step.__doc__ = f"The {step} step of one organisation (:func:`organisation_step`)."
    return task_of_step


def organisation_step(
    task: Task, step: str, config: str, source: str, at: str | None = None
) -> dict[str, Any]:
    """One step of the organisation ``source`` of the workspace ``config``: its sync (a
    webhook's), its plan (read only), a send of what is due from the stored copy, or the
    notes left to write. Every step but the plan under the organisation's lease; a busy
    organisation's step is queued again a minute later, one that meets a call limit for
    when the limit returns."""
    from plugin.app.cli.base import open_workspaces

    now = datetime.fromisoformat(at) if at else datetime.now(UTC)
    pending = PENDING.format(step=step, source=source, config=config)
    found = [k for k in open_workspaces(config) if k.source_id == source]
    if not found:
        raise KindlyError(f"{config} no longer connects the organisation {source}")
    (kindly,) = found
    done: dict[str, Any] = {"organisation": source, "step": step}
    try:
        if step == "plan":
            _redis(redis_url(task.app.conf.broker_url)).delete(pending)
            plan = kindly.plan(now)
            return done | {
                "reminders": len(plan.reminders),
                "appointments": len(plan.appointments),
                "skips": len(plan.skips),
            }
        with kindly.holding() as lease:
            # From now on asking for this step queues another (a webhook's records may
            # come after this read); while the lease was busy, this one stayed pending.
            _redis(redis_url(task.app.conf.broker_url)).delete(pending)
            if step == "sync":
                return done | {"invoices": len(kindly.sync(now).invoices)}
            if step == "send":
                result = kindly.send(kindly.plan(now), now, lease=lease)
            else:
                result = kindly.write_notes(now)
        return done | {
            "sent": len(result.sent),
            "deferred": len(result.deferred),
            "failed": len(result.failed),
            "unconfirmed": len(result.unconfirmed),
            "notes_written": result.notes_written,
            "notes_pending": len(result.notes_pending),
        }
    except BusyError:
        raise task.retry(countdown=BUSY_RETRY) from None
    except RetriableError as exc:
        if not exc.later:
            raise
        raise task.retry(countdown=max(1.0, exc.retry_after or BUSY_RETRY)) from None
    finally:
        kindly.store.close()


def web_sync(config: str, source: str, started: str) -> None:
    """The web app's "Sync now", run by a worker: progress and outcome in the store, where
    the page that polls reads them (plugin/app/web/syncing.py)."""
    from plugin.app.web.syncing import sync_in_worker

    sync_in_worker(config, source, started)


def queue_web_sync(via: Celery | None = None) -> Any:
    """What `kindly web --queue` gives the web app: queue a "Sync now"; the task's id."""

    def queue(config: str, source: str, started: str) -> str:
        return str((via or app).send_task("kindly.web_sync", args=(config, source, started)).id)

    return queue


def status(configs: Sequence[str], now: datetime, broker: str | None = None) -> dict[str, Any]:
    """What `kindly status` shows: each organisation's last run (when, what came of it),
    its next tick, the runs that failed in the last week, and the queue's depth."""
    from plugin.app.cli.base import open_workspaces

    organisations: list[dict[str, Any]] = []
    for config in workspace_files(configs):
        workspaces = open_workspaces(config)
        try:
            organisations += [_status_of(kindly, config, now, broker) for kindly in workspaces]
        finally:
            if workspaces:
                workspaces[0].store.close()
    return {"queued": _queue_depth(broker), "organisations": organisations}


def _status_of(kindly: Kindly, config: str, now: datetime, broker: str | None) -> dict[str, Any]:
    from plugin.core.schedule import next_tick

    source = kindly.source_id
    runs = kindly.store.scheduled(source)
    done = [run for run in runs if run["done_at"]]
    last = max(done, key=lambda run: run["done_at"], default=None)
    zones = [Zone.from_key(str(k)) for k in kindly.store.get_setting(ZONES_SCOPE, source) or []]
    ticks = [t for z in zones if (t := next_tick(z, now)) is not None]
    week = (now - timedelta(days=7)).astimezone(UTC).isoformat()
    failed = [
        {"day": run["day"], "zone": run["zone"], "detail": run["detail"]}
        for run in done
        if str(run["detail"] or "").startswith(("failed", "deferred"))
        or "stopped:" in str(run["detail"] or "")
        if run["done_at"] >= week
    ]
    return {
        "workspace": config,
        "organisation": source,
        "location": kindly.source.location,
        "last_run": last["done_at"] if last else None,
        "last_result": last["detail"] if last else None,
        "next_run": min(t.at for t in ticks).isoformat() if ticks else None,
        "waiting": sum(1 for run in runs if not run["done_at"]),
        "failed_this_week": failed,
        "budgets": _budgets(kindly, broker),
    }


def _budgets(kindly: Kindly, broker: str | None) -> list[dict[str, Any]]:
    """The platform's limits shared by the workers, and how much of each the workers used
    in its window now (from Redis; empty when it cannot be asked)."""
    rules: list[tuple[str, int, float]] = getattr(kindly.source, "limit_rules", list)()
    if not rules or not broker:
        return []
    try:
        client = _redis(redis_url(broker))
        seconds, micros = client.time()
        now_ms = seconds * 1000 + micros // 1000
        return [
            {
                "limit": f"{calls} in {window:g} s",
                "used": int(client.zcount(key, now_ms - int(window * 1000), "+inf")),
                "calls": calls,
                "seconds": f"{window:g}",
            }
            for key, calls, window in rules
        ]
    except Exception:  # an unreachable broker: no figures
        return []


def _queue_depth(broker: str | None) -> int | None:
    """Runs waiting in the broker's queue (Redis or RabbitMQ); None when it cannot be
    asked."""
    if not broker:
        return None
    if broker.startswith(("redis://", "rediss://")):
        try:
            return int(_redis(broker).llen(QUEUE))
        except Exception:  # an unreachable broker is shown as unknown
            return None
    from kombu.connection import Connection

    try:
        opened: Any = Connection(broker, connect_timeout=5)  # type: ignore[no-untyped-call]
        with opened as connection:
            declared = connection.default_channel.queue_declare(queue=QUEUE, passive=True)
            return int(declared.message_count)
    except Exception:  # an unreachable broker, or a queue no worker declared yet
        return None


app = make_app(os.environ.get(BROKER_VARIABLE, DEFAULT_BROKER))
