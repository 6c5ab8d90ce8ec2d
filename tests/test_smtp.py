"""SMTP delivery against a real SMTP server on loopback: TLS, AUTH, reuse, failures."""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(params=["plain", "starttls", "tls"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmtpServer]:
    started = start_smtp(tmp_path, request.param)
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


def test_a_server_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=port, security="none", timeout=5))
    with pytest.raises(SmtpError, match="cannot reach the SMTP server"):
        mailer.send(message("ok@example.com"), "ar@noordlicht.example", ["ok@example.com"])


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
