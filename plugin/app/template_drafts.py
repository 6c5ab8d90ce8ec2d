"""The user's own versions of Kindly's templates, as the settings page edits them: a draft
previewed on a real reminder before it is kept, kept in the template folder, or removed so
that Kindly's own applies again.

A draft is rendered as the user's templates always are: in the sandbox's worker, with the
[templates] budget (:mod:`plugin.compose.sandbox`), from a folder of its own that holds the
user's other templates and the draft. Nothing is kept until the draft passes the same check
`kindly` runs on the folder at start (:func:`plugin.compose.render.check_overrides`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from plugin.config.settings import Settings
from plugin.errors import ConfigError

__all__ = ["folder_for", "keep", "known", "remove", "text_of", "with_draft"]

#: The templates a user may replace here: the words per language, and the layouts of the
#: e-mail, the SMS, the letter and the note written back.
EDITABLE_FOLDERS = ("lang", "email", "sms", "letter", "notes")
#: The folder made for the user's templates when kindly.toml names none.
DEFAULT_FOLDER = "templates"


def _kindly_templates() -> Path:
    from plugin.compose.templates import templates_dir

    return Path(templates_dir())


def known() -> list[str]:
    """The names of the templates that may be replaced, as `lang/nl.j2`."""
    root = _kindly_templates()
    return sorted(
        path.relative_to(root).as_posix()
        for folder in EDITABLE_FOLDERS
        for path in (root / folder).glob("*.j2")
    )


def _checked_name(name: str) -> str:
    if name not in known():
        raise ConfigError(f"{name!r} is not one of Kindly's templates")
    return name


def text_of(settings: Settings, name: str) -> tuple[str, bool]:
    """The template's text as it is used now, and whether it is the user's own."""
    _checked_name(name)
    if settings.templates is not None and (settings.templates / name).is_file():
        return (settings.templates / name).read_text(encoding="utf-8"), True
    return (_kindly_templates() / name).read_text(encoding="utf-8"), False


def folder_for(settings: Settings) -> Path:
    """Where the user's templates are kept: kindly.toml's folder, or one beside it."""
    if settings.templates is not None:
        return settings.templates
    base = settings.source.parent if settings.source else Path.cwd()
    return base / DEFAULT_FOLDER


@contextmanager
def with_draft(settings: Settings, name: str, text: str) -> Iterator[Settings]:
    """Settings whose templates are the user's, with ``text`` in place of ``name``; the
    draft's folder and its worker are gone afterwards."""
    from plugin.compose.sandbox import close_worker

    _checked_name(name)
    with tempfile.TemporaryDirectory(prefix="kindly-draft-") as scratch:
        folder = Path(scratch) / "templates"
        if settings.templates is not None and settings.templates.is_dir():
            shutil.copytree(settings.templates, folder)
        else:
            folder.mkdir()
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
        drafted = replace(settings, templates=folder)
        try:
            yield drafted
        finally:
            close_worker(folder, settings.template_budget)


def keep(settings: Settings, name: str, text: str) -> Path:
    """Keep ``text`` as the user's version of ``name`` in their template folder, once the
    folder with it passes the start-up check; otherwise the folder stays as it was."""
    from plugin.compose.render import check_overrides

    _checked_name(name)
    folder = folder_for(settings)
    target = folder / name
    before = target.read_bytes() if target.is_file() else None
    target.parent.mkdir(parents=True, exist_ok=True)
    _write(target, text)
    try:
        check_overrides(replace(settings, templates=folder))
    except ConfigError:
        if before is None:
            target.unlink(missing_ok=True)
        else:
            _write(target, before.decode("utf-8"))
        raise
    return target


def remove(settings: Settings, name: str) -> bool:
    """Remove the user's version of ``name``: Kindly's own applies again."""
    _checked_name(name)
    if settings.templates is None:
        return False
    target = settings.templates / name
    if not target.is_file():
        return False
    target.unlink()
    return True


def _write(target: Path, text: str) -> None:
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        with temporary.open("x", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
