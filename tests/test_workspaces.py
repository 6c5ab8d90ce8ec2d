"""Many workspaces in one database: a store bound to one never reads, changes or blocks
another's rows, through every public method (real SQLite, and PostgreSQL where one runs)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from plugin.core.vocabulary import LogStatus
from plugin.errors import BusyError, StoreError
from plugin.state.store import Delivered, Store
from tests.test_state_store import AT, record, snapshot

#: The methods that read or write a workspace's rows, each tried across workspaces below.
CHECKED = {
    "replace_snapshot", "load_snapshot", "bookmarks_of", "left_out", "get_bookmark",
    "set_bookmark", "record_intent", "claim", "restore", "release", "hand_over", "take_back",
    "record_outcome", "mark_sent_many", "mark_sent", "mark_failed", "mark_note_written",
    "claim_notes", "mark_notes_written", "forget_intent", "reminder", "reminders",
    "logged", "get_setting", "set_setting", "take_setting", "delete_setting", "settings_in",
    "exclusive", "claim_run", "cover_runs", "runs_done", "scheduled", "mutex", "lease",
    "settings_document", "save_settings_document", "forget_settings_document",
}  # fmt: skip
#: The methods about the database itself, not a workspace's rows.
NOT_ROWS = {
    "open", "close", "migrate", "schema_revision", "in_workspace", "workspaces", "identity",
    "workspaces_with_settings",
}  # fmt: skip


@pytest.fixture
def alpha_and_beta(store_url: str) -> Iterator[tuple[Store, Store]]:
    # Two handles opened apart, as two customers' processes would.
    alpha = Store.open(store_url, "alpha")
    beta = Store.open(store_url, "beta")
    yield alpha, beta
    alpha.close()
    beta.close()


def test_every_public_method_of_the_store_is_checked_across_workspaces() -> None:
    public = {name for name in dir(Store) if not name.startswith("_")} - {"engine", "workspace"}
    assert public == CHECKED | NOT_ROWS, "a new Store method needs its check below"


def test_synced_records_and_bookmarks_stay_in_their_workspace(
    alpha_and_beta: tuple[Store, Store],
) -> None:
    alpha, beta = alpha_and_beta
    alpha.replace_snapshot(
        "xero:t1", snapshot(), AT, {"invoices": "v1"}, left_out=("ledger.json: I9 amount",)
    )
    alpha.set_bookmark("xero:t1", "payments", "p1", AT)
    assert beta.load_snapshot("xero:t1") is None
    assert beta.bookmarks_of("xero:t1") == {}
    assert beta.left_out("xero:t1") == ()
    assert beta.get_bookmark("xero:t1", "payments") is None
    # The same source in another workspace (two customers of one platform organisation)
    # is synced apart: replacing it there deletes nothing here.
    beta.replace_snapshot("xero:t1", snapshot().__class__(), AT, {"invoices": "v9"})
    beta.set_bookmark("xero:t1", "payments", "other", AT)
    assert alpha.load_snapshot("xero:t1") == snapshot()
    assert alpha.bookmarks_of("xero:t1") == {"invoices": "v1", "payments": "p1"}
    assert alpha.left_out("xero:t1") == ("ledger.json: I9 amount",)


def test_the_reminder_log_stays_in_its_workspace(alpha_and_beta: tuple[Store, Store]) -> None:
    alpha, beta = alpha_and_beta
    assert alpha.claim([record("k1"), record("k2"), record("k3")]) == {"k1", "k2", "k3"}
    assert alpha.hand_over("k1")
    alpha.mark_sent("k1", AT, "<m1@x>", "accepted")
    alpha.claim_notes(["k1"], AT)
    assert alpha.hand_over("k3")
    before = {r.key: r for r in alpha.reminders()}

    assert beta.reminder("k1") is None
    assert beta.logged(["k1", "k2", "k3"]) == set()
    assert alpha.logged(["k1", "k2", "k3", "k4"]) == {"k1", "k2", "k3"}
    assert beta.reminders() == [] and beta.reminders("ledger") == []
    # Nothing done under beta's name changes alpha's entries of the same keys.
    assert not beta.hand_over("k2")
    beta.take_back("k3")
    beta.release(["k2"])
    beta.forget_intent("k2")
    beta.claim_notes(["k1", "k2"], AT + timedelta(hours=1))
    beta.mark_notes_written(["k1"], AT + timedelta(hours=1))
    beta.mark_sent_many([Delivered("k2", AT, None, "beta's", LogStatus.SENT)])
    writes: list[Callable[[], None]] = [
        lambda: beta.mark_sent("k2", AT, None, "beta's"),
        lambda: beta.mark_failed("k2", "beta's"),
        lambda: beta.mark_note_written("k1", AT),
    ]
    for write in writes:
        with pytest.raises(StoreError, match="no entry"):
            write()
    assert {r.key: r for r in alpha.reminders()} == before

    # Beta logs the same keys as its own: claimed (not "logged already"), kept apart.
    assert beta.claim([record("k1")]) == {"k1"}
    assert beta.record_intent(record("k2"))
    beta.record_outcome(record("k3"), LogStatus.FAILED, "beta's bounce")
    assert {r.key: r.status for r in beta.reminders()} == {
        "k1": LogStatus.SENDING,
        "k2": LogStatus.SENDING,
        "k3": LogStatus.FAILED,
    }
    assert {r.key: r for r in alpha.reminders()} == before
    # And alpha, claiming again, still finds its own entries logged.
    assert alpha.claim([record("k1"), record("k2")]) == set()


def test_entries_restored_from_notes_stay_in_their_workspace(
    alpha_and_beta: tuple[Store, Store],
) -> None:
    """A note says the reminder went: logged as sent with its note written, in one
    statement, in this workspace only; a key logged already (any state) is left."""
    alpha, beta = alpha_and_beta
    assert alpha.claim([record("k1")]) == {"k1"}
    went = record("k1", status=LogStatus.SENT, sent_at=AT, note_written_at=AT)
    assert alpha.restore([went]) == set(), "alpha's own entry is left as it is"
    assert alpha.reminder("k1").status is LogStatus.SENDING  # type: ignore[union-attr]
    assert beta.restore([went, record("k2", status=LogStatus.SENT, sent_at=AT)]) == {"k1", "k2"}
    restored = beta.reminder("k1")
    assert restored is not None and restored.status is LogStatus.SENT
    assert restored.sent_at == AT and restored.note_written_at == AT
    assert alpha.reminder("k2") is None


def test_settings_and_their_transactions_stay_in_their_workspace(
    alpha_and_beta: tuple[Store, Store],
) -> None:
    alpha, beta = alpha_and_beta
    alpha.set_setting("connection:xero", "token", {"sealed": "alpha's"}, AT)
    alpha.set_setting("web.account", "anouk", {"password": "hash"}, AT)
    with alpha.exclusive("web.secret") as transaction:
        transaction.set_setting("web", "secret_key", "alpha's key", AT)

    assert beta.get_setting("connection:xero", "token") is None
    assert beta.settings_in("") == {}
    assert beta.take_setting("connection:xero", "token") is None
    beta.delete_setting("web.account", "anouk")
    with beta.exclusive("web.secret") as transaction:
        assert transaction.get_setting("web", "secret_key") is None
        transaction.set_setting("web", "secret_key", "beta's key", AT)
    beta.set_setting("connection:xero", "token", {"sealed": "beta's"}, AT)

    assert alpha.get_setting("connection:xero", "token") == {"sealed": "alpha's"}
    assert alpha.get_setting("web.account", "anouk") == {"password": "hash"}
    assert alpha.get_setting("web", "secret_key") == "alpha's key"
    assert beta.get_setting("web", "secret_key") == "beta's key"
    assert set(alpha.settings_in("")) == {"connection:xero", "web.account", "web", "lock:"}
    assert alpha.workspaces() == ["alpha", "beta"]


def test_held_settings_stay_in_their_workspace(alpha_and_beta: tuple[Store, Store]) -> None:
    """A workspace's kindly.toml held in the database: read, replaced, changed from a
    version and forgotten under another workspace's name, it is untouched."""
    alpha, beta = alpha_and_beta
    version = alpha.save_settings_document("# alpha's\n", AT, seen=None)
    assert version is not None
    assert beta.settings_document() is None
    assert beta.save_settings_document("# beta's\n", AT, seen=version) is None, "not beta's"
    assert not beta.forget_settings_document()
    assert beta.save_settings_document("# beta's\n", AT, seen=None) is not None
    assert beta.save_settings_document("# beta's too\n", AT, seen=None, replace=True)
    held = alpha.settings_document()
    assert held is not None and (held.text, held.version) == ("# alpha's\n", version)
    assert alpha.workspaces_with_settings() == beta.workspaces_with_settings()
    assert alpha.workspaces_with_settings() == ["alpha", "beta"]


def test_scheduled_runs_stay_in_their_workspace(alpha_and_beta: tuple[Store, Store]) -> None:
    alpha, beta = alpha_and_beta
    assert alpha.claim_run("xero:t1", "z", "2026-11-23", AT, stale_after=60)
    alpha.cover_runs("xero:t1", [("z", "2026-11-22")], AT, "sent 3")
    assert beta.runs_done("xero:t1") == {}
    assert beta.scheduled() == [] and beta.scheduled("xero:t1") == []
    # Beta's run of the same organisation, zone and day is its own to claim.
    assert beta.claim_run("xero:t1", "z", "2026-11-23", AT, stale_after=60)
    beta.cover_runs("xero:t1", [("z", "2026-11-23")], AT, "beta's")
    assert alpha.runs_done("xero:t1") == {"z": AT.date()}
    assert {(run["day"], run["detail"]) for run in alpha.scheduled("xero:t1")} == {
        ("2026-11-23", None),
        ("2026-11-22", "sent 3"),
    }


def test_leases_and_mutexes_of_one_workspace_never_block_another(
    alpha_and_beta: tuple[Store, Store],
) -> None:
    alpha, beta = alpha_and_beta
    with alpha.lease("run:xero:t1", wait=0.0, doing="sending"):
        with beta.lease("run:xero:t1", wait=0.0, doing="sending"):
            pass
        again = alpha.in_workspace("alpha")
        with (
            pytest.raises(BusyError, match="another Kindly"),
            again.lease("run:xero:t1", wait=0.0, doing="sending"),
        ):
            pass

    # Beta takes the mutex alpha holds, in another thread (its own connection or file).
    taken = threading.Event()

    def take_in_beta() -> None:
        with beta.mutex("fiken:requests"):
            taken.set()

    with alpha.mutex("fiken:requests"):
        other = threading.Thread(target=take_in_beta)
        other.start()
        # Bounded, not a sleep: were the names shared, beta would wait for alpha.
        assert taken.wait(timeout=10)
    other.join()


def test_two_workspaces_in_one_database_each_send_their_own_reminders(
    demo_workspace: Path, tmp_path: Path, store_url: str
) -> None:
    """`kindly run` in two workspaces sharing a database: both read a demo ledger (the
    same source id and the same reminder keys), and each sends all of its reminders, to
    its own outbox, once; a workspace of its own store sends the same."""
    from click.testing import CliRunner

    from plugin.app.cli import cli
    from tests.conftest import DEMO_NOW

    runner = CliRunner()
    at = ["run", "--at", DEMO_NOW.isoformat()]
    configs = {}
    for name in ("alpha", "beta"):
        workspace = tmp_path / name / "workspace"
        shutil.copytree(demo_workspace, workspace)
        config = workspace / "kindly.toml"
        shared = f"url = {json.dumps(store_url)}\nworkspace = {json.dumps(name)}"
        config.write_text(
            config.read_text(encoding="utf-8").replace('url = "sqlite:///kindly.sqlite3"', shared),
            encoding="utf-8",
        )
        configs[name] = config
    alone = runner.invoke(cli, ["--config", str(demo_workspace / "kindly.toml"), *at])
    assert alone.exit_code == 0, alone.output
    expected = sorted(path.name for path in (demo_workspace.parent / "outbox").glob("*.eml"))
    assert len(expected) > 5
    for name, config in configs.items():
        first = runner.invoke(cli, ["--config", str(config), *at])
        assert first.exit_code == 0 and f"Sent {len(expected)}," in first.output, first.output
        again = runner.invoke(cli, ["--config", str(config), *at])
        assert again.exit_code == 0 and "Sent 0," in again.output, again.output
        outbox = tmp_path / name / "outbox"
        assert sorted(path.name for path in outbox.glob("*.eml")) == expected, name
    shared_store = Store.open(store_url)
    assert shared_store.workspaces() == ["alpha", "beta"]
    shared_store.close()


def test_a_lost_store_sends_nothing_again_that_the_ledgers_notes_name(
    demo_workspace: Path, tmp_path: Path
) -> None:
    """The notes Kindly wrote in the accounting system are the source of truth (D4): a
    run on a new store (the old one lost) takes up what they name and sends none of it
    again. Before, it sent every reminder a second time and wrote each note twice."""
    from click.testing import CliRunner

    from plugin.app.cli import cli
    from tests.conftest import DEMO_NOW

    runner = CliRunner()
    config = ["--config", str(demo_workspace / "kindly.toml")]
    at = ["--at", DEMO_NOW.isoformat()]
    assert runner.invoke(cli, [*config, "run", *at]).exit_code == 0
    outbox = demo_workspace.parent / "outbox"
    sent = sorted(path.name for path in outbox.glob("*.eml"))
    for lost in demo_workspace.glob("kindly.sqlite3*"):
        lost.unlink()
    again = runner.invoke(cli, [*config, "run", *at])
    assert again.exit_code == 0, again.output
    assert sorted(path.name for path in outbox.glob("*.eml")) == sent
    # Only appointment reminders go again: they write no note.
    assert "Sent 2," in again.output and "2 appointment" in again.output, again.output
    assert f"Took up {len(sent) - 2} reminders into the log" in again.output
    history = runner.invoke(cli, [*config, "history", "--json"])
    assert history.exit_code == 0, history.output
    lines = (demo_workspace / "ledger" / "kindly-notes.jsonl").read_text().splitlines()
    assert len({json.loads(line)["id"] for line in lines}) == len(lines), "each note once"


def test_stores_opened_shared_use_one_pool_per_database(store_url: str) -> None:
    """A worker serving many workspaces of one PostgreSQL database connects once; closing
    one workspace's store leaves the others working. SQLite files are never kept open."""
    first = Store.open(store_url, "alpha", shared=True)
    second = Store.open(store_url, "beta", shared=True)
    first.close()
    second.set_setting("s", "k", 1, AT)
    assert second.get_setting("s", "k") == 1
    assert (first.engine is second.engine) == (not store_url.startswith("sqlite"))
    second.close()


def test_a_workspace_name_that_cannot_be_kept_is_refused_by_name(
    demo_workspace: Path, tmp_path: Path
) -> None:
    from plugin.app.wiring import load_settings
    from plugin.errors import ConfigError

    config = demo_workspace / "kindly.toml"
    text = config.read_text(encoding="utf-8").replace("[store]\n", '[store]\nworkspace = "a b"\n')
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"store\.workspace"):
        load_settings(config)
    with pytest.raises(ValueError, match="workspace name"):
        Store.open(f"sqlite:///{tmp_path / 'k.sqlite3'}", "a/b")


def test_a_folder_of_workspaces_is_looked_into_at_each_look(tmp_path: Path) -> None:
    from plugin.app.wiring import workspace_files

    single = tmp_path / "single.toml"
    single.write_text("", encoding="utf-8")
    folder = tmp_path / "clients"
    (folder / "b").mkdir(parents=True)
    (folder / "b" / "kindly.toml").write_text("", encoding="utf-8")
    (folder / "notes").mkdir()
    assert workspace_files([str(single), str(folder)]) == [
        str(single),
        str(folder / "b" / "kindly.toml"),
    ]
    (folder / "a").mkdir()
    (folder / "a" / "kindly.toml").write_text("", encoding="utf-8")
    assert workspace_files([str(folder)]) == [
        str(folder / "a" / "kindly.toml"),
        str(folder / "b" / "kindly.toml"),
    ]
