"""Crash points for the crash tests, and nothing else.

``KINDLY_CRASH_AT="point:N"`` makes the process kill itself (SIGKILL: no clean-up, no
finally blocks) the Nth time it passes ``point``. The send loop marks the moments that
matter for exactly-once delivery: ``intent`` (logged, not sent), ``handover`` (the SMTP
server has the whole message, its answer not read), ``delivered`` (accepted, not yet
logged), ``marked`` (logged as sent, no note yet) and ``note`` (the note written, not yet
logged). Unset, a crash point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["crash_point"]

_passed: dict[str, int] = {}
#: Passed by several threads at once where a send uses more SMTP connections.
_counting = threading.Lock()


def crash_point(name: str) -> None:
    wanted = os.environ.get("KINDLY_CRASH_AT")
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point != name:
        return
    with _counting:
        _passed[name] = _passed.get(name, 0) + 1
        reached = _passed[name] == int(count or 1)
    if reached:
        os.kill(os.getpid(), signal.SIGKILL)
