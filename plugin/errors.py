"""Errors a user can act on. Each says what went wrong, where, and what to do next.

The CLI prints ``str(error)`` and, when there is one, ``error.hint`` on one line each; it
shows a traceback only with ``--debug``. Messages never carry secrets.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BusyError",
    "ConfigError",
    "KindlyError",
    "LedgerError",
    "PlatformRemindersOn",
    "StoreError",
    "TemplateProblem",
]


class KindlyError(Exception):
    """Base class for errors the CLI reports without a traceback."""

    hint: str | None = None
    #: The process's exit status when the CLI reports it (75: try again later, sysexits).
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(KindlyError):
    """The settings file (kindly.toml) or a command-line setting is wrong."""

    hint = "Fix the setting named above; `kindly init` writes a commented example."


class TemplateProblem(KindlyError):
    """One of the user's own templates failed while writing one message: names the
    template and line. Only that message fails; the others are written."""

    hint = (
        "Fix that template in your [templates] folder, or remove it to use Kindly's own; "
        "`kindly preview CLIENT` tries it."
    )


class StoreError(KindlyError):
    """Kindly's own state database cannot be opened or migrated."""


class BusyError(StoreError):
    """Another Kindly holds what this one needs (a run lease): nothing was done; try later."""

    exit_code = 75


class LedgerError(KindlyError):
    """A record in a ledger file is malformed: names the file, the record and the field."""

    hint = "Correct that record and run the command again; nothing was changed."

    def __init__(
        self,
        file: Path | str,
        message: str,
        *,
        record: str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file)
        self.record = record
        self.field = field
        self.reason = message
        if record is None:
            # The file as a whole: not one record to correct.
            self.hint = "Correct that file and run the command again; nothing was changed."
        where = self.file
        if record is not None:
            where += f", {record}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class PlatformRemindersOn(KindlyError):
    """The accounting system sends payment reminders itself, and the user has not chosen
    to send Kindly's beside them: nothing is sent, so that no client is chased twice."""

    hint = (
        "Turn them off where the message says, then sync again; or set [delivery] "
        "beside_platform_reminders = true in kindly.toml to send both."
    )
