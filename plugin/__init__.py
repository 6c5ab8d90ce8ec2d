"""Kindly: tactful payment reminders for accounting software.

The shared core lives here: the model, planning, rendering, state, delivery and the CLI.
Connectors to accounting platforms and calendars live in the sibling package
``integrations``; the core never imports them except where the CLI wires a run together.
"""

__version__ = "0.1.0"
