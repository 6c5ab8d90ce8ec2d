"""Build the plugin manifest (``manifest.json``) from the code, so the two cannot drift.

The host accounting tool reads ``manifest.json`` to list Kindly, its connectors (with
their OAuth scopes and webhook paths), its commands and the JSON Schema of its settings.
Everything in it comes from here: the version from :mod:`plugin`, the connectors from
their class attributes, the commands from the CLI, the settings schema from
``plugin/config/settings.schema.json`` with each connector's section. A test checks
the committed file equals
:func:`build_manifest`; after a change, regenerate it with::

    python -m plugin.app.manifest --write
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["HOST_COMMANDS", "MANIFEST_SCHEMA_PATH", "build_manifest", "manifest_text"]

MANIFEST_SCHEMA_PATH = Path(__file__).parent / "manifest.schema.json"
#: Commands the host may offer its users; init and demo are for the terminal only.
HOST_COMMANDS = ("connect", "sync", "plan", "send", "run", "history")


def build_manifest() -> dict[str, Any]:
    from integrations.registry import connector_classes
    from plugin import __version__
    from plugin.app.cli import cli
    from plugin.app.wiring import settings_schema
    from plugin.core.model import LANGUAGES

    connectors = [
        {
            "name": connector.name,
            "kind": str(connector.kind),
            "title": connector.title,
            "auth": connector.auth,
            "oauth_scopes": list(connector.oauth_scopes),
            "webhook_path": connector.webhook.path if connector.webhook else None,
            "capabilities": sorted(str(c) for c in connector.capabilities),
        }
        for connector in connector_classes()
    ]
    commands = []
    for name in HOST_COMMANDS:
        command = cli.commands[name]
        commands.append(
            {
                "name": name,
                "description": command.get_short_help_str(limit=200),
                "invoke": ["kindly", name],
            }
        )
    return {
        "$schema": "plugin/app/manifest.schema.json",
        "manifest_version": 1,
        "id": "kindly-reminders",
        "name": "Kindly",
        "version": __version__,
        "description": (
            "Tactful payment reminders: decides which invoices need a reminder, writes it in "
            "the client's language and tone, sends it, and notes it on the invoice in your "
            "accounting tool."
        ),
        "publisher": {
            "name": "Kindly",
            "url": "https://kindly.example",
            "email": "support@kindly.example",
        },
        "entry_point": {"command": "kindly", "python_requires": ">=3.11"},
        "languages": list(LANGUAGES),
        "connectors": connectors,
        "commands": commands,
        "settings_schema": settings_schema(),
    }


def manifest_text() -> str:
    return json.dumps(build_manifest(), ensure_ascii=False, indent=2) + "\n"


CONNECTORS_DOC = "docs/connectors.md"


def connectors_doc() -> str:
    """docs/connectors.md: every connector and what it can do, from the classes."""
    from integrations.base import Capability
    from integrations.registry import connector_classes

    classes = connector_classes()
    lines = [
        "# Connectors",
        "",
        "Generated from the connector classes by `make manifest`; a test fails when it",
        "drifts. How to add one: [adding-a-connector.md](adding-a-connector.md).",
        "",
        "| connector | kind | title | sign-in | settings in | webhook | secrets from |",
        "|---|---|---|---|---|---|---|",
    ]
    for cls in classes:
        section = f"`[{cls.section()}]`"
        if cls.section() != cls.name:
            section += f' ({"type" if cls.section() == "calendar" else "gateway"} = "{cls.name}")'
        secrets = ", ".join(f"`{name}`" for name in cls.secret_variables) or "-"
        webhook = f"`{cls.webhook.path}` (`{cls.webhook.key_variable}`)" if cls.webhook else "-"
        lines.append(
            f"| `{cls.name}` | {cls.kind} | {cls.title} | {cls.auth} | {section} | {webhook} "
            f"| {secrets} |"
        )
    lines += [
        "",
        "## Capabilities",
        "",
        "A capability a connector lacks is *unsupported*: Kindly does without it (no link, no",
        "PDF, no note) rather than pretend.",
        "",
        "| connector | " + " | ".join(c.label for c in Capability) + " |",
        "|---|" + "---|" * len(Capability),
    ]
    for cls in classes:
        marks = " | ".join("yes" if c in cls.capabilities else "-" for c in Capability)
        lines.append(f"| `{cls.name}` | {marks} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="write manifest.json in this folder")
    args = parser.parse_args()
    if args.write:
        Path("manifest.json").write_text(manifest_text(), encoding="utf-8")
        Path(CONNECTORS_DOC).write_text(connectors_doc(), encoding="utf-8")
    else:
        print(manifest_text(), end="")


if __name__ == "__main__":
    main()
