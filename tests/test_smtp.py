"""SMTP delivery against a real SMTP server on loopback: TLS, AUTH, reuse, failures."""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin.config.settings import SmtpSettings
from plugin.deliver.smtp import SmtpError, SmtpMailer
from tests.fakes.smtp import PASSWORD, USER, SmtpServer, start_smtp


def message(to: str, subject: str = "Reminder") -> bytes:
    return (
        f"From: ar@noordlicht.example\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}.{to}@noordlicht.example>\r\n\r\n"
        ".a line that starts with a dot\r\nbody\r\n"
    ).encode()


@pytest.fixture(params=["plain", "plain, pipelining", "starttls", "tls"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmtpServer]:
    mode, _, pipelining = request.param.partition(", ")
    started = start_smtp(tmp_path, mode, pipelining=bool(pipelining))
    yield started
    started.stop()


def mailer_for(server: SmtpServer, **changes: object) -> SmtpMailer:
    secure = server.client_context is not None
    settings = SmtpSettings(
        host="127.0.0.1",
        port=server.port,
        security={"plain": "none"}.get(server.mode, server.mode),
        username=USER if secure else None,
        password=PASSWORD if secure else None,
        timeout=10,
        retry_wait=0,
    )
    for name, value in changes.items():
        settings = SmtpSettings(**{**settings.__dict__, name: value})
    return SmtpMailer(settings, ssl_context=server.client_context)


def test_a_batch_shares_one_connection(server: SmtpServer) -> None:
    handovers: list[str] = []
    with mailer_for(server) as mailer:
        for n in range(5):
            to = f"client{n}@example.com"
            outcome = mailer.send(
                message(to), "ar@noordlicht.example", [to], functools.partial(handovers.append, to)
            )
            assert outcome.status == "sent", outcome
    assert mailer.connections_opened == 1
    assert [r.recipients for r in server.received] == [[f"client{n}@example.com"] for n in range(5)]
    assert handovers == [f"client{n}@example.com" for n in range(5)]
    # Dot-stuffing is undone by the server: the line arrives as written.
    assert b"\r\n.a line that starts with a dot\r\n" in server.received[0].data


def test_failures_are_kept_apart_and_sorted(server: SmtpServer) -> None:
    with mailer_for(server) as mailer:
        gone = mailer.send(
            message("nobody@example.com"), "ar@noordlicht.example", ["nobody@example.com"]
        )
        busy = mailer.send(
            message("later@example.com"), "ar@noordlicht.example", ["later@example.com"]
        )
        spam = mailer.send(
            message("ok@example.com", "REJECT"), "ar@noordlicht.example", ["ok@example.com"]
        )
        fine = mailer.send(message("ok@example.com"), "ar@noordlicht.example", ["ok@example.com"])
        partly = mailer.send(
            message("ok@example.com", "Two"),
            "ar@noordlicht.example",
            ["ok@example.com", "nobody@example.com"],
        )
    assert (gone.status, busy.status, spam.status, fine.status) == (
        "permanent",
        "temporary",
        "permanent",
        "sent",
    )
    assert "550" in gone.detail and "No such user" in gone.detail
    assert "554" in spam.detail
    assert partly.status == "sent" and partly.refused == ("nobody@example.com",)
    assert len(server.received) == 2
    assert mailer.connections_opened == 1, "a refused message does not cost the connection"


def test_a_wrong_password_stops_the_batch_without_showing_it(tmp_path: Path) -> None:
    server = start_smtp(tmp_path, "starttls")
    try:
        with (
            pytest.raises(SmtpError) as caught,
            mailer_for(server, password="wrong-pass") as mailer,
        ):
            mailer.send(message("ok@example.com"), "ar@noordlicht.example", ["ok@example.com"])
        assert "refused the login" in str(caught.value)
        assert "wrong-pass" not in str(caught.value) + repr(mailer) + repr(mailer.settings)
    finally:
        server.stop()


def test_plain_text_login_is_refused_by_a_server_that_wants_tls(tmp_path: Path) -> None:
    server = start_smtp(tmp_path, "starttls")
    try:
        with pytest.raises(SmtpError), mailer_for(server, security="none") as mailer:
            mailer.send(message("ok@example.com"), "ar@noordlicht.example", ["ok@example.com"])
        assert server.received == []
    finally:
        server.stop()


def test_a_server_that_is_not_there_defers_the_batch(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []
    mailer = SmtpMailer(
        SmtpSettings(host="127.0.0.1", port=port, security="none", timeout=5, retry_wait=1),
        sleep=waits.append,
    )
    first = mailer.send(message("a@example.com"), "ar@noordlicht.example", ["a@example.com"])
    assert first.status == "temporary"
    assert "cannot reach the SMTP server" in first.detail and "4 tries" in first.detail
    assert waits == [1, 2, 4], "three more tries, each after twice the wait before"
    # The rest of the batch waits for the next run without knocking again.
    second = mailer.send(message("b@example.com"), "ar@noordlicht.example", ["b@example.com"])
    assert second.status == "temporary" and "not tried again in this run" in second.detail
    assert waits == [1, 2, 4]


def test_a_stale_connection_is_opened_again_once(server: SmtpServer) -> None:
    with mailer_for(server) as mailer:
        assert (
            mailer.send(message("a@example.com"), "ar@noordlicht.example", ["a@example.com"]).status
            == "sent"
        )
        assert mailer._connection is not None and mailer._connection.sock is not None
        # The server or a NAT dropped it between messages.
        mailer._connection.sock.shutdown(socket.SHUT_RDWR)
        again = mailer.send(message("b@example.com"), "ar@noordlicht.example", ["b@example.com"])
    assert again.status == "sent" and mailer.connections_opened == 2
    assert len(server.received) == 2


# -- faults at each step (aiosmtpd answers as scripted; see tests/fakes/smtp.py) ----------


class Handovers:
    """What the send loop's hand-over sees: each hand-over, and each taken back."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def __call__(self) -> None:
        self.events.append("handed over")

    def take_back(self) -> None:
        self.events.append("taken back")


def send_one(mailer: SmtpMailer, to: str = "ok@example.com") -> tuple[Any, Handovers]:
    handovers = Handovers()
    outcome = mailer.send(
        message(to), "ar@noordlicht.example", [to], handovers, taken_back=handovers.take_back
    )
    return outcome, handovers


@pytest.fixture(params=["one command at a time", "pipelining"])
def plain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmtpServer]:
    """Every fault below, with the envelope sent one command at a time and pipelined (RFC
    2920): the same outcomes."""
    started = start_smtp(tmp_path, "plain", pipelining=request.param == "pipelining")
    yield started
    started.stop()


@pytest.mark.parametrize("answer", ["451 4.3.2 Try again later", "421 4.3.2 Closing"])
@pytest.mark.parametrize("step", ["MAIL", "RCPT", "DATA", "END"])
def test_a_4xx_at_any_step_is_tried_again_within_the_run(
    plain: SmtpServer, step: str, answer: str
) -> None:
    plain.fail(step, answer)
    with mailer_for(plain) as mailer:
        outcome, handovers = send_one(mailer)
    assert outcome.status == "sent", outcome
    assert len(plain.received) == 1, "delivered once"
    assert mailer.retried == 1
    if answer.startswith("421"):
        assert mailer.connections_opened == 2, "421 closes the connection: a new one"
    if step == "END":
        # The server refused what was handed over: nothing delivered, so it goes again.
        assert handovers.events == ["handed over", "taken back", "handed over"]
    else:
        assert handovers.events == ["handed over"]


def test_a_sender_turned_away_for_now_defers_the_batch_without_blaming_it(
    plain: SmtpServer,
) -> None:
    plain.fail("MAIL", *["451 4.7.1 Sender temporarily rejected"] * 4)
    with mailer_for(plain) as mailer:
        first, handovers = send_one(mailer, "a@example.com")
        second, _ = send_one(mailer, "b@example.com")
    assert (first.status, second.status) == ("temporary", "temporary")
    assert "not taking mail now" in first.detail and "451" in first.detail
    assert "refused the sender" not in first.detail
    assert plain.handler.reached["MAIL"] == 4, "the second message did not knock again"
    assert handovers.events == [] and plain.received == []


def test_a_sender_refused_for_good_stops_the_batch(plain: SmtpServer) -> None:
    plain.fail("MAIL", "550 5.7.1 Sender not allowed")
    with pytest.raises(SmtpError, match="refused the sender"), mailer_for(plain) as mailer:
        send_one(mailer)


def test_a_line_lost_in_the_middle_of_the_message_is_sent_again(plain: SmtpServer) -> None:
    plain.fail("BODY", "DROP")
    # A message larger than the sockets' buffers: the drop is met while it goes out.
    large = message("ok@example.com") + (b"y" * 76 + b"\r\n") * 200_000
    handovers = Handovers()
    with mailer_for(plain) as mailer:
        outcome = mailer.send(
            large,
            "ar@noordlicht.example",
            ["ok@example.com"],
            handovers,
            taken_back=handovers.take_back,
        )
    assert outcome.status == "sent"
    assert len(plain.received) == 1
    assert mailer.connections_opened == 2
    # The hand-over comes after the message, before the dot: the lost try never got there.
    assert handovers.events == ["handed over"]


def test_a_line_lost_after_the_final_dot_is_unconfirmed(plain: SmtpServer) -> None:
    plain.fail("END", "DROP")
    with mailer_for(plain) as mailer:
        outcome = send_one(mailer)[0]
        after = send_one(mailer, "next@example.com")[0]
    assert outcome.status == "unconfirmed" and "before the server answered" in outcome.detail
    assert len(plain.received) == 2, "the server has it: never sent twice"
    assert after.status == "sent", "the next message goes on a new connection"


def test_the_answer_to_the_final_dot_gets_its_own_longer_wait(plain: SmtpServer) -> None:
    seen: list[float | None] = []
    with mailer_for(plain, timeout=7, final_timeout=600) as mailer:

        def at_the_end() -> None:
            # The client is past its final dot and waiting for this answer.
            assert mailer._connection is not None and mailer._connection.sock is not None
            seen.append(mailer._connection.sock.gettimeout())

        plain.handler.on_end = at_the_end
        first, _ = send_one(mailer)
        assert mailer._connection is not None and mailer._connection.sock is not None
        back_to = mailer._connection.sock.gettimeout()
    assert first.status == "sent"
    assert seen == [600], "RFC 5321 allows 10 minutes for this answer"
    assert back_to == 7, "and 5 (here 7) for each command"


def test_no_answer_to_the_final_dot_in_time_is_unconfirmed(plain: SmtpServer) -> None:
    plain.fail("END", "HOLD")
    with mailer_for(plain, final_timeout=0.2) as mailer:
        outcome, _ = send_one(mailer)
    assert outcome.status == "unconfirmed" and "no answer in time" in outcome.detail


def test_one_recipient_refused_for_good_the_other_gets_it(plain: SmtpServer) -> None:
    with mailer_for(plain) as mailer:
        outcome = mailer.send(
            message("ok@example.com"),
            "ar@noordlicht.example",
            ["ok@example.com", "nobody@example.com"],
        )
    assert outcome.status == "sent" and outcome.refused == ("nobody@example.com",)
    assert "550" in outcome.detail
    assert plain.received[0].recipients == ["ok@example.com"]


@pytest.mark.parametrize("offered", [False, True])
def test_the_envelope_goes_in_one_write_where_the_server_offers_pipelining(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offered: bool
) -> None:
    """MAIL FROM, both RCPT TOs and DATA in one write (then the message, then the dot);
    one command a write where the server does not offer PIPELINING."""
    import smtplib

    server = start_smtp(tmp_path, "plain", pipelining=offered)
    writes: list[bytes] = []
    original = smtplib.SMTP.send

    def counted(self: smtplib.SMTP, data: bytes | str) -> None:
        writes.append(data if isinstance(data, bytes) else data.encode())
        original(self, data)

    try:
        with mailer_for(server) as mailer:
            assert send_one(mailer)[0].status == "sent"  # connected, greeted
            monkeypatch.setattr(smtplib.SMTP, "send", counted)
            to = ["ok@example.com", "also@example.com"]
            outcome = mailer.send(message(to[0]), "ar@noordlicht.example", to)
            monkeypatch.undo()
    finally:
        server.stop()
    assert outcome.status == "sent"
    assert server.received[-1].recipients == to
    envelope = [w for w in writes if not w.startswith((b"From:", b".\r\n"))]
    if offered:
        assert envelope == [
            f"MAIL FROM:<ar@noordlicht.example> SIZE={len(message(to[0]))}\r\n".encode()
            + b"RCPT TO:<ok@example.com>\r\nRCPT TO:<also@example.com>\r\nDATA\r\n"
        ]
    else:
        assert [w.split(b":")[0].split(b" ")[0].strip().lower() for w in envelope] == [
            b"mail",
            b"rcpt",
            b"rcpt",
            b"data",
        ]
