"""The `kindly` command as a user meets it: real processes, real files, real SQLite."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from integrations.bookkeeping.ledger import NOTES_FILE, LocalLedger
from plugin.app.cli import cli
from plugin.config.settings import load_settings

KINDLY = Path(sys.executable).with_name("kindly")


def kindly(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    environment.pop("KINDLY_CONFIG", None)
    environment.pop("KINDLY_STORE_URL", None)
    return subprocess.run(
        [str(KINDLY), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def read_notes(ledger: Path) -> list[dict[str, Any]]:
    path = ledger / NOTES_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_demo_end_to_end_then_nothing_new(tmp_path: Path) -> None:
    first = kindly("demo", "--workspace", "ws", "--no-serve", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Set up the demo workspace" in first.stdout
    assert "Synced" in first.stdout and "Not reminded:" in first.stdout

    messages = sorted((tmp_path / "outbox").glob("*.eml"))
    notes = read_notes(tmp_path / "ws" / "ledger")
    # Whatever the time of day: two of the demo's appointments are 20 and 22 hours away.
    appointments = [path for path in messages if "-appointment-" in path.name]
    assert len(appointments) == 2
    invoice_reminders = [path for path in messages if path not in appointments]
    assert len(invoice_reminders) >= 8
    assert f"Sent {len(messages)} reminders (2 appointment by email" in first.stdout
    # Notes go on invoices: an appointment reminder has none to go on.
    assert len(notes) == len(invoice_reminders)
    assert len({note["reminder_key"] for note in notes}) == len(notes)
    for path in invoice_reminders:
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for header in ("From", "To", "Subject", "Date", "Message-ID"):
            assert parsed[header], f"{path.name} lacks {header}"
        body = parsed.get_body(preferencelist=("plain",))
        assert body is not None and len(body.get_content()) > 200
        key = parsed["X-Kindly-Reminder"].split("key=")[1]
        assert any(note["reminder_key"] == key for note in notes)
    # The user's own ledger files are never rewritten: only the notes file is added.
    ledger_files = {p.name for p in (tmp_path / "ws" / "ledger").iterdir()}
    assert NOTES_FILE in ledger_files

    before = {p.name: p.read_bytes() for p in messages}
    second = kindly("demo", "--workspace", "ws", "--no-serve", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Sent nothing new" in second.stdout
    assert {p.name: p.read_bytes() for p in (tmp_path / "outbox").glob("*.eml")} == before
    assert len(read_notes(tmp_path / "ws" / "ledger")) == len(notes)

    history = kindly("--config", "ws/kindly.toml", "history", "--json", cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    records = json.loads(history.stdout)
    assert len(records) == len(messages)
    assert {r["status"] for r in records} == {"sent"}
    assert all(r["note_written_at"] for r in records if r["stage"] != "appointment")
    assert [r["stage"] for r in records if not r["note_written_at"]] == ["appointment"] * 2

    reset = kindly("demo", "--workspace", "ws", "--reset", "--no-serve", cwd=tmp_path)
    assert reset.returncode == 0, reset.stderr
    assert "Set up the demo workspace" in reset.stdout
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == len(messages)


def test_reset_refuses_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    precious = tmp_path / "books"
    precious.mkdir()
    (precious / "kindly.toml").write_text("# mine\n", encoding="utf-8")
    result = kindly("demo", "--workspace", str(precious), "--reset", "--no-serve", cwd=tmp_path)
    assert result.returncode == 1
    assert "not a Kindly demo workspace" in result.stderr
    assert (precious / "kindly.toml").exists()


def test_a_bad_record_is_left_out_named_and_the_others_are_served(
    tmp_path: Path, demo_workspace: Path
) -> None:
    """Issue 16's rule: one bad record never stops the other clients' reminders; it is
    named (file, record, field), and the run exits 3 so a cron job can tell."""
    invoices = demo_workspace / "ledger" / "invoices.json"
    data = json.loads(invoices.read_text(encoding="utf-8"))
    data[4]["due_date"] = "2026-02-30"
    invoices.write_text(json.dumps(data), encoding="utf-8")
    config = str(demo_workspace / "kindly.toml")

    result = kindly("--config", config, "run", cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    # One warning, for the bad record alone (its payment goes with it, unmentioned).
    (named,) = " ".join(result.stdout.split()).split("Not read: ")[1:]
    assert "invoices.json" in named and f"record 5 (id {data[4]['id']})" in named
    assert "'due_date'" in named and "(left out)" in named
    sent = list((demo_workspace.parent / "outbox").glob("*.eml"))
    assert len(sent) >= 10, "the other clients' reminders went out"


def test_one_broken_record_of_each_kind_is_named_and_everyone_else_is_served(
    tmp_path: Path, demo_workspace: Path
) -> None:
    """Issue 16, done when: a ledger with one broken record of each kind sends every other
    reminder, names each bad record in sync, plan and the run, and exits non-zero."""
    from tests.conftest import DEMO_NOW

    ledger = demo_workspace / "ledger"

    def spoil(name: str, index: int, **changes: object) -> str:
        path = ledger / f"{name}.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        data[index].update(changes)
        path.write_text(json.dumps(data), encoding="utf-8")
        return str(data[index].get("id", ""))

    spoil("customers", 13, phone="call me maybe")
    spoil("invoices", 4, due_date="2026-02-30")
    spoil("payments", 0, amount="4100.001")
    spoil("credit_notes", 0, total="lots")
    spoil("promises", 0, promised_date="someday")
    spoil("appointments", 1, attendees=[{"name": "M", "email": "not-an-address"}])
    at = ["--at", DEMO_NOW.isoformat()]
    config = str(demo_workspace / "kindly.toml")
    wide = {"COLUMNS": "400"}

    result = kindly("--config", config, "run", *at, cwd=tmp_path, env=wide)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stdout
    named = [line for line in result.stdout.splitlines() if line.startswith("Not read: ")]
    for file, field in [
        ("customers.json", "'phone'"),
        ("invoices.json", "'due_date'"),
        ("payments.json", "'amount'"),
        ("credit_notes.json", "'total'"),
        ("promises.json", "'promised_date'"),
        ("appointments.json", "'attendees.0.email'"),
    ]:
        assert any(file in line and field in line for line in named), (file, named)
    sent = {p.name.split("-")[0] for p in (demo_workspace.parent / "outbox").glob("*.eml")}
    assert len(sent) >= 9, sent

    plan = kindly("--config", config, "plan", *at, cwd=tmp_path, env=wide)
    assert plan.returncode == 3, plan.stdout + plan.stderr
    left_out = [
        line for line in plan.stdout.splitlines() if line.startswith("Not read in the last sync")
    ]
    assert len(left_out) == len(named)
    as_json = kindly("--config", config, "plan", "--json", *at, cwd=tmp_path)
    assert as_json.returncode == 3
    assert len(json.loads(as_json.stdout)["left_out"]) == len(named)


def test_an_unreadable_ledger_file_is_one_clear_line_and_nothing_is_sent(
    tmp_path: Path, demo_workspace: Path
) -> None:
    invoices = demo_workspace / "ledger" / "invoices.json"
    invoices.write_text(invoices.read_text(encoding="utf-8")[:-40], encoding="utf-8")
    config = str(demo_workspace / "kindly.toml")

    result = kindly("--config", config, "run", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    first_line = result.stderr.splitlines()[0]
    assert "invoices.json" in first_line and "not valid JSON" in first_line
    assert "Hint: Correct that file" in result.stderr
    assert not (demo_workspace.parent / "outbox").exists()
    assert not (demo_workspace / "ledger" / NOTES_FILE).exists()

    debug = kindly("--debug", "--config", config, "run", cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_missing_settings_points_to_init(tmp_path: Path) -> None:
    result = kindly("plan", cwd=tmp_path)
    assert result.returncode == 1
    assert "kindly.toml does not exist" in result.stderr
    assert "kindly init" in result.stderr


def test_plan_json_explains_every_open_invoice(demo_workspace: Path) -> None:
    runner = CliRunner()
    config = str(demo_workspace / "kindly.toml")
    assert (
        runner.invoke(cli, ["--config", config, "sync", "--at", "2026-11-22T10:00+00:00"]).exit_code
        == 0
    )
    result = runner.invoke(
        cli, ["--config", config, "plan", "--json", "--at", "2026-11-22T10:00+00:00"]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["reminders"], "the demo always has something due"
    codes = {skip["code"] for skip in plan["skips"]}
    assert {"disputed", "paused", "promised", "not_due_yet", "draft", "excluded"} <= codes
    reminded = {i for r in plan["reminders"] for i in r["invoice_ids"]}
    skipped = {s["invoice_id"] for s in plan["skips"]}
    assert reminded.isdisjoint(skipped)

    explained = runner.invoke(
        cli, ["--config", config, "plan", "--explain", "--at", "2026-11-22T10:00+00:00"]
    )
    assert explained.exit_code == 0
    assert "client disputes this invoice" in explained.output


def test_plan_before_any_sync_says_what_to_do(demo_workspace: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(demo_workspace / "kindly.toml"), "plan"])
    assert result.exit_code == 1
    assert "nothing has been synced yet" in result.output
    assert "kindly sync" in result.output


def test_bad_at_is_a_usage_error(demo_workspace: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--config", str(demo_workspace / "kindly.toml"), "plan", "--at", "next tuesday"]
    )
    assert result.exit_code == 2
    assert "not a date and time" in result.output


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output) > 80


def test_help_does_not_import_the_heavy_parts() -> None:
    probe = (
        "import sys; import plugin.app.cli; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy','alembic','jinja2','babel','rich','jsonschema','requests',"
        "'platformdirs','integrations'})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


def test_a_run_does_not_import_the_web_app_the_workers_or_letters(demo_workspace: Path) -> None:
    """`kindly run` on the demo (e-mail to the outbox, QR codes, appointments) loads what
    it uses and nothing of the web app, the workers, PDF letters or the settings editor."""
    from tests.conftest import DEMO_NOW

    unused = {"flask", "werkzeug", "argon2", "celery", "kombu", "redis", "weasyprint", "tomlkit"}
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('LOADED', sorted({m.split('.')[0] for m in sys.modules}"
        f" & set({sorted(unused)!r})), file=sys.stderr))\n"
        "from plugin.app.cli import main\n"
        "main()\n"
    )
    config = demo_workspace / "kindly.toml"
    done = subprocess.run(
        [sys.executable, "-c", probe, "--config", str(config), "run", "--at", DEMO_NOW.isoformat()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Sent 13" in done.stdout, done.stdout
    assert "LOADED []" in done.stderr, done.stderr


def test_init_writes_settings_the_next_command_accepts(tmp_path: Path) -> None:
    target = tmp_path / "kindly.toml"
    answers = [
        "--company-name",
        'Fjord & "Fjell" AS',
        "--email",
        "faktura@fjord.example",
        "--reply-to",
        "",
        "--website",
        "fjord.example",
        "--phone",
        "+47 22 55 50 00",
        "--fax",
        "",
        "--address",
        "Storgata 1 | 0184 Oslo",
        "--country",
        "no",
        "--account-holder",
        "Fjord AS",
        "--iban",
        "NO93 8601 1117 947",
        "--bic",
        "DNBANOKK",
        "--ledger",
        "regnskap",
    ]
    runner = CliRunner()
    result = runner.invoke(cli, ["init", "--path", str(target), *answers])
    assert result.exit_code == 0, result.output
    settings = load_settings(target)
    assert settings.company.name == 'Fjord & "Fjell" AS'
    assert settings.company.address == ("Storgata 1", "0184 Oslo")
    assert settings.company.country == "NO"
    assert settings.company.website == "https://fjord.example"
    assert settings.bank.iban == "NO93 8601 1117 947"
    assert LocalLedger.configured_folder(settings) == tmp_path / "regnskap"
    assert "#" in target.read_text(encoding="utf-8")

    again = runner.invoke(cli, ["init", "--path", str(target), *answers])
    assert again.exit_code == 1 and "already exists" in again.output

    typo = runner.invoke(
        cli,
        [
            "init",
            "--path",
            str(tmp_path / "other.toml"),
            *answers[:-6],
            "--iban",
            "NO94 8601 1117 947",
            "--bic",
            "DNBANOKK",
            "--ledger",
            "regnskap",
        ],
    )
    assert typo.exit_code == 1
    assert "bank.iban" in typo.output and "checksum digits" in typo.output
    assert not (tmp_path / "other.toml").exists()


def test_init_asks_when_not_told(tmp_path: Path) -> None:
    target = tmp_path / "kindly.toml"
    replies = (
        "\n".join(["Acme Ltd", "ar@acme.example", "", "", "", "", "", "GB", "", "", "", ""]) + "\n"
    )
    result = CliRunner().invoke(cli, ["init", "--path", str(target)], input=replies)
    assert result.exit_code == 0, result.output
    assert "Company name" in result.output
    assert load_settings(target).company.email == "ar@acme.example"


def _synced(demo_workspace: Path) -> tuple[CliRunner, str]:
    runner = CliRunner()
    config = str(demo_workspace / "kindly.toml")
    result = runner.invoke(cli, ["--config", config, "sync", "--at", "2026-11-22T10:00+00:00"])
    assert result.exit_code == 0, result.output
    return runner, config


def test_clients_lists_effective_settings_and_where_they_come_from(demo_workspace: Path) -> None:
    runner, config = _synced(demo_workspace)
    result = runner.invoke(cli, ["--config", config, "clients", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.output)}
    assert len(rows) == 14
    assert rows["C03"]["pause_until"] == "2026-12-13"
    assert rows["C03"]["sources"]["pause_until"] == "client"
    assert rows["C09"]["tone"] == "firm"
    assert rows["C14"]["excluded"] is True
    assert rows["C06"]["language"] == "nb"
    assert rows["C06"]["sources"]["language"] == "ledger"
    assert rows["C01"]["behaviour"] == "chronic"
    # The effective minimum per currency (issue 17): the demo's own, and the defaults.
    assert rows["C01"]["minimum"]["EUR"] == "5.00" and rows["C01"]["minimum"]["SEK"] == "50.00"
    table = runner.invoke(cli, ["--config", config, "clients"], env={"COLUMNS": "200"})
    assert "paused until 2026-12-13" in table.output


def test_clients_set_changes_the_plan_and_wins_over_the_settings_file(
    demo_workspace: Path,
) -> None:
    runner, config = _synced(demo_workspace)
    at = ["--at", "2026-11-24T10:00+01:00"]

    def plan_for(client: str) -> dict[str, Any]:
        out = runner.invoke(cli, ["--config", config, "plan", client, "--json", *at])
        assert out.exit_code == 0, out.output
        plan: dict[str, Any] = json.loads(out.output)
        return plan

    before = plan_for("C08")
    assert [r["tone"] for r in before["reminders"]] == ["friendly"]
    assert {s["customer_id"] for s in before["skips"]} <= {"C08"}

    changed = runner.invoke(
        cli,
        [
            "--config",
            config,
            "clients",
            "set",
            "C08",
            "--tone",
            "neutral",
            "--language",
            "en",
            "--channels",
            "email,sms",
        ],
    )
    assert changed.exit_code == 0, changed.output
    assert "tone neutral" in changed.output
    after = plan_for("C08")
    assert [(r["tone"], r["language"]) for r in after["reminders"]] == [("neutral", "en")]

    paused = runner.invoke(
        cli,
        [
            "--config",
            config,
            "clients",
            "set",
            "C08",
            "--pause-until",
            "2026-12-01",
            "--pause-reason",
            "new contact person",
        ],
    )
    assert paused.exit_code == 0, paused.output
    skips = plan_for("C08")["skips"]
    assert plan_for("C08")["reminders"] == []
    assert any(s["code"] == "paused" and "new contact person" in s["reason"] for s in skips)

    # kindly.toml gives C09 a firm tone; a tone set from the command line wins.
    runner.invoke(cli, ["--config", config, "clients", "set", "C09", "--tone", "friendly"])
    rows = {
        r["id"]: r
        for r in json.loads(runner.invoke(cli, ["--config", config, "clients", "--json"]).output)
    }
    assert rows["C09"]["tone"] == "friendly"

    reset = runner.invoke(cli, ["--config", config, "clients", "set", "C08", "--reset"])
    assert reset.exit_code == 0
    assert [r["tone"] for r in plan_for("C08")["reminders"]] == ["friendly"]

    resume = runner.invoke(cli, ["--config", config, "clients", "set", "C03", "--resume"])
    assert resume.exit_code == 0
    assert "Still paused" in resume.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clients", "set", "NOPE", "--tone", "firm"], "no client 'NOPE'"),
        (["clients", "set", "C01", "--tone", "rude"], "Invalid value for '--tone'"),
        (["clients", "set", "C01", "--channels", "pigeon"], "unknown channel pigeon"),
        (["clients", "set", "C01", "--policy", "lenient"], "no policy 'lenient'"),
        (["clients", "set", "C01"], "nothing to change"),
        (["plan", "NOPE"], "no client 'NOPE'"),
    ],
)
def test_clients_set_refuses_bad_input(demo_workspace: Path, args: list[str], message: str) -> None:
    runner, config = _synced(demo_workspace)
    result = runner.invoke(cli, ["--config", config, *args])
    assert result.exit_code != 0
    assert message in result.output


def test_explain_gives_codes_and_sentences(demo_workspace: Path) -> None:
    runner, config = _synced(demo_workspace)
    result = runner.invoke(
        cli,
        ["--config", config, "plan", "C01", "--explain", "--at", "2026-11-24T10:00+01:00"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "stage_due" in result.output
    assert "behaviour" in result.output and "chronic" in result.output
    assert "C01 pays:" in result.output


def test_connect_a_ledger_then_sync(tmp_path: Path, demo_workspace: Path) -> None:
    config = tmp_path / "kindly.toml"
    config.write_text(
        '[company]\nname = "Acme"\nemail = "ar@acme.example"\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "k.sqlite3"}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    before = runner.invoke(cli, ["--config", str(config), "sync"])
    assert before.exit_code == 1
    assert "no ledger is connected" in before.output and "kindly connect" in before.output

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "customers.json").write_text("[{}]", encoding="utf-8")
    refused = runner.invoke(cli, ["--config", str(config), "connect", "ledger", str(broken)])
    assert refused.exit_code == 1
    assert "customers.json, record 1" in refused.output
    still = runner.invoke(cli, ["--config", str(config), "sync"])
    assert "no ledger is connected" in still.output

    ledger = demo_workspace / "ledger"
    done = runner.invoke(
        cli, ["--config", str(config), "connect", "ledger", str(ledger)], env={"COLUMNS": "200"}
    )
    assert done.exit_code == 0, done.output
    assert "14 clients" in done.output
    synced = runner.invoke(cli, ["--config", str(config), "sync"], env={"COLUMNS": "200"})
    assert synced.exit_code == 0, synced.output
    assert f"Synced {ledger}" in synced.output

    unknown = runner.invoke(cli, ["--config", str(config), "connect", "freshbooks", str(ledger)])
    assert unknown.exit_code == 2 and "unknown connector 'freshbooks'" in unknown.output


def test_sync_says_what_changed_since_the_last_one(demo_workspace: Path) -> None:
    runner, config = _synced(demo_workspace)
    env = {"COLUMNS": "200"}
    again = runner.invoke(cli, ["--config", config, "sync"], env=env)
    assert again.exit_code == 0, again.output
    assert "Since the last sync: 0 new, 0 changed, 0 gone." in again.output
    invoices_file = demo_workspace / "ledger" / "invoices.json"
    invoices = json.loads(invoices_file.read_text(encoding="utf-8"))
    invoices[0]["number"] += "-A"
    removed = invoices.pop()
    invoices_file.write_text(json.dumps(invoices), encoding="utf-8")
    payments_file = demo_workspace / "ledger" / "payments.json"
    payments = json.loads(payments_file.read_text(encoding="utf-8"))
    payments = [p for p in payments if p["invoice_id"] != removed["id"]]
    payments_file.write_text(json.dumps(payments), encoding="utf-8")
    changed = runner.invoke(cli, ["--config", config, "sync"], env=env)
    assert changed.exit_code == 0, changed.output
    assert "Since the last sync: 0 new, 1 changed, " in changed.output


def test_preview_shows_the_reminder_as_sent(demo_workspace: Path, tmp_path: Path) -> None:
    runner, config = _synced(demo_workspace)
    env = {"COLUMNS": "200"}
    text = runner.invoke(
        cli,
        ["--config", config, "preview", "C08", "--stage", "second", "--tone", "neutral"],
        env=env,
    )
    assert text.exit_code == 0, text.output
    assert "Subject: Zweite Zahlungserinnerung" in text.output
    assert "Sehr geehrte Frau Müller," in text.output
    runner.invoke(cli, ["--config", config, "clients", "set", "C08", "--formality", "informal"])
    informal = runner.invoke(cli, ["--config", config, "preview", "C08"], env=env)
    assert "Hallo Katrin," in informal.output
    sms = runner.invoke(cli, ["--config", config, "preview", "C06", "--channel", "sms"], env=env)
    assert sms.exit_code == 0, sms.output
    assert "GSM-7" in sms.output and "fits the limit of 160" in sms.output
    out = tmp_path / "c02.eml"
    written = runner.invoke(cli, ["--config", config, "preview", "C02", "--output", str(out)])
    assert written.exit_code == 0, written.output
    assert b"Content-Type: multipart/alternative" in out.read_bytes()
    assert b"Heb je" in out.read_bytes() or b"Heb=20je" in out.read_bytes()
    bad = runner.invoke(cli, ["--config", config, "preview", "C08", "--invoice", "NOPE"])
    assert bad.exit_code == 1 and "no invoice 'NOPE'" in bad.output


def test_send_review_asks_first(demo_workspace: Path) -> None:
    config = demo_workspace / "kindly.toml"
    runner = CliRunner()
    base = ["--config", str(config)]
    at = ["--at", "2026-11-22T10:00:00+00:00"]
    assert runner.invoke(cli, [*base, "sync", *at]).exit_code == 0
    outbox = demo_workspace.parent / "outbox"
    declined = runner.invoke(
        cli, [*base, "send", "--review", *at], input="n\n", env={"COLUMNS": "200"}
    )
    assert declined.exit_code == 0, declined.output
    assert "Reminders due" in declined.output and "Send these" in declined.output
    assert "Nothing was sent." in declined.output and not list(outbox.glob("*.eml"))
    unanswered = runner.invoke(cli, [*base, "send", "--review", *at])
    assert unanswered.exit_code == 2 and "--yes" in unanswered.output
    accepted = runner.invoke(cli, [*base, "send", "--review", *at], input="y\n")
    assert accepted.exit_code == 0 and "Sent 1" in accepted.output, accepted.output
    assert list(outbox.glob("*.eml"))


def test_a_run_with_reminders_not_delivered_exits_3(demo_workspace: Path) -> None:
    """D21: a cron job must be able to tell. The outbox is a file, not a folder: every
    e-mail is deferred; the run finishes, lists them, and exits 3 (docs/exit-codes.md)."""
    from tests.conftest import DEMO_NOW

    outbox = demo_workspace.parent / "outbox"
    outbox.write_text("not a folder", encoding="utf-8")
    runner = CliRunner()
    base = ["--config", str(demo_workspace / "kindly.toml")]
    result = runner.invoke(cli, [*base, "run", "--at", DEMO_NOW.isoformat()])
    assert result.exit_code == 3, result.output
    assert "Sent 0, deferred 13" in result.output and "Not delivered" in result.output
    outbox.unlink()
    again = runner.invoke(cli, [*base, "run", "--at", DEMO_NOW.isoformat()])
    assert again.exit_code == 0, again.output
    assert "deferred 0, failed 0, unconfirmed 0" in again.output


@pytest.mark.parametrize("color", ["", "1"])
def test_client_data_is_never_markup_or_a_terminal_command(
    demo_workspace: Path, color: str
) -> None:
    """D7, D8: a client's name in the ledger reaches the operator's terminal as text."""
    from tests.conftest import DEMO_NOW
    from tests.test_delivery import set_customer

    hostile = (
        "Data [/path] BV [link=https://evil.example/]x[/link] [bold]"
        "\x1b]0;PWNED\x1b\\\x1b]52;c;ZWNobyBwd25lZA==\x1b\\\x1b[2J\u202eabc"
    )
    set_customer(demo_workspace, "C01", name=hostile)
    runner = CliRunner()
    base = ["--config", str(demo_workspace / "kindly.toml")]
    env = {"COLUMNS": "400", "FORCE_COLOR": color} if color else {"COLUMNS": "400"}
    at = ["--at", DEMO_NOW.isoformat()]
    outputs = []
    for command in (["run", *at], ["plan", "--explain", *at], ["clients"], ["history"]):
        result = runner.invoke(cli, [*base, *command], env=env)
        assert result.exit_code == 0, (command, result.output)
        outputs.append(result.output)
    everything = "\n".join(outputs)
    assert "Data [/path] BV [link=https://evil.example/]x[/link] [bold]" in everything
    assert "\x1b]" not in everything, "no OSC sequence (title, clipboard, hyperlink)"
    assert "\x1b[2J" not in everything and "\u202e" not in everything


def test_a_pause_until_the_end_of_the_calendar_is_a_pause_for_good(demo_workspace: Path) -> None:
    """D15a: 9999-12-31 has no day after; planning must not overflow on it."""
    from tests.conftest import DEMO_NOW

    runner = CliRunner()
    base = ["--config", str(demo_workspace / "kindly.toml")]
    at = ["--at", DEMO_NOW.isoformat()]
    assert runner.invoke(cli, [*base, "sync", *at]).exit_code == 0
    paused = runner.invoke(cli, [*base, "clients", "set", "C01", "--pause-until", "9999-12-31"])
    assert paused.exit_code == 0, paused.output
    planned = runner.invoke(cli, [*base, "plan", "--json", *at])
    assert planned.exit_code == 0, planned.output
    skips = json.loads(planned.output)["skips"]
    assert any(s["customer_id"] == "C01" and s["code"] == "paused" for s in skips)


@pytest.mark.parametrize("at", ["9999-12-31T23:59+00:00", "0001-01-01T00:00"])
def test_a_moment_at_the_ends_of_the_calendar_is_a_usage_error(
    demo_workspace: Path, at: str
) -> None:
    """D15b: --at at the calendar's ends is refused by name, not an overflow."""
    result = CliRunner().invoke(
        cli, ["--config", str(demo_workspace / "kindly.toml"), "plan", "--at", at]
    )
    assert result.exit_code == 2 and "--at" in result.output and "1900 to 2199" in result.output


def test_at_without_an_offset_is_on_the_companys_clock(demo_workspace: Path) -> None:
    """Issue 17: the docs say so; it was read on this computer's clock (UTC here)."""
    runner, config = _synced(demo_workspace)
    result = runner.invoke(cli, ["--config", config, "plan", "--json", "--at", "2026-11-22T10:00"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["at"] == "2026-11-22T10:00:00+01:00"  # Amsterdam, winter


def test_plan_shows_each_invoices_stage_in_a_consolidated_reminder(demo_workspace: Path) -> None:
    """Issue 17, HIGH-2 (in part): a second reminder that also takes a newly due invoice
    says which invoice is at which stage, in the table as in --json."""
    from datetime import timedelta

    from tests.conftest import DEMO_NOW

    runner, config = _synced(demo_workspace)
    first = runner.invoke(cli, ["--config", config, "run", "--at", DEMO_NOW.isoformat()])
    assert first.exit_code == 0, first.output
    later = (DEMO_NOW + timedelta(days=15)).isoformat()
    runner.invoke(cli, ["--config", config, "sync", "--at", later])
    as_json = runner.invoke(cli, ["--config", config, "plan", "--json", "--at", later])
    mixed = [
        r
        for r in json.loads(as_json.output)["reminders"]
        if len(set(r["invoice_stages"].values())) > 1
    ]
    assert mixed, "the demo has a client with invoices at two stages by then"
    table = runner.invoke(cli, ["--config", config, "plan", "--at", later], env={"COLUMNS": "300"})
    reminder = mixed[0]
    for number, invoice_id in zip(reminder["invoices"], reminder["invoice_ids"], strict=True):
        assert f"{number} ({reminder['invoice_stages'][invoice_id]})" in table.output


def test_the_demo_serves_the_web_app_until_ctrl_c(tmp_path: Path) -> None:
    """`make demo`: the run as before, then the web app on the demo workspace, its address
    and a demo sign-in printed; the sign-in works; Ctrl+C stops it cleanly."""
    import re
    import signal

    import requests

    environment = {**os.environ, "COLUMNS": "200"}
    environment.pop("KINDLY_CONFIG", None)
    environment.pop("KINDLY_STORE_URL", None)
    served = subprocess.Popen(
        [str(KINDLY), "demo", "--workspace", "ws", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert served.stdout is not None
        lines: list[str] = []
        for line in served.stdout:
            lines.append(line)
            if line.startswith("Sign in as"):
                break
        printed = "".join(lines)
        assert "Sent " in printed, printed
        address = re.search(r"Kindly's web app on (http://127\.0\.0\.1:\d+/)", printed)
        account = re.search(r"Sign in as (\w+) with the password (\S+)", printed)
        assert address and account, printed
        browser = requests.Session()
        page = browser.get(address.group(1) + "login", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        signed = browser.post(
            address.group(1) + "login",
            data={
                "name": account.group(1),
                "password": account.group(2),
                "csrf_token": token.group(1),
            },
            timeout=10,
        )
        assert signed.status_code == 200 and "<title>Overview · Kindly" in signed.text
        assert "What went out" in signed.text
    finally:
        served.send_signal(signal.SIGINT)
        rest, errors = served.communicate(timeout=60)
    assert served.returncode == 0, errors
    assert "Stopped the web app." in rest


def test_a_promise_to_pay_recorded_on_the_command_line(demo_workspace: Path) -> None:
    runner = CliRunner()
    base = ["--config", str(demo_workspace / "kindly.toml")]
    at = "2026-11-22T13:00:00+00:00"
    assert runner.invoke(cli, [*base, "sync", "--at", at]).exit_code == 0
    planned = json.loads(runner.invoke(cli, [*base, "plan", "--json", "--at", at]).output)
    reminder = planned["reminders"][0]
    client, number = reminder["customer_id"], reminder["invoices"][0]
    wrong = runner.invoke(
        cli, [*base, "clients", "promise", client, number, "--until", "2026-01-01", "--at", at]
    )
    assert wrong.exit_code == 2 and "2026-01-01 is in the past" in wrong.output
    kept = runner.invoke(
        cli,
        [*base, "clients", "promise", client, number, "--until", "2026-12-05", "--at", at],
    )
    assert kept.exit_code == 0, kept.output
    assert f"Recorded: {number} promised by 2026-12-05." in kept.output
    again = json.loads(runner.invoke(cli, [*base, "plan", "--json", "--at", at]).output)
    assert all(number not in r["invoices"] for r in again["reminders"])
    forgot = runner.invoke(cli, [*base, "clients", "promise", client, number, "--forget"])
    assert forgot.exit_code == 0 and "Forgot the promise" in forgot.output
    back = json.loads(runner.invoke(cli, [*base, "plan", "--json", "--at", at]).output)
    assert any(number in r["invoices"] for r in back["reminders"])
