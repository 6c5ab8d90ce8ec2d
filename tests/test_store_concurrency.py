"""Several processes on one store at once, on SQLite and on PostgreSQL: each reminder is
claimed by exactly one of them, and any number may open a new store together.

The processes are real (spawned), started together at a barrier so their work overlaps.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plugin.core.vocabulary import LogStatus
from plugin.state.store import SCHEMA_REVISION, ReminderRecord, Store

AT = datetime(2026, 12, 1, 10, tzinfo=UTC)
KEYS = [f"{n:032x}" for n in range(120)]
SENDERS = 4


def record(key: str) -> ReminderRecord:
    return ReminderRecord(
        key=key,
        source="ledger",
        customer_id="C1",
        invoice_ids=("I1",),
        invoice_numbers=("1",),
        stage="first",
        channel="email",
        recipient="a@b.example",
        amount="€ 1,00",
        currency="EUR",
        status=LogStatus.SENDING,
        planned_at=AT,
    )


def _claim_all(url: str, start: Any, claimed: Any) -> None:
    """Claim every key, ten at a time as the send loop does, in an order of its own."""
    import os
    import random

    store = Store.open(url)
    keys = KEYS[:]
    random.Random(os.getpid()).shuffle(keys)
    start.wait()
    won: list[str] = []
    for first in range(0, len(keys), 10):
        won += store.claim([record(key) for key in keys[first : first + 10]])
    claimed.put(won)
    store.close()


def _open(url: str, start: Any, opened: Any) -> None:
    start.wait()
    try:
        store = Store.open(url)
        opened.put(store.schema_revision())
        store.close()
    except Exception as exc:  # reported to the test, which names it
        opened.put(f"{type(exc).__name__}: {exc}")


def _run_together(target: Any, url: str, count: int) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(count)
    results = context.Queue()
    workers = [context.Process(target=target, args=(url, start, results)) for _ in range(count)]
    for worker in workers:
        worker.start()
    found = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return found


def test_each_deferred_reminder_is_claimed_by_exactly_one_sender(store_url: str) -> None:
    store = Store.open(store_url)
    for key in KEYS:
        store.record_outcome(record(key), LogStatus.DEFERRED, "the server was busy")
    store.close()
    claims = Counter(key for won in _run_together(_claim_all, store_url, SENDERS) for key in won)
    assert set(claims) == set(KEYS), "every reminder went out"
    twice = sorted(key for key, count in claims.items() if count > 1)
    assert twice == [], f"{len(twice)} reminders claimed by two senders"


def test_each_new_reminder_is_claimed_by_exactly_one_sender(store_url: str) -> None:
    claims = Counter(key for won in _run_together(_claim_all, store_url, SENDERS) for key in won)
    assert set(claims) == set(KEYS)
    twice = sorted(key for key, count in claims.items() if count > 1)
    assert twice == [], f"{len(twice)} reminders claimed by two senders"


def test_any_number_of_processes_can_open_a_new_store_at_once(store_url: str) -> None:
    revisions = _run_together(_open, store_url, 6)
    assert revisions == [SCHEMA_REVISION] * 6, revisions


def test_the_sqlite_file_is_created_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'kindly.sqlite3'}"
    assert _run_together(_open, url, 6) == [SCHEMA_REVISION] * 6


def _take_all(url: str, start: Any, taken: Any) -> None:
    """Take every pending web sign-in it can, as a replayed OAuth answer would try."""
    store = Store.open(url)
    start.wait()
    won = [key for key in KEYS[:40] if store.take_setting("web.oauth", key) is not None]
    taken.put(won)
    store.close()


def test_each_sign_in_answer_is_taken_by_exactly_one_process(store_url: str) -> None:
    """The web app's OAuth state is used once: two answers with it (a replay, two tabs,
    two app processes) find it once between them."""
    store = Store.open(store_url)
    for key in KEYS[:40]:
        store.set_setting("web.oauth", key, {"verifier": key}, AT)
    store.close()
    takes = Counter(key for won in _run_together(_take_all, store_url, SENDERS) for key in won)
    assert set(takes) == set(KEYS[:40])
    assert [key for key, count in takes.items() if count > 1] == []


def _guess(url: str, start: Any, answers: Any) -> None:
    """Three wrong passwords for one account, as a guesser spread over app processes would."""
    from plugin.app.web.accounts import Accounts, RateLimited

    accounts = Accounts(Store.open(url))
    start.wait()
    outcomes = []
    for _ in range(3):
        try:
            outcomes.append("refused" if accounts.sign_in("anouk", "guess", AT) is None else "in")
        except RateLimited:
            outcomes.append("rate-limited")
    accounts.store.close()
    answers.put(outcomes)


def test_failed_sign_ins_are_counted_together_by_every_app_process(store_url: str) -> None:
    """Four app processes, twelve wrong passwords at once: the passwords of only five are
    looked at, the rest are refused unread; then the right password waits too."""
    from datetime import timedelta

    from plugin.app.web.accounts import ATTEMPTS, WINDOW, Accounts, RateLimited

    store = Store.open(store_url)
    accounts = Accounts(store)
    accounts.add("anouk", "the right password", ["*"], AT)
    store.close()
    outcomes = Counter(o for run in _run_together(_guess, store_url, SENDERS) for o in run)
    assert outcomes == {"refused": ATTEMPTS, "rate-limited": 3 * SENDERS - ATTEMPTS}
    store = Store.open(store_url)
    accounts = Accounts(store)
    try:
        accounts.sign_in("anouk", "the right password", AT)
    except RateLimited:
        pass
    else:
        raise AssertionError("the right password got in while the account was rate-limited")
    assert accounts.sign_in("anouk", "the right password", AT + WINDOW + timedelta(seconds=1))
    store.close()


def _edit(config: str, start: Any, answers: Any) -> None:
    """Save a change from the settings page as it was shown, as another app process
    would at the same moment."""
    import os

    from plugin.app.settings_file import ChangedMeanwhile, change_settings_file

    store = Store.open(f"sqlite:///{Path(config).parent / 'state.sqlite3'}")
    seen = os.environ["KINDLY_TEST_SEEN"]
    pid = os.getpid()

    def change(document: Any) -> None:
        document["company"]["phone"] = f"+31 20 555 {pid % 10000:04d}"

    start.wait()
    try:
        change_settings_file(Path(config), change, seen=seen, lock=store.exclusive("kindly.toml"))
        answers.put("saved")
    except ChangedMeanwhile:
        answers.put("refused")
    finally:
        store.close()


def test_of_two_app_processes_saving_the_settings_at_once_one_wins(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The settings page changes kindly.toml: processes saving a change made on the same
    page version write it once between them; the others are told it changed. (Without
    the store's lock around reading and writing, more than one saves.)"""
    from plugin.app.settings_file import version_of

    config = tmp_path / "kindly.toml"
    config.write_text('# kept\n[company]\nname = "A"\nemail = "a@example.com"\n', encoding="utf-8")
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    store.close()
    monkeypatch.setenv("KINDLY_TEST_SEEN", version_of(config))
    outcomes = Counter(_run_together(_edit, str(config), SENDERS))
    assert outcomes == {"saved": 1, "refused": SENDERS - 1}
    text = config.read_text(encoding="utf-8")
    assert text.startswith("# kept\n") and text.count("phone = ") == 1


def _restore_all(url: str, start: Any, restored: Any) -> None:
    """Log every key as sent, from the notes a sync found, while others do the same."""
    from dataclasses import replace

    store = Store.open(url)
    start.wait()
    won: list[str] = []
    for first in range(0, len(KEYS), 10):
        batch = [
            replace(record(key), status=LogStatus.SENT, sent_at=AT, note_written_at=AT)
            for key in KEYS[first : first + 10]
        ]
        won += store.restore(batch)
    restored.put(won)
    store.close()


def test_each_entry_restored_from_the_notes_is_logged_by_exactly_one_process(
    store_url: str,
) -> None:
    """Two syncs after a lost store both find Kindly's notes: each entry is logged once,
    sent with its note written, and a claim made before stays a claim."""
    store = Store.open(store_url)
    claimed = store.claim([record(KEYS[0])])
    assert claimed == {KEYS[0]}
    store.close()
    restored = Counter(
        key for won in _run_together(_restore_all, store_url, SENDERS) for key in won
    )
    assert set(restored) == set(KEYS[1:]), "the claimed key is left as it is"
    assert [key for key, count in restored.items() if count > 1] == []
    store = Store.open(store_url)
    try:
        statuses = {entry.key: entry.status for entry in store.reminders()}
    finally:
        store.close()
    assert statuses[KEYS[0]] == LogStatus.SENDING
    assert {statuses[key] for key in KEYS[1:]} == {LogStatus.SENT}
