"""Sending e-mail by SMTP: one connection for a batch, each message's fate kept apart.

- STARTTLS (port 587), implicit TLS (465) or none (a local relay), with AUTH when a user is
  set; the password only ever comes from ``KINDLY_SMTP_PASSWORD``.
- The dialogue is driven step by step (MAIL FROM, RCPT TO, DATA, the message, the final
  dot) so that each step has its own time limit, as RFC 5321 section 4.5.3.2 asks: five
  minutes for the greeting and each command (``[smtp] timeout``), ten for the answer to
  the final dot (``[smtp] final_timeout``). Where the server offers PIPELINING (RFC 2920;
  Postfix, Exim and the big providers do), MAIL FROM, RCPT TO and DATA go in one write
  and their answers are read in order: one round trip for the envelope.
- ``before_handover`` runs after the message and before the final dot: the caller logs
  there that the server may now have it. The dot is the moment of delivery: before it the
  server discards what it got, so anything that goes wrong is safe to try again; between
  the dot and its answer nobody knows (*unconfirmed*); the answer settles it.
- Every answer is sorted here:

  - 250 after the dot: **sent**.
  - a 5xx for the recipient, or after the message (a bounce reported at once):
    **permanent**, the reminder falls back to the client's next channel;
  - a 4xx at any step, or a connection lost before the dot: tried again within the run
    (``[smtp] retries``, waiting ``retry_wait`` seconds, doubled each time, on a new
    connection where the old one is gone), then **temporary**: the next run tries again;
  - a 4xx at MAIL FROM, a server that cannot be reached or greets with 4xx: the server
    is not taking mail now. Once the retries are spent, the rest of the batch is
    deferred at once, without blaming the sender address;
  - a refused login, a 5xx for the sender, TLS that fails: **the batch stops**
    (:class:`SmtpError`); every message would fail alike until the settings are fixed.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from plugin.config.settings import PASSWORD_VARIABLE, SmtpSettings
from plugin.core.vocabulary import DeliveryStatus
from plugin.deliver.crash import crash_point
from plugin.errors import KindlyError

__all__ = ["SmtpError", "SmtpMailer", "SmtpOutcome", "SmtpSettings"]


class SmtpError(KindlyError):
    """The batch cannot go on: the server refuses our login or sender, or TLS fails."""


@dataclass(frozen=True)
class SmtpOutcome:
    status: DeliveryStatus
    detail: str
    refused: tuple[str, ...] = ()


class _TryAgain(Exception):
    """Nothing was delivered and it may work in a moment (a 4xx, a connection lost)."""

    def __init__(self, detail: str, *, server_wide: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        #: The server takes no mail now, for any message (not this message's fault).
        self.server_wide = server_wide


_LEADING_DOT = re.compile(rb"(?m)^\.")

#: Seconds a batch may spend waiting between tries in all: past it, a message that gets
#: "try again" waits for the next run, so a batch full of busy mailboxes does not stall.
RETRY_BUDGET = 60.0


class SmtpMailer:
    """Use as a context manager around a batch; :meth:`send` each message."""

    def __init__(
        self,
        settings: SmtpSettings,
        ssl_context: ssl.SSLContext | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._sleep = sleep
        self._connection: smtplib.SMTP | None = None
        #: Set once the server turned the batch away for now: the rest wait for the next run.
        self._resting: str | None = None
        self.connections_opened = 0
        #: Tries that were repeated within the run (4xx answers, lost connections).
        self.retried = 0
        self._waited = 0.0

    def __repr__(self) -> str:
        return f"SmtpMailer({self.settings!r})"

    def __enter__(self) -> SmtpMailer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def resting(self) -> bool:
        """The server turned this connection's batch away for now (not this message)."""
        return self._resting is not None

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                self._connection.close()
            self._connection = None

    def _drop(self) -> None:
        """Forget a connection in no state for another message (the server ends it)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        connection: smtplib.SMTP | None = None
        try:
            if s.security == "tls":
                connection = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=self.ssl_context
                )
            else:
                connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    connection.starttls(context=self.ssl_context)
            if s.username:
                if not s.password:
                    raise SmtpError(
                        f"the SMTP server {self.where} needs a password for {s.username!r}",
                        hint=f"Set {PASSWORD_VARIABLE}.",
                    )
                connection.login(s.username, s.password)
        except smtplib.SMTPAuthenticationError as exc:
            _close_quietly(connection)
            raise SmtpError(
                f"the SMTP server {self.where} refused the login of {s.username!r} "
                f"({exc.smtp_code})",
                hint=f"Check [smtp] username and {PASSWORD_VARIABLE}.",
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            _close_quietly(connection)
            missing = "AUTH" if "AUTH" in str(exc) else "STARTTLS"
            raise SmtpError(
                f"the SMTP server {self.where} offers no {missing}",
                hint='Check [smtp] security ("starttls" on 587, "tls" on 465) and username.',
            ) from None
        except ssl.SSLError as exc:
            _close_quietly(connection)
            raise SmtpError(f"TLS with the SMTP server {self.where} failed: {exc.reason}") from None
        except smtplib.SMTPConnectError as exc:
            # The greeting: 421 (or another 4xx) says "not now"; a 5xx says "never".
            if 400 <= exc.smtp_code < 500:
                raise _TryAgain(
                    f"the SMTP server {self.where} is not taking mail now "
                    f"({exc.smtp_code} {_text(exc.smtp_error)})",
                    server_wide=True,
                ) from None
            raise SmtpError(
                f"the SMTP server {self.where} refused the connection "
                f"({exc.smtp_code} {_text(exc.smtp_error)})"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            _close_quietly(connection)
            raise _TryAgain(
                f"cannot reach the SMTP server {self.where}: {type(exc).__name__}: {exc}",
                server_wide=True,
            ) from None
        if connection.sock is not None:
            # The final dot goes out on its own, right after the message: without this,
            # Nagle's algorithm holds it back until the message is acknowledged (40 ms).
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections_opened += 1
        return connection

    def send(
        self,
        message: bytes,
        sender: str,
        recipients: Sequence[str],
        before_handover: Callable[[], None] | None = None,
        taken_back: Callable[[], None] | None = None,
    ) -> SmtpOutcome:
        """Send one message on the batch's connection; raises only for the whole batch.

        ``taken_back`` is called when the server answered the final dot with a 4xx after
        ``before_handover`` ran: it has not taken the message, and it will be tried again.
        """
        if self._resting is not None:
            return SmtpOutcome(DeliveryStatus.TEMPORARY, self._resting)
        detail, server_wide = "", False
        tries = 0
        for attempt in range(self.settings.retries + 1):
            if attempt:
                pause = self.settings.retry_wait * 2 ** (attempt - 1)
                if self._waited + pause > RETRY_BUDGET:
                    break
                self._waited += pause
                self.retried += 1
                self._sleep(pause)
            tries += 1
            try:
                return self._send_once(message, sender, recipients, before_handover, taken_back)
            except _TryAgain as again:
                detail = again.detail
                server_wide = again.server_wide
        if server_wide:
            self._resting = f"{detail}; not tried again in this run"
        return SmtpOutcome(
            DeliveryStatus.TEMPORARY, f"{detail} ({tries} {'try' if tries == 1 else 'tries'})"
        )

    def _send_once(
        self,
        message: bytes,
        sender: str,
        recipients: Sequence[str],
        before_handover: Callable[[], None] | None,
        taken_back: Callable[[], None] | None,
    ) -> SmtpOutcome:
        if self._connection is None:
            self._connection = self._connect()
        connection = self._connection
        handed_over = False
        try:
            self._set_timeout(self.settings.timeout)
            connection.ehlo_or_helo_if_needed()
            options = [f"SIZE={len(message)}"] if connection.has_extn("size") else []
            if connection.has_extn("pipelining"):
                mail, replies, data = _pipelined(connection, sender, recipients, options)
            else:
                mail, replies, data = _step_by_step(connection, sender, recipients, options)
            code, text = mail
            if code != 250:
                _end_empty_message(connection, data)
                self._abandon(code)
                answer = f"{code} {_text(text)}"
                if 400 <= code < 500:
                    raise _TryAgain(
                        f"the SMTP server {self.where} is not taking mail now ({answer})",
                        server_wide=True,
                    )
                raise SmtpError(
                    f"the SMTP server {self.where} refused the sender {sender!r} ({answer})",
                    hint="Use a sender address the server lets you send from ([company] email).",
                )
            refused: dict[str, tuple[int, str]] = {}
            for recipient, (code, text) in zip(recipients, replies, strict=False):
                if code == 421:
                    self._drop()
                    raise _TryAgain(f"the server closed the connection ({code} {_text(text)})")
                if code not in (250, 251):
                    refused[recipient] = (code, _text(text))
            if len(refused) == len(recipients):
                _end_empty_message(connection, data)
                self._abandon(0)
                outcome = _refusal("the server refused every recipient", refused.values())
                if outcome.status is DeliveryStatus.TEMPORARY:
                    raise _TryAgain(outcome.detail)
                return SmtpOutcome(outcome.status, outcome.detail, tuple(refused))
            assert data is not None  # asked once a recipient was taken
            code, text = data
            if code != 354:
                self._abandon(code)
                outcome = _refusal("the server refused the message", [(code, _text(text))])
                if outcome.status is DeliveryStatus.TEMPORARY:
                    raise _TryAgain(outcome.detail)
                return outcome
            body = _LEADING_DOT.sub(b"..", message)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            connection.send(body)
            crash_point("body")
            if not _line_still_up(connection):
                raise smtplib.SMTPServerDisconnected("the server closed the connection")
            if before_handover is not None:
                before_handover()
            handed_over = True
            # The longer limit is set before the dot leaves: its answer may come at once.
            self._set_timeout(self.settings.final_timeout)
            connection.send(b".\r\n")
            crash_point("handover")
            code, text = connection.getreply()
            self._set_timeout(self.settings.timeout)
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            if handed_over:
                return SmtpOutcome(
                    DeliveryStatus.UNCONFIRMED,
                    f"the connection ended after the end of the message, before the server "
                    f"answered ({_reason(exc)})",
                )
            raise _TryAgain(
                f"the connection was lost before the end of the message ({_reason(exc)})"
            ) from None
        except (_TryAgain, SmtpError):
            raise
        except BaseException:
            # Raised by before_handover (or an interrupt) in the middle of DATA: closing
            # the connection before the final dot makes the server drop the message.
            self._drop()
            raise
        if code == 250:
            detail = "accepted by the SMTP server"
            if refused:
                detail += "; refused: " + ", ".join(
                    f"{address} ({number} {answer})"
                    for address, (number, answer) in refused.items()
                )
            return SmtpOutcome(DeliveryStatus.SENT, detail, tuple(refused))
        outcome = _refusal("the server refused the message", [(code, _text(text))])
        if outcome.status is DeliveryStatus.TEMPORARY:
            if taken_back is not None:
                taken_back()
            if code == 421:
                self._drop()
            raise _TryAgain(outcome.detail)
        return outcome

    def _set_timeout(self, seconds: float) -> None:
        if self._connection is not None and self._connection.sock is not None:
            self._connection.sock.settimeout(seconds)

    def _abandon(self, code: int) -> None:
        """End the mail transaction after a refusal, so the next message starts clean."""
        if code == 421 or self._connection is None:
            self._drop()  # "closing the channel": the server ends the connection
            return
        try:
            self._connection.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


_Reply = tuple[int, bytes]


def _step_by_step(
    connection: smtplib.SMTP, sender: str, recipients: Sequence[str], options: list[str]
) -> tuple[_Reply, list[_Reply], _Reply | None]:
    """MAIL FROM, each RCPT TO, DATA, each waiting for its answer; stops where going on is
    of no use (the sender refused, the server closing, no recipient taken)."""
    mail = connection.mail(sender, options)
    replies: list[_Reply] = []
    if mail[0] != 250:
        return mail, replies, None
    for recipient in recipients:
        replies.append(connection.rcpt(recipient))
        if replies[-1][0] == 421:
            return mail, replies, None
    if all(code not in (250, 251) for code, _ in replies):
        return mail, replies, None
    return mail, replies, connection.docmd("data")


def _pipelined(
    connection: smtplib.SMTP, sender: str, recipients: Sequence[str], options: list[str]
) -> tuple[_Reply, list[_Reply], _Reply | None]:
    """MAIL FROM, the RCPT TOs and DATA in one write, then their answers in order (RFC
    2920, where the server offers PIPELINING): one round trip for the envelope instead of
    two or more. The answers are judged as one by one; a DATA the server took although
    nothing else was is ended with an empty message (_end_empty_message)."""
    extra = "".join(f" {option}" for option in options)
    commands = [f"MAIL FROM:{smtplib.quoteaddr(sender)}{extra}\r\n"]
    commands += [f"RCPT TO:{smtplib.quoteaddr(recipient)}\r\n" for recipient in recipients]
    commands.append("DATA\r\n")
    connection.send("".join(commands))
    mail = connection.getreply()
    replies: list[_Reply] = []
    if mail[0] == 421:
        return mail, replies, None  # closing: the other answers never come
    for _ in recipients:
        replies.append(connection.getreply())
        if replies[-1][0] == 421:
            return mail, replies, None
    return mail, replies, connection.getreply()


def _end_empty_message(connection: smtplib.SMTP, data: _Reply | None) -> None:
    """After a pipelined DATA the server took while refusing the sender or every
    recipient, end the message at once: it has no one to go to (RFC 2920 section 3.1)."""
    if data is not None and data[0] == 354:
        connection.send(b".\r\n")
        connection.getreply()


def _close_quietly(connection: smtplib.SMTP | None) -> None:
    if connection is not None:
        connection.close()


def _line_still_up(connection: smtplib.SMTP) -> bool:
    """Whether the connection is still open, looked at just before the final dot.

    A server says nothing while a message comes in; anything to read now is its end (an
    EOF, a reset, a 421 before closing). Sending the dot then would turn a message safe to
    send again into an unconfirmed one.
    """
    import select

    sock = connection.sock
    if sock is None:
        return False
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "no answer in time"
    return str(exc) or type(exc).__name__


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _refusal(what: str, answers: object) -> SmtpOutcome:
    codes = [(int(code), _text(text)) for code, text in answers]  # type: ignore[attr-defined]
    permanent = any(500 <= code < 600 for code, _ in codes) and not any(
        400 <= code < 500 for code, _ in codes
    )
    detail = f"{what}: " + "; ".join(f"{code} {text}" for code, text in codes)
    status = DeliveryStatus.PERMANENT if permanent else DeliveryStatus.TEMPORARY
    return SmtpOutcome(status, detail)
