"""`kindly connect pennylane`, `sync`, `plan`, `run` and `disconnect pennylane` end to end
on a fake Pennylane: reminders in the outbox in each client's language with the PDFs
attached, no notes in Pennylane (it has nowhere to keep them: the history stays in
Kindly), the second run reading only the change logs, and the grant revoked."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from plugin.app.cli import cli
from tests.fakes.pennylane import API, FakePennylane, Fault
from tests.pennylane_harness import seed_small_company

AT = "2026-11-24T10:00:00+01:00"


@pytest.fixture
def fake() -> Iterator[FakePennylane]:
    server = FakePennylane()
    # The CLI runs on the real clock: Pennylane's starts there too (its change logs keep
    # four weeks). It stands still while the CLI runs, so its window of 25 calls per 5
    # seconds would never open again (the limit has tests of its own).
    server.clock = datetime.now(UTC)
    server.rate_limit = 10**6
    server.start()
    yield server
    server.stop()


@pytest.fixture
def env(fake: FakePennylane) -> dict[str, str]:
    return {
        "KINDLY_SECRET_KEY": Fernet.generate_key().decode(),
        "KINDLY_PENNYLANE_CLIENT_SECRET": fake.client_secret,
        "COLUMNS": "200",
    }


def write_config(folder: Path, fake: FakePennylane) -> Path:
    endpoints = "\n".join(f'{key} = "{value}"' for key, value in fake.endpoints().items())
    config = folder / "kindly.toml"
    config.write_text(
        f"""connector = "pennylane"

[company]
name = "Atelier Lumière SAS"
email = "compta@atelier-lumiere.example"
country = "FR"

[bank]
account_holder = "Atelier Lumière SAS"
iban = "FR1420041010050500013M02606"

[policy]
send_window = "always"

[delivery]
outbox = "outbox"

[store]
url = "sqlite:///state.sqlite3"

[pennylane]
client_id = "{fake.client_id}"
redirect_port = 0
{endpoints}
""",
        encoding="utf-8",
    )
    return config


def test_connect_run_and_run_again_against_pennylane(
    fake: FakePennylane, tmp_path: Path, env: dict[str, str]
) -> None:
    seeded = seed_small_company(fake)
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    refresh = fake.issue_tokens()["refresh_token"]
    connected = runner.invoke(
        cli, [*base, "connect", "pennylane", "--refresh-token", refresh], env=env
    )
    assert connected.exit_code == 0, connected.output
    assert "Connected Pennylane" in connected.output
    synced = runner.invoke(cli, [*base, "sync", "--at", AT], env=env)
    assert synced.exit_code == 0, synced.output
    plan = json.loads(runner.invoke(cli, [*base, "plan", "--json", "--at", AT], env=env).output)
    reminders = {r["customer"]: r for r in plan["reminders"]}
    assert reminders["Boulangerie Dupont SARL"]["language"] == "fr"
    assert reminders["Berliner Haus GmbH"]["language"] == "en", "its billing language"

    first = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert first.exit_code == 0, first.output
    said = " ".join(first.output.split())
    assert "Notes: Pennylane keeps none; the history stays in Kindly." in said
    outbox = sorted((tmp_path / "outbox").glob("*.eml"))
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in outbox
    ]
    dupont = next(m for m in messages if "factures@dupont.example" in m["To"])
    attached = [str(part.get_filename()) for part in dupont.iter_attachments()]
    assert len(attached) == 2 and all(name.endswith(".pdf") for name in attached)
    body = dupont.get_body(preferencelist=("plain",))
    assert body is not None and "300,00" in body.get_content(), "what is still owed"

    # Lucie pays in full: the change log names her invoice, and it alone is read again.
    fake.pay(seeded["l1"], "80.00", on=date(2026, 11, 24))
    calls = fake.api_calls()
    again = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert again.exit_code == 0, again.output
    assert "Sent nothing new" in again.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == len(outbox)
    # The two change logs, the invoice by id, and its payments.
    assert fake.api_calls() - calls == 4
    history = runner.invoke(cli, [*base, "sync", "--at", AT], env=env)
    assert history.exit_code == 0, history.output
    quiet = fake.api_calls()
    assert runner.invoke(cli, [*base, "sync", "--at", AT], env=env).exit_code == 0
    assert fake.api_calls() - quiet == 2, "nothing changed: the two change logs"

    disconnected = runner.invoke(cli, [*base, "disconnect", "pennylane"], env=env)
    assert disconnected.exit_code == 0, disconnected.output
    # The grant is over: no refresh token or access token of it works any more.
    assert fake.revoked and all(grant.revoked for grant in fake.grants.values())
    assert not fake.refresh_tokens and not fake.access_tokens


def test_pennylane_mails_a_reminder_of_two_invoices_whole_or_not_at_all(
    fake: FakePennylane, tmp_path: Path, env: dict[str, str]
) -> None:
    """Pennylane's own e-mail for Dupont's two open invoices: while the PDF of one is
    still being made neither goes; once it is, both go, once; and when the second is
    refused after the first went, the reminder is in doubt and not sent again."""
    seeded = seed_small_company(fake)
    config = write_config(tmp_path, fake)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[delivery]\n", '[delivery]\nemail_via = "platform"\n', 1), encoding="utf-8"
    )
    runner = CliRunner()
    base = ["--config", str(config)]
    refresh = fake.issue_tokens()["refresh_token"]
    connected = runner.invoke(
        cli, [*base, "connect", "pennylane", "--refresh-token", refresh], env=env
    )
    assert connected.exit_code == 0, connected.output
    dupont = {seeded["a1"]["id"], seeded["a2"]["id"]}

    fake.pdf_pending = {seeded["a2"]["id"]}
    waiting = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert waiting.exit_code == 3, "incomplete: " + waiting.output
    assert not {s.invoice_id for s in fake.sent} & dupont, "neither of Dupont's went"
    assert "F20260002" in " ".join(waiting.output.split())

    fake.pdf_pending = set()
    sent = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert sent.exit_code == 0, sent.output
    assert sorted(s.invoice_id for s in fake.sent if s.invoice_id in dupont) == sorted(dupont)
    again = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert again.exit_code == 0, again.output
    assert len([s for s in fake.sent if s.invoice_id in dupont]) == 2, "once each"


@pytest.mark.parametrize("refusal", [422, 403, 500])
def test_a_reminder_cut_short_after_its_first_invoice_is_never_sent_again(
    fake: FakePennylane, tmp_path: Path, env: dict[str, str], refusal: int
) -> None:
    """The second of two invoices refused (422), the connection refused (403: an
    AuthError, which would stop the channel), or a server error after the first went:
    the reminder is unconfirmed, never given back to go again in full."""
    seeded = seed_small_company(fake)
    config = write_config(tmp_path, fake)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[delivery]\n", '[delivery]\nemail_via = "platform"\n', 1), encoding="utf-8"
    )
    runner = CliRunner()
    base = ["--config", str(config)]
    refresh = fake.issue_tokens()["refresh_token"]
    connected = runner.invoke(
        cli, [*base, "connect", "pennylane", "--refresh-token", refresh], env=env
    )
    assert connected.exit_code == 0, connected.output
    dupont = {seeded["a1"]["id"], seeded["a2"]["id"]}
    # The second of Dupont's invoices (the later one) is refused once the first went.
    path = f"{API}/customer_invoices/{seeded['a2']['id']}/send_by_email"
    fake.fail_next(path, Fault(refusal))
    first = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert first.exit_code == 3, "incomplete: " + first.output
    went = [s.invoice_id for s in fake.sent if s.invoice_id in dupont]
    assert went == [seeded["a1"]["id"]] and fake.calls[f"POST {path}"] == 1
    history = runner.invoke(cli, [*base, "history", "--json"], env=env)
    logged = [
        r for r in json.loads(history.output) if set(r["invoice_ids"]) & set(map(str, dupont))
    ]
    assert [r["status"] for r in logged] == ["unconfirmed"]
    second = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert second.exit_code == 0, second.output
    assert [s.invoice_id for s in fake.sent if s.invoice_id in dupont] == [seeded["a1"]["id"]]


def test_the_write_scope_is_asked_for_only_where_pennylane_mails(
    fake: FakePennylane, tmp_path: Path
) -> None:
    """Reading needs the read scopes alone; Pennylane's own e-mail (``email_via =
    "platform"``) needs the invoices' write scope, and ``[pennylane] scopes`` wins."""
    from integrations.bookkeeping.pennylane import PennylaneConnector
    from integrations.workspace import Workspace
    from plugin.config.settings import load_settings
    from plugin.state.store import Store

    config = write_config(tmp_path, fake)
    store = Store.open(f"sqlite:///{tmp_path / 'scopes.sqlite3'}")
    try:

        def scopes(text: str) -> set[str]:
            config.write_text(text, encoding="utf-8")
            workspace = Workspace(load_settings(config), store, lambda: fake.clock)
            return set(PennylaneConnector.web_sign_in(workspace).scopes)

        text = config.read_text(encoding="utf-8")
        assert scopes(text) == {"customers:readonly", "customer_invoices:readonly"}
        mailing = text.replace("[delivery]\n", '[delivery]\nemail_via = "platform"\n', 1)
        assert scopes(mailing) == {"customers:readonly", "customer_invoices:all"}
        chosen = mailing + 'scopes = ["customers:all", "customer_invoices:all"]\n'
        assert scopes(chosen) == {"customers:all", "customer_invoices:all"}
    finally:
        store.close()
