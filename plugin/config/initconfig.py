"""Write a commented kindly.toml from the answers `kindly init` collected.

The file is checked with the same code that reads it before it is written, so `init` never
leaves a settings file that the next command would reject.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from plugin.config.settings import parse_settings

__all__ = ["render_settings_file", "write_settings_file"]


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string: same quotes, same escapes.
    return json.dumps(value, ensure_ascii=False)


def _optional(key: str, value: str, comment: str) -> str:
    line = f"{key} = {_toml_string(value)}" if value else f'# {key} = ""'
    return f"{line:<44}# {comment}"


def render_settings_file(answers: Mapping[str, str]) -> str:
    address = [line.strip() for line in answers.get("address", "").split("|") if line.strip()]
    iban = answers.get("iban", "").strip().upper()
    bic = answers.get("bic", "").strip().upper()
    lines = [
        "# Kindly settings. Every setting is explained in docs/configuration.md.",
        "",
        'connector = "ledger"                        # where invoices come from',
        "",
        "[ledger]",
        f"path = {_toml_string(answers.get('ledger') or 'ledger')}"
        "                             # folder of JSON/CSV files, relative to this file",
        "",
        "[store]",
        '# url = "postgresql+psycopg://kindly@localhost/kindly"',
        "# (without a url: SQLite in your data folder)",
        "",
        "[delivery]",
        'outbox = "outbox"                           # reminders are written here as .eml files',
        "",
        "# The contact block at the foot of every reminder (R8).",
        "[company]",
        f"name = {_toml_string(answers['company_name'])}",
        f"email = {_toml_string(answers['email'])}",
        _optional("reply_to", answers.get("reply_to", ""), "where replies go, if not `email`"),
        _optional(
            "website", _web_address(answers.get("website", "")), "shown in the contact block"
        ),
        _optional("phone", answers.get("phone", ""), "shown in the contact block"),
        _optional("fax", answers.get("fax", ""), "shown in the contact block"),
        f"address = [{', '.join(_toml_string(line) for line in address)}]",
        f"country = {_toml_string(answers.get('country', 'NL').strip().upper())}",
        '# signature = "Anna de Boer, accounts"     # who signs the reminders',
        "",
        "# How clients can pay you (R29).",
        "[bank]",
        _optional("account_holder", answers.get("account_holder", ""), "name on the account"),
        _optional("iban", iban, "checked for typos"),
        _optional("bic", bic, ""),
        "",
        "[policy]",
        "first_reminder_after_days = 3               # business days after the due date",
        'tone = "friendly"                           # friendly, neutral or firm',
        'channels = ["email"]',
        '# minimum = { EUR = "5.00" }                # skip smaller amounts, per currency',
        "",
        "# Per-client settings, keyed by the client's id in your ledger:",
        "# [clients.C042]",
        '# tone = "firm"',
        '# language = "nl"                           # en, nl, fr, nb, de or vi',
        "# pause_until = 2026-12-01",
        '# pause_reason = "payment plan agreed"',
        "# excluded = false",
        '# kind = "consumer"                         # business or consumer',
        "",
    ]
    return "\n".join(lines)


def write_settings_file(
    target: Path,
    answers: Mapping[str, str],
    schema_for: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> None:
    """Write the file once it reads back; ``schema_for`` gives the whole schema for its
    data, connectors' sections included (the app's ``settings_schema``)."""
    text = render_settings_file(answers)
    data = tomllib.loads(text)
    parse_settings(data, source=target.resolve(), schema=schema_for(data) if schema_for else None)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, target)


def _web_address(answer: str) -> str:
    """The website as kindly.toml takes it: "noordlicht.nl" is https://noordlicht.nl."""
    answer = answer.strip()
    if answer and "://" not in answer:
        return f"https://{answer}"
    return answer
