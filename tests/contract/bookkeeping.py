"""The contract every bookkeeping connector passes: ``bookkeeping_contract(factory)``.

Every connector: a snapshot that holds together, fresh reads of named invoices, no secret
in a repr. With ``Capability.NOTES``: a note written once and found again, written twice
and still one, read back with its reminder key, stage and channel. With
``Capability.INCREMENTAL``: the first sync hands out bookmarks, an unchanged platform
syncs to an equal snapshot in a fixed number of calls, and a changed and a deleted invoice
show in the next sync. With ``Capability.WEBHOOKS``: a signed body is accepted, a wrong,
absent or non-ASCII signature is refused, and a webhook names the records of the
connector's own organisation only.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from integrations.base import Capability
from plugin.core.model import Invoice, Note

from .generate import lacks_capability, suite
from .harness import BookkeepingHarness, HarnessFactory

__all__ = ["BookkeepingContract", "bookkeeping_contract"]

WEBHOOK_KEY = "contract-webhook-key-0123456789"


def _note(invoice: Invoice, key: str, stage: str = "first", channel: str = "email") -> Note:
    return Note(
        id=f"kindly-{key}",
        created_at=datetime(2026, 11, 22, 10, tzinfo=UTC),
        text=f"Kindly sent the {stage} reminder by {channel}.",
        customer_id=invoice.customer_id,
        invoice_ids=(invoice.id,),
        reminder_key=key,
        stage=stage,
        channel=channel,
    )


def _key(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _open_invoices(harness: BookkeepingHarness, count: int) -> list[Invoice]:
    found = [i for i in harness.connector.read_snapshot().invoices if i.is_open]
    assert len(found) >= count, f"the harness seeds {count} open invoices at least"
    return found[:count]


class BookkeepingContract:
    factory: ClassVar[HarnessFactory[BookkeepingHarness]]

    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[BookkeepingHarness]:
        with self.factory(tmp_path) as made:
            yield made

    # -- every connector ---------------------------------------------------------------------

    def test_a_snapshot_holds_together(self, harness: BookkeepingHarness) -> None:
        connector = harness.connector
        snapshot = connector.read_snapshot()
        customers = snapshot.customers_by_id
        assert snapshot.invoices and customers
        for invoice in snapshot.invoices:
            assert invoice.customer_id in customers
        for payment in snapshot.payments:
            assert payment.invoice_id in snapshot.invoices_by_id
        assert connector.source_id and connector.location

    def test_fresh_reads_return_the_named_invoices(self, harness: BookkeepingHarness) -> None:
        connector = harness.connector
        snapshot = connector.read_snapshot()
        wanted = [invoice.id for invoice in snapshot.invoices[:3]]
        fresh = connector.read_invoices(wanted)
        assert sorted(i.id for i in fresh) == sorted(wanted)
        assert {i.id: i for i in fresh} == {i: snapshot.invoices_by_id[i] for i in wanted}

    def test_a_repr_names_the_source_and_nothing_secret(self, harness: BookkeepingHarness) -> None:
        text = repr(harness.connector)
        assert type(harness.connector).__name__ in text
        assert harness.source_name in text
        assert "token" not in text.lower() and "secret" not in text.lower()
        for secret in harness.secrets():
            assert secret not in text

    # -- NOTES ---------------------------------------------------------------------------------

    def test_a_note_is_written_once_and_found_again(self, harness: BookkeepingHarness) -> None:
        connector = harness.connector
        (invoice,) = _open_invoices(harness, 1)
        note = _note(invoice, "00112233445566778899aabbccddeeff")
        assert connector.existing_note_ids([note]) == set()
        connector.write_note(note)
        assert connector.existing_note_ids([note]) == {note.id}
        found = [n for n in connector.read_notes() if n.id == note.id]
        assert len(found) == 1 and found[0].reminder_key == note.reminder_key
        assert invoice.id in found[0].invoice_ids

    def test_writing_the_same_note_again_leaves_one(self, harness: BookkeepingHarness) -> None:
        assert harness.copies is not None
        connector = harness.connector
        (invoice,) = _open_invoices(harness, 1)
        note = _note(invoice, _key("written twice"))
        connector.write_note(note)
        held = harness.copies(note.id)
        assert held >= 1
        connector.write_note(note)  # a retry after a lost answer
        assert harness.copies(note.id) == held, "the repeat added nothing on the platform"
        assert connector.existing_note_ids([note]) == {note.id}
        assert [n.id for n in connector.read_notes() if n.id == note.id] == [note.id]

    def test_notes_come_back_with_their_key_stage_and_channel(
        self, harness: BookkeepingHarness
    ) -> None:
        connector = harness.connector
        first, second = _open_invoices(harness, 2)
        written = [
            _note(first, _key("a"), "first", "email"),
            _note(second, _key("b"), "final", "sms"),
        ]
        for note in written:
            connector.write_note(note)
        back = {n.id: n for n in connector.read_notes()}
        for note in written:
            found = back[note.id]
            assert (found.reminder_key, found.stage, found.channel) == (
                note.reminder_key,
                note.stage,
                note.channel,
            )
            assert found.invoice_ids == note.invoice_ids
        assert connector.existing_note_ids(written) == {n.id for n in written}

    def test_a_batch_of_notes_is_written_once_even_when_written_again(
        self, harness: BookkeepingHarness
    ) -> None:
        """The run writes notes in batches; a batch tried again after a crash (``check``)
        adds nothing where a note is there already."""
        connector = harness.connector
        first, second, third = _open_invoices(harness, 3)
        batch = [
            _note(first, _key("batch a")),
            _note(second, _key("batch b"), "second", "sms"),
            _note(third, _key("batch c"), "final", "letter"),
        ]
        assert connector.write_notes(batch) == {note.id: None for note in batch}
        again = connector.write_notes(batch, check={note.id for note in batch})
        assert again == {note.id: None for note in batch}
        back = Counter(n.id for n in connector.read_notes())
        assert [back[note.id] for note in batch] == [1, 1, 1]

    # -- INCREMENTAL ---------------------------------------------------------------------------

    def test_the_first_sync_hands_out_bookmarks(self, harness: BookkeepingHarness) -> None:
        first = harness.connector.sync(None, {})
        assert first.bookmarks, "something to read on from"
        assert all(isinstance(v, str) and v for v in first.bookmarks.values())
        assert first.snapshot.invoices_by_id == harness.connector.read_snapshot().invoices_by_id

    def test_an_unchanged_platform_syncs_to_an_equal_snapshot_in_fixed_calls(
        self, harness: BookkeepingHarness
    ) -> None:
        assert harness.calls and harness.served and harness.unchanged_sync_calls is not None
        served = harness.served()
        first = harness.connector.sync(None, {})
        full = harness.served() - served
        calls, served = harness.calls(), harness.served()
        again = harness.connector.sync(first.snapshot, first.bookmarks)
        assert harness.calls() - calls == harness.unchanged_sync_calls
        assert harness.served() - served < full, "asked only for what changed, not for all"
        assert again.snapshot == first.snapshot
        assert set(again.bookmarks) == set(first.bookmarks)

    def test_a_changed_and_a_deleted_invoice_show_in_the_next_sync(
        self, harness: BookkeepingHarness
    ) -> None:
        assert harness.change_invoice is not None and harness.delete_invoice is not None
        connector = harness.connector
        first = connector.sync(None, {})
        changed, deleted = [i for i in first.snapshot.invoices if i.is_open][:2]
        harness.change_invoice(changed.id)
        harness.delete_invoice(deleted.id)
        later = connector.sync(first.snapshot, first.bookmarks)
        invoices = later.snapshot.invoices_by_id
        assert invoices[changed.id] != changed
        assert invoices[changed.id] == connector.read_invoices([changed.id])[0]
        assert deleted.id not in invoices
        untouched = set(first.snapshot.invoices_by_id) - {changed.id, deleted.id}
        assert untouched, "the harness seeds more than two invoices"
        assert {i: invoices[i] for i in untouched} == {
            i: first.snapshot.invoices_by_id[i] for i in untouched
        }

    # -- WEBHOOKS ------------------------------------------------------------------------------

    def _signed(self, harness: BookkeepingHarness) -> tuple[bytes, str, str]:
        assert harness.webhook_body and harness.sign and harness.signature_header
        body = harness.webhook_body([("INVOICE", "i-1")], [])
        return body, harness.signature_header, harness.sign(body, WEBHOOK_KEY)

    def test_a_correctly_signed_webhook_is_accepted(self, harness: BookkeepingHarness) -> None:
        body, header, signature = self._signed(harness)
        verify = harness.connector.verify_webhook
        assert verify(body, {header: signature}, WEBHOOK_KEY)
        # Header names are case-insensitive.
        assert verify(body, {header.upper(): signature}, WEBHOOK_KEY)
        assert verify(body, {header.title(): signature}, WEBHOOK_KEY)

    @pytest.mark.parametrize(
        "wrong",
        ["another key", "a changed body", "no signature", "non-ASCII", "no key", "empty"],
    )
    def test_a_wrong_absent_or_non_ascii_signature_is_refused(
        self, harness: BookkeepingHarness, wrong: str
    ) -> None:
        assert harness.sign is not None
        body, header, signature = self._signed(harness)
        key = WEBHOOK_KEY
        headers: dict[str, str] = {header: signature}
        if wrong == "another key":
            headers[header] = harness.sign(body, "another-webhook-key")
        elif wrong == "a changed body":
            body += b" "
        elif wrong == "no signature":
            headers = {}
        elif wrong == "non-ASCII":
            headers[header] = "ünïcode-signature"
        elif wrong == "no key":
            key = ""
        else:
            headers[header] = ""
        assert harness.connector.verify_webhook(body, headers, key) is False

    def test_a_webhook_names_its_own_organisations_records_only(
        self, harness: BookkeepingHarness
    ) -> None:
        assert harness.webhook_body is not None
        own = [("INVOICE", "inv-own-1"), ("CONTACT", "con-own-1")]
        if self.factory.lacks.get("several events a request"):
            own = own[:1]  # Exact Online sends one event a request
        body = harness.webhook_body(own, [("INVOICE", "inv-other-1")])
        assert harness.connector.webhook_records(body) == own
        assert harness.connector.webhook_records(harness.webhook_body([], own)) == []
        assert harness.connector.webhook_records(b"not json") == []


def bookkeeping_contract(factory: HarnessFactory[BookkeepingHarness]) -> type:
    """The bookkeeping contract for ``factory``'s connector, as a test class: assign it to
    a ``Test...`` name in the connector's test file."""
    cls = factory.connector_class
    notes = lacks_capability(cls, Capability.NOTES)
    incremental = lacks_capability(cls, Capability.INCREMENTAL)
    webhooks = lacks_capability(cls, Capability.WEBHOOKS)
    skip: dict[str, Any] = {
        "test_a_note_is_written_once_and_found_again": notes,
        "test_writing_the_same_note_again_leaves_one": notes
        or factory.lacks.get("idempotent notes"),
        "test_notes_come_back_with_their_key_stage_and_channel": notes,
        "test_a_batch_of_notes_is_written_once_even_when_written_again": notes,
        "test_the_first_sync_hands_out_bookmarks": incremental,
        "test_an_unchanged_platform_syncs_to_an_equal_snapshot_in_fixed_calls": incremental,
        "test_a_changed_and_a_deleted_invoice_show_in_the_next_sync": incremental,
        # A platform that signs inside the body (Exact's HashCode) checks it in its own
        # tests: these cases send the signature in a header.
        "test_a_correctly_signed_webhook_is_accepted": webhooks
        or factory.lacks.get("signature header"),
        "test_a_wrong_absent_or_non_ascii_signature_is_refused": webhooks
        or factory.lacks.get("signature header"),
        "test_a_webhook_names_its_own_organisations_records_only": webhooks,
    }
    return suite(BookkeepingContract, factory, skip=skip)
