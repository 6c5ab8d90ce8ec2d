"""A user's own templates, run in a separate process with a time, memory and output budget.

Jinja2's sandbox keeps a template from reaching anything it is not given, but not from
looping a hundred thousand times a hundred thousand times, growing a string to gigabytes,
or recursing until the interpreter gives up; and Jinja2 folds constant expressions while it
compiles, so even checking a template runs some of it. Kindly therefore compiles and
renders a user's templates only in a worker process:

- it gets no secret: its environment is cut down to what Python needs to start;
- it may take ``[templates] time_limit`` seconds per message: a timer in the worker stops
  the template at the line it is running; should the template be stuck in one long step,
  the parent stops the worker a little later;
- its memory is capped (``memory_limit`` beyond what the worker needs to run);
- a template may write ``output_limit`` characters.

A template over budget, or failing in any other way, raises :class:`TemplateProblem` for
the one message it was writing, naming the template file and line; the run goes on with
the next message (and a fresh worker, when the budget was what stopped it).

Parent and worker exchange pickled frames over the worker's stdin and stdout. The worker
is started by the parent with Kindly's own code and answers only it.
"""

from __future__ import annotations

import atexit
import os
import pickle
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

from plugin.compose.templates import FIX_TEMPLATE
from plugin.config.settings import TemplateBudget
from plugin.errors import ConfigError, TemplateProblem

__all__ = ["UserTemplates", "close_worker", "user_templates"]

#: Seconds the parent waits beyond the time limit before it stops a worker whose own timer
#: could not interrupt the template (one long step in C, such as a huge power).
GRACE = 2.0
#: Seconds a new worker may take to start (importing Jinja2 and Kindly's code).
STARTUP = 60.0
#: What the worker's environment keeps of the parent's: enough to start Python from the
#: same installation and find the template cache; no credentials.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "XDG_CACHE_HOME", "VIRTUAL_ENV",
              "PYTHONPATH", "SYSTEMROOT", "TMPDIR")  # fmt: skip


class _WorkerGone(Exception):
    """The worker ended or stopped answering."""


class UserTemplates:
    """The parent's side: one worker for one folder and budget, started when first needed,
    and again after a template exhausted its budget. Safe to share between threads."""

    def __init__(self, folder: Path, budget: TemplateBudget) -> None:
        self.folder = folder
        self.budget = budget
        self._lock = threading.Lock()
        self._worker: subprocess.Popen[bytes] | None = None
        #: The process that started the worker: a forked child starts its own.
        self._owner = 0

    def check(self) -> list[str]:
        """Check the folder (see :func:`plugin.compose.templates.check_folder`).

        Raises:
            ConfigError: names the file and line that is wrong.
        """
        return list(self._ask(("check",), f"{self.folder}"))

    def render(self, context: dict[str, Any], names: Sequence[str]) -> list[str]:
        """Render ``names`` with ``context`` (see :func:`render_with`).

        Raises:
            TemplateProblem: a template failed or went over budget; names file and line.
        """
        return list(self._ask(("render", context, tuple(names)), ", ".join(names)))

    def close(self) -> None:
        with self._lock:
            self._end_worker()

    def _ask(self, request: tuple[Any, ...], what: str) -> Any:
        with self._lock:
            worker = self._running_worker()
            assert worker.stdin is not None and worker.stdout is not None
            deadline = time.monotonic() + self.budget.time_limit + GRACE
            try:
                _write_frame(worker.stdin, request)
                kind, message, hint, spent = _read_frame(worker.stdout, deadline)
            except (_WorkerGone, OSError):
                ended = worker.poll()
                self._end_worker()
                if ended is None:
                    message = (
                        f"{what}: took longer than {self.budget.time_limit:g} s "
                        "([templates] time_limit) and was stopped"
                    )
                else:
                    message = (
                        f"{what}: the process running your templates ended (exit status "
                        f"{ended}) while writing this message"
                    )
                if request[0] == "check":
                    raise ConfigError(message, hint=FIX_TEMPLATE) from None
                raise TemplateProblem(message) from None
            if spent:  # what the template left behind is not worth keeping
                self._end_worker()
        if kind == "ok":
            return message
        if kind == "config":
            raise ConfigError(message, hint=hint or FIX_TEMPLATE)
        raise TemplateProblem(message)

    def _running_worker(self) -> subprocess.Popen[bytes]:
        worker = self._worker
        if worker is not None and self._owner == os.getpid() and worker.poll() is None:
            return worker
        self._end_worker()
        environment = {name: os.environ[name] for name in _INHERITED if name in os.environ}
        # -P: not the current folder on the module path, whatever it holds.
        worker = subprocess.Popen(
            [sys.executable, "-P", "-m", "plugin.compose.sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
        )
        assert worker.stdin is not None and worker.stdout is not None
        try:
            _write_frame(worker.stdin, (str(self.folder), self.budget))
            ready = _read_frame(worker.stdout, time.monotonic() + STARTUP)
        except (_WorkerGone, OSError):
            ready = None
        if ready != ("ready",):
            _stop_worker(worker)
            raise TemplateProblem(
                "the process that runs your own templates did not start",
                hint="Run the command again with --debug to see its error.",
            )
        self._worker, self._owner = worker, os.getpid()
        return worker

    def _end_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None and self._owner == os.getpid():
            _stop_worker(worker)


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.kill()
    for pipe in (worker.stdin, worker.stdout):
        if pipe is not None:
            pipe.close()
    worker.wait()


_workers: dict[tuple[Path, TemplateBudget], UserTemplates] = {}
_workers_lock = threading.Lock()


def user_templates(folder: Path, budget: TemplateBudget) -> UserTemplates:
    """The worker for this folder and budget, shared by everything in this process."""
    with _workers_lock:
        found = _workers.get((folder, budget))
        if found is None:
            # Settings read again with other limits, or tests with many folders: a few
            # workers at most, the oldest stopped.
            while len(_workers) >= 4:
                _workers.pop(next(iter(_workers))).close()
            found = _workers[(folder, budget)] = UserTemplates(folder, budget)
        return found


def close_worker(folder: Path, budget: TemplateBudget) -> None:
    """Stop the worker of a folder that is gone (a draft's), rather than keep it."""
    with _workers_lock:
        found = _workers.pop((folder, budget), None)
    if found is not None:
        found.close()


@atexit.register
def _close_workers() -> None:
    with _workers_lock:
        for worker in _workers.values():
            worker.close()
        _workers.clear()


def _write_frame(pipe: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(len(data).to_bytes(8, "big") + data)
    pipe.flush()


def _read_frame(pipe: IO[bytes], deadline: float | None) -> Any:
    size = int.from_bytes(_read_exactly(pipe, 8, deadline), "big")
    # Only ever between a Kindly process and the worker it started, over their own pipes.
    return pickle.loads(_read_exactly(pipe, size, deadline))  # noqa: S301


def _read_exactly(pipe: IO[bytes], size: int, deadline: float | None) -> bytes:
    chunks = []
    wanted = size
    with selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        while wanted:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise _WorkerGone
            chunk = os.read(pipe.fileno(), min(wanted, 1 << 20))
            if not chunk:
                raise _WorkerGone
            chunks.append(chunk)
            wanted -= len(chunk)
    return b"".join(chunks)


# The worker's side.


class _OutOfTime(BaseException):
    """Raised into the template by the worker's timer. A BaseException, so that no
    ``except Exception`` inside Jinja2 (constant folding, for one) swallows it."""


_armed = False


def _arm(armed: bool) -> None:
    global _armed
    _armed = armed


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if _armed:
        raise _OutOfTime


def _limit_memory(megabytes: int) -> None:
    """Cap the worker's address space at what it uses now plus ``megabytes``."""
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as statm:
            in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        return  # not Linux: the time limit still bounds a template
    cap = in_use + megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _template_line(tb: TracebackType | None) -> str | None:
    """The last template file and line in a traceback: "path, line N"."""
    where = None
    while tb is not None:
        frame = tb.tb_frame
        template = frame.f_globals.get("__jinja_template__")
        if template is not None and template.filename:
            line = template.get_corresponding_lineno(tb.tb_lineno)
            where = f"{template.filename}, line {line}"
        elif frame.f_code.co_filename.endswith(".j2"):
            # A frame Jinja2 rewrote to point at the template itself.
            where = f"{frame.f_code.co_filename}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _describe(exc: BaseException, budget: TemplateBudget, otherwise: str) -> str:
    """What went wrong, after the template file and line (``otherwise`` when unknown)."""
    import jinja2

    from plugin.compose.templates import OutputTooLong

    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        return f"{exc.filename}, line {exc.lineno}: {exc.message}"
    if isinstance(exc, _OutOfTime):
        what = f"took longer than {budget.time_limit:g} s ([templates] time_limit)"
    elif isinstance(exc, MemoryError):
        what = f"needs more than {budget.memory_limit} MB of memory ([templates] memory_limit)"
    elif isinstance(exc, RecursionError):
        what = "calls itself without end (a macro, include or import that never stops)"
    elif isinstance(exc, jinja2.TemplateNotFound):
        what = (
            f"includes or imports {exc.name!r}, which is no template of Kindly's or of "
            "your templates folder"
        )
    elif isinstance(exc, OutputTooLong | jinja2.TemplateError):
        what = str(exc)
    else:
        what = f"{type(exc).__name__}: {exc}"
    where = _template_line(exc.__traceback__)
    return f"{where or otherwise}: {what}"


def _serve(commands: IO[bytes], answers: IO[bytes]) -> None:
    import signal

    from plugin.compose.templates import check_folder, render_with, user_environment

    folder_name, budget = _read_frame(commands, None)
    folder = Path(folder_name)
    environment = user_environment(folder)
    timed = hasattr(signal, "setitimer")
    if timed:
        signal.signal(signal.SIGALRM, _on_alarm)
    _limit_memory(budget.memory_limit)
    _write_frame(answers, ("ready",))
    while True:
        try:
            request = _read_frame(commands, None)
        except _WorkerGone:
            return  # the parent is done
        answer: tuple[str, Any, str | None, bool]
        _arm(True)
        if timed:
            # It fires again every tenth of a second until disarmed: should Jinja2 swallow
            # one interruption, the next stops the template.
            signal.setitimer(signal.ITIMER_REAL, budget.time_limit, 0.1)
        try:
            if request[0] == "check":
                answer = ("ok", check_folder(environment, folder), None, False)
            else:
                _, context, names = request
                answer = (
                    "ok",
                    render_with(environment, context, names, budget.output_limit),
                    None,
                    False,
                )
        except ConfigError as exc:
            _arm(False)
            answer = ("config", str(exc), exc.hint, False)
        except BaseException as exc:  # every failure is this message's alone
            _arm(False)
            spent = isinstance(exc, _OutOfTime | MemoryError | RecursionError)
            if request[0] == "check":
                answer = ("config", _describe(exc, budget, str(folder)), None, spent)
            else:
                answer = ("problem", _describe(exc, budget, ", ".join(request[2])), None, spent)
        finally:
            _arm(False)
            if timed:
                signal.setitimer(signal.ITIMER_REAL, 0)
        _write_frame(answers, answer)


if __name__ == "__main__":
    # Anything the templates' code prints must not mix with the answers.
    channel = sys.stdout.buffer
    sys.stdout = sys.stderr
    _serve(sys.stdin.buffer, channel)
