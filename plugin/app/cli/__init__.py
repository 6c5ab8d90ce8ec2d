"""The `kindly` command: the group in :mod:`.base`, the commands in one module per topic."""

from __future__ import annotations

from plugin.app.cli import (
    charges,
    clients,
    pipeline,
    preview,
    report,
    settings,
    setup,
    web,
    webhooks,
    workers,
)
from plugin.app.cli.base import cli, main, open_workspace, open_workspaces

__all__ = [
    "charges",
    "cli",
    "clients",
    "main",
    "open_workspace",
    "open_workspaces",
    "pipeline",
    "preview",
    "report",
    "settings",
    "setup",
    "web",
    "webhooks",
    "workers",
]
