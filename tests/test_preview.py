"""`kindly preview` shows what `kindly send` sends: message by message, over the demo's weeks."""

from __future__ import annotations

import email
import json
from dataclasses import replace
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from plugin.app.cli import cli
from plugin.config.settings import Settings
from plugin.core.model import LedgerSnapshot
from plugin.core.planning import plan_reminders, preview_reminders
from tests.conftest import DEMO_NOW

#: Each after the sends of the ones before: the first reminders (a Sunday, the demo sends at
#: any hour), first reminders of invoices that fell due since, second reminders, and final
#: notices that claim statutory charges (with a Dutch consumer's 14-day letter).
MOMENTS = (
    DEMO_NOW,
    DEMO_NOW + timedelta(days=9),
    DEMO_NOW + timedelta(days=15),
    DEMO_NOW + timedelta(days=29),
)
STAGES_SENT = {"first", "second", "final"}
COMPARED_HEADERS = ("Subject", "To", "From", "Message-ID", "X-Kindly-Reminder", "Date")

#: A policy with no second stage, for a client set to it.
BRIEF_POLICY = """
[policies.brief]
stages = [
  { name = "first", after = "due", days = 3, business_days = true },
  { name = "final", after = "previous", days = 10, tone = "firm" },
]
"""


class Workspace:
    def __init__(self, demo_workspace: Path) -> None:
        self.runner = CliRunner()
        self.config = demo_workspace / "kindly.toml"
        self.outbox = demo_workspace.parent / "outbox"

    def run(self, *args: str, at: datetime | None = None) -> Result:
        moment = ["--at", at.isoformat()] if at is not None else []
        result = self.runner.invoke(
            cli, ["--config", str(self.config), *args, *moment], env={"COLUMNS": "200"}
        )
        assert result.exit_code == 0, result.output
        return result

    def fails(self, *args: str, at: datetime) -> str:
        result = self.runner.invoke(
            cli, ["--config", str(self.config), *args, "--at", at.isoformat()]
        )
        assert result.exit_code == 1, result.output
        return result.output

    def planned(self, at: datetime) -> list[dict[str, Any]]:
        reminders: list[dict[str, Any]] = json.loads(self.run("plan", "--json", at=at).output)[
            "reminders"
        ]
        return reminders

    def sent_messages(self) -> dict[str, Message]:
        """Every reminder in the outbox by its key (appointment reminders left out)."""
        messages = (
            email.message_from_bytes(path.read_bytes()) for path in self.outbox.glob("*.eml")
        )
        return {_key(message): message for message in messages if _stage(message) in STAGES_SENT}


def _key(message: Message) -> str:
    return str(message["X-Kindly-Reminder"]).split("key=")[1]


def _stage(message: Message) -> str:
    return str(message["X-Kindly-Reminder"]).split(";")[0]


def _parts(message: Message) -> list[tuple[str, bytes]]:
    """The decoded leaves: text, HTML, the QR code; MIME boundaries differ every time."""
    leaves = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        leaves.append((part.get_content_type(), payload))
    return leaves


def test_preview_is_what_send_sends_over_the_weeks(demo_workspace: Path, tmp_path: Path) -> None:
    workspace = Workspace(demo_workspace)
    with workspace.config.open("a", encoding="utf-8") as settings:
        settings.write("\n[charges]\nenabled = true\n")
    workspace.run("sync", at=MOMENTS[0])
    # One reminder per invoice for one client, so a preview must choose among several.
    workspace.run("clients", "set", "C08", "--per-invoice")

    stages_compared: set[str] = set()
    charges_compared = False
    for moment in MOMENTS:
        workspace.run("sync", at=moment)
        planned = workspace.planned(moment)
        assert planned, f"nothing due at {moment}: the moment tests nothing"
        charges_compared |= any(reminder["charges"] for reminder in planned)
        previews: dict[str, Message] = {}
        for reminder in planned:
            client: str = reminder["customer_id"]
            invoice_ids: list[str] = reminder["invoice_ids"]
            several = sum(r["customer_id"] == client for r in planned) > 1
            choice = [arg for i in invoice_ids for arg in ("--invoice", i)] if several else []
            target = tmp_path / f"{moment:%m%d}-{client}-{invoice_ids[0]}.eml"
            shown = workspace.run("preview", client, *choice, "--output", str(target), at=moment)
            # A planned reminder is shown as it is: no word of rules set aside.
            assert shown.output.strip() == f"Wrote {target}"
            preview = email.message_from_bytes(target.read_bytes())
            previews[_key(preview)] = preview
        before = workspace.sent_messages()

        workspace.run("send", at=moment)

        sent = {
            key: message for key, message in workspace.sent_messages().items() if key not in before
        }
        assert len(previews) == len(planned) == len(sent)
        assert previews.keys() == sent.keys()
        for key, message in sent.items():
            preview = previews[key]
            for header in COMPARED_HEADERS:
                assert preview[header] == message[header], (header, key)
            assert _parts(preview) == _parts(message), message["Subject"]
            stages_compared.add(_stage(message))
    assert stages_compared == STAGES_SENT
    assert charges_compared


def test_preview_with_nothing_due_shows_the_next_reminder(
    demo_workspace: Path, tmp_path: Path
) -> None:
    workspace = Workspace(demo_workspace)
    workspace.run("sync", at=DEMO_NOW)
    workspace.run("send", at=DEMO_NOW)
    tomorrow = DEMO_NOW + timedelta(days=1)
    assert not [r for r in workspace.planned(tomorrow) if r["customer_id"] == "C08"]

    target = tmp_path / "next.eml"
    shown = workspace.run("preview", "C08", "--output", str(target), at=tomorrow)
    # Shown as it goes on the day it is due, with that day's dates (review M7).
    said = " ".join(shown.output.split())
    assert "Nothing goes to Müller & Söhne GmbH at 2026-11-23 10:00 UTC (the second" in said
    assert "this is the reminder as it would go on 2026-12-06." in said
    preview = email.message_from_bytes(target.read_bytes())
    assert target.stat().st_mode & 0o777 == 0o600, "a client's details, for its owner only"
    assert _stage(preview) == "second"
    subject = str(make_header(decode_header(preview["Subject"])))
    assert subject.startswith("Zweite Zahlungserinnerung")

    # The key names the invoices and their stages: the one the client then gets.
    later = DEMO_NOW + timedelta(days=15)
    workspace.run("sync", at=later)
    workspace.run("send", at=later)
    assert _key(preview) in workspace.sent_messages()


def test_preview_of_a_paused_client_says_what_holds_it_back(demo_workspace: Path) -> None:
    workspace = Workspace(demo_workspace)
    workspace.run("sync", at=DEMO_NOW)
    shown = workspace.run("preview", "C03", at=DEMO_NOW)
    pause_ends = (DEMO_NOW + timedelta(days=21)).date().isoformat()
    assert f"paused until {pause_ends} (client setting)" in shown.output
    assert "this is the reminder as it would go on" in " ".join(shown.output.split())
    assert "Subject: Herinnering: 3 facturen staan nog open" in shown.output


def test_preview_stages_come_from_the_clients_policy(demo_workspace: Path) -> None:
    workspace = Workspace(demo_workspace)
    with workspace.config.open("a", encoding="utf-8") as settings:
        settings.write(BRIEF_POLICY)
    workspace.run("sync", at=DEMO_NOW)
    workspace.run("clients", "set", "C09", "--policy", "brief")

    unknown = workspace.fails("preview", "C08", "--stage", "reminder", at=DEMO_NOW)
    assert "no stage 'reminder' in the policy of Müller & Söhne GmbH" in unknown
    assert "its stages are first, second, final, handoff" in unknown
    assert "Error:" in unknown and unknown.count("Error:") == 1

    second = workspace.run("preview", "C08", "--stage", "second", at=DEMO_NOW)
    assert "Subject: Zweite Zahlungserinnerung" in second.output
    lacking = workspace.fails("preview", "C09", "--stage", "second", at=DEMO_NOW)
    assert "its stages are first, final" in lacking
    final = workspace.run("preview", "C09", "--stage", "final", at=DEMO_NOW)
    assert "Subject: Letzte Mahnung" in final.output

    handoff = workspace.fails("preview", "C08", "--stage", "handoff", at=DEMO_NOW)
    assert "a task, not a message" in handoff


def test_preview_output_needs_one_reminder(demo_workspace: Path, tmp_path: Path) -> None:
    workspace = Workspace(demo_workspace)
    workspace.run("sync", at=DEMO_NOW)
    workspace.run("clients", "set", "C08", "--per-invoice")
    planned = [r for r in workspace.planned(DEMO_NOW) if r["customer_id"] == "C08"]
    assert len(planned) == 3

    refused = workspace.fails("preview", "C08", "--output", str(tmp_path / "x.eml"), at=DEMO_NOW)
    assert "Müller & Söhne GmbH has 3 reminders and --output writes one" in refused
    assert not (tmp_path / "x.eml").exists()
    shown = workspace.run("preview", "C08", at=DEMO_NOW)
    for reminder in planned:
        for number in reminder["invoices"]:
            assert f"{number} (first, email)" in shown.output
    assert shown.output.count("Subject: ") == 3


def test_preview_reminders_is_the_plans_reminder_when_one_is_due(
    demo_snapshot: LedgerSnapshot, demo_settings: Settings
) -> None:
    plan = plan_reminders(demo_snapshot, demo_settings, [], now=DEMO_NOW, source="demo")
    assert len(plan.reminders) > 5
    for planned in plan.reminders:
        (preview,) = preview_reminders(
            demo_snapshot,
            demo_settings,
            [],
            now=DEMO_NOW,
            source="demo",
            client_id=planned.customer.id,
        )
        assert preview.why[0].code == "preview"
        assert preview.why[1:] == planned.why
        assert replace(preview, why=()) == replace(planned, why=())


def test_preview_reminders_names_what_it_cannot_remind(
    demo_snapshot: LedgerSnapshot, demo_settings: Settings
) -> None:
    invoices = [i for i in demo_snapshot.invoices if i.customer_id == "C05"]
    (disputed,) = [i for i in invoices if i.disputed]
    (paid,) = [i for i in invoices if not i.is_open]

    def preview(*invoice_ids: str, stage: str | None = None) -> None:
        preview_reminders(
            demo_snapshot,
            demo_settings,
            [],
            now=DEMO_NOW,
            source="demo",
            client_id="C05",
            invoice_ids=invoice_ids,
            stage=stage,
        )

    with pytest.raises(ValueError, match=f"no reminder for {disputed.number}: the client disputes"):
        preview(disputed.id, stage="first")
    with pytest.raises(ValueError, match=f"no reminder for {paid.number}: nothing is owed"):
        preview(paid.id)
    with pytest.raises(ValueError, match="is not Boulangerie Martin's"):
        preview(next(i.id for i in demo_snapshot.invoices if i.customer_id == "C08"))
    with pytest.raises(ValueError, match=r"no stage 'courtesy'.*its stages are first, second"):
        preview(stage="courtesy")


def test_a_note_before_the_due_date_is_not_previewed_for_an_invoice_past_it(
    demo_snapshot: LedgerSnapshot, demo_settings: Settings
) -> None:
    """Review M7: `--stage courtesy` wrote "the invoices below fall due soon" of invoices
    overdue since October."""
    policies = {
        name: replace(
            policy,
            stages=tuple(
                replace(stage, enabled=True) if stage.name == "courtesy" else stage
                for stage in policy.stages
            ),
        )
        for name, policy in demo_settings.policies.items()
    }
    settings = replace(demo_settings, policies=policies)
    overdue = next(
        i
        for i in demo_snapshot.invoices
        if i.customer_id == "C01" and i.is_open and i.due_date < DEMO_NOW.date()
    )
    with pytest.raises(ValueError, match=f"invoice {overdue.number} fell due on .* comes before"):
        preview_reminders(
            demo_snapshot,
            settings,
            [],
            now=DEMO_NOW,
            source="demo",
            client_id="C01",
            invoice_ids=[overdue.id],
            stage="courtesy",
        )
