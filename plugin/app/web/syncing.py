"""Sync now, with live progress: the sync runs beside the request that asked for it, and
tells how far it got through the store, so that whichever process serves the page that
polls can answer.

With ``KINDLY_QUEUE`` set (`kindly web --queue`), the sync is handed to the workers
instead, which report the same way.

One sync per organisation at a time: starting one is claimed in the store (a second
press, a second tab, a second app process finds it running and follows it). A sync whose
process died stops counting as running once it has said nothing for ``STALE``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask

from plugin.app.stored_settings import place_key
from plugin.errors import KindlyError
from plugin.state.store import Store

__all__ = ["SCOPE", "start_sync", "sync_in_worker", "sync_status"]

log = logging.getLogger(__name__)

#: Where each organisation's sync says how it goes, by source id.
SCOPE = "web.sync"
STALE = timedelta(minutes=10)
#: How often a running sync writes how far it got: often enough to look alive.
EVERY_SECONDS = 0.25


def sync_status(store: Store, source_id: str) -> dict[str, Any]:
    """The organisation's last or running sync: ``state`` is "never", "running", "done"
    or "failed", with what it read, its summary or its error in plain words."""
    status = store.get_setting(SCOPE, source_id)
    return status if isinstance(status, dict) else {"state": "never"}


def start_sync(app: Flask, store: Store, source_id: str) -> bool:
    """Start the organisation's sync beside this request; False when one is running."""
    clock: Callable[[], datetime] = app.config["KINDLY_CLOCK"]
    now = clock()
    with store.exclusive(f"{SCOPE}:{source_id}") as transaction:
        current = transaction.get_setting(SCOPE, source_id)
        if (
            isinstance(current, dict)
            and current.get("state") == "running"
            and datetime.fromisoformat(current["updated"]) > now - STALE
        ):
            return False
        transaction.set_setting(SCOPE, source_id, _running(now, now, "", 0), now)
    config = place_key(app.config["KINDLY_CONFIG"])
    queue = app.config.get("KINDLY_QUEUE")
    if queue is not None:
        # The workers sync (kindly web --queue); they write how it goes in the same place.
        app.extensions.setdefault("kindly.queued", []).append(
            queue(config, source_id, now.isoformat())
        )
        return True
    worker = threading.Thread(
        target=_sync, args=(config, source_id, clock, now), name=f"sync {source_id}", daemon=True
    )
    app.extensions.setdefault("kindly.syncs", []).append(worker)
    worker.start()
    return True


def _running(started: datetime, now: datetime, resource: str, records: int) -> dict[str, Any]:
    return {
        "state": "running",
        "started": started.isoformat(),
        "updated": now.isoformat(),
        "resource": resource,
        "records": records,
    }


def sync_in_worker(config: str, source_id: str, started: str) -> None:
    """The queued sync a worker runs (kindly.web_sync), on the real clock."""
    from datetime import UTC

    _sync(config, source_id, lambda: datetime.now(UTC), datetime.fromisoformat(started))


def _sync(config: str, source_id: str, clock: Callable[[], datetime], started: datetime) -> None:
    """The sync itself, on its own connections to the store and the platform."""
    from plugin.app.cli.base import open_workspaces

    opened = []
    store: Store | None = None
    try:
        opened = open_workspaces(config)
        store = opened[0].store
        kindly = next(k for k in opened if k.source_id == source_id)
        written = [time.monotonic()]

        def progress(resource: str, records: int) -> None:
            if time.monotonic() - written[0] < EVERY_SECONDS:
                return
            written[0] = time.monotonic()
            assert store is not None
            now = clock()
            store.set_setting(SCOPE, source_id, _running(started, now, resource, records), now)

        kindly.source.progress = progress
        snapshot = kindly.sync(clock())
        outcome: dict[str, Any] = {
            "state": "done",
            "clients": len(snapshot.customers),
            "invoices": len(snapshot.invoices),
            "left_out": len(kindly.warnings),
        }
    except KindlyError as exc:
        outcome = {"state": "failed", "error": str(exc), "hint": exc.hint or ""}
    except Exception:
        log.exception("the sync of %s failed", source_id)
        outcome = {"state": "failed", "error": "an unexpected error; the server's log has it"}
    now = clock()
    outcome |= {"started": started.isoformat(), "updated": now.isoformat()}
    try:
        if store is None:
            from plugin.app.wiring import open_settings_and_store

            store = open_settings_and_store(config)[1]
        store.set_setting(SCOPE, source_id, outcome, now)
    finally:
        if store is not None:
            store.close()
