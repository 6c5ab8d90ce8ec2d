"""Sending e-mail by SMTP: one connection for a batch, each message's fate kept apart.

- STARTTLS (port 587), implicit TLS (465) or none (a local relay), with AUTH when a user is
  set; the password only ever comes from ``KINDLY_SMTP_PASSWORD``.
- One connection serves the whole batch; a dropped one is opened again once.
- Every answer is sorted here: a 5xx refusal of the recipient or of the message (a bounce
  the server reports at once) is **permanent**: the reminder falls back to the client's
  next channel; a 4xx is **temporary**: the next run tries again; a refused login or
  sender stops the batch, since every message would fail alike.
- ``before_handover`` runs just before the final ``.`` of the DATA command goes out:
  the caller records there that the server may now have the message. A crash before that
  point never delivered anything; after it, the server most likely did (see plugin.run).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from plugin.config.settings import PASSWORD_VARIABLE, SmtpSettings
from plugin.core.vocabulary import DeliveryStatus
from plugin.errors import KindlyError

__all__ = ["SmtpError", "SmtpMailer", "SmtpOutcome", "SmtpSettings"]


class SmtpError(KindlyError):
    """The batch cannot go on: the server cannot be reached, or refuses our login or sender."""


@dataclass(frozen=True)
class SmtpOutcome:
    status: DeliveryStatus
    detail: str
    refused: tuple[str, ...] = ()


class _HookedData:
    """Calls ``before_handover`` right before the message's final line goes out."""

    before_handover: Callable[[], None] | None = None
    _in_data = False

    def data(self, msg: Any) -> Any:
        self._in_data = True
        try:
            return super().data(msg)  # type: ignore[misc]
        finally:
            self._in_data = False

    def send(self, s: Any) -> None:
        final = self._in_data and isinstance(s, bytes) and s.endswith(b"\r\n.\r\n")
        if final and self.before_handover is not None:
            self.before_handover()
        super().send(s)  # type: ignore[misc]
        if final:
            from plugin.deliver.crash import crash_point

            crash_point("handover")


class _SMTP(_HookedData, smtplib.SMTP):
    pass


class _SMTPS(_HookedData, smtplib.SMTP_SSL):
    pass


class SmtpMailer:
    """Use as a context manager around a batch; :meth:`send` each message."""

    def __init__(self, settings: SmtpSettings, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._connection: _SMTP | _SMTPS | None = None
        self.connections_opened = 0

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

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                self._connection.close()
            self._connection = None

    def _connect(self) -> _SMTP | _SMTPS:
        s = self.settings
        where = f"{s.host}:{s.port}"
        try:
            connection: _SMTP | _SMTPS
            if s.security == "tls":
                connection = _SMTPS(s.host, s.port, timeout=s.timeout, context=self.ssl_context)
            else:
                connection = _SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    connection.starttls(context=self.ssl_context)
            if s.username:
                if not s.password:
                    raise SmtpError(
                        f"the SMTP server {where} needs a password for {s.username!r}",
                        hint=f"Set {PASSWORD_VARIABLE}.",
                    )
                connection.login(s.username, s.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise SmtpError(
                f"the SMTP server {where} refused the login of {s.username!r} ({exc.smtp_code})",
                hint=f"Check [smtp] username and {PASSWORD_VARIABLE}.",
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            missing = "AUTH" if "AUTH" in str(exc) else "STARTTLS"
            raise SmtpError(
                f"the SMTP server {where} offers no {missing}",
                hint='Check [smtp] security ("starttls" on 587, "tls" on 465) and username.',
            ) from None
        except ssl.SSLError as exc:
            raise SmtpError(f"TLS with the SMTP server {where} failed: {exc.reason}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpError(
                f"cannot reach the SMTP server {where}: {type(exc).__name__}: {exc}",
                hint="Kindly tries again on the next run.",
            ) from None
        self.connections_opened += 1
        return connection

    def send(
        self,
        message: bytes,
        sender: str,
        recipients: Sequence[str],
        before_handover: Callable[[], None] | None = None,
    ) -> SmtpOutcome:
        """Send one message on the batch's connection; never raises for this message alone."""
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = self._connect()
            connection = self._connection
            handed_over = False

            def hand_over() -> None:
                nonlocal handed_over
                if before_handover is not None:
                    before_handover()
                handed_over = True

            connection.before_handover = hand_over
            try:
                refused = connection.sendmail(sender, list(recipients), message)
            except smtplib.SMTPRecipientsRefused as exc:
                return _refusal(
                    "the server refused every recipient",
                    exc.recipients.values(),
                    tuple(exc.recipients),
                )
            except smtplib.SMTPDataError as exc:
                return _refusal("the server refused the message", [(exc.smtp_code, exc.smtp_error)])
            except smtplib.SMTPSenderRefused as exc:
                raise SmtpError(
                    f"the SMTP server refused the sender {sender!r} ({exc.smtp_code}: "
                    f"{_text(exc.smtp_error)})",
                    hint="Use a sender address the server lets you send from ([company] email).",
                ) from None
            except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
                self._connection = None
                if handed_over:
                    return SmtpOutcome(
                        DeliveryStatus.UNCONFIRMED,
                        f"the connection dropped after the message was handed over ({exc})",
                    )
                if attempt == 1:
                    continue  # the batch's connection went stale: open a new one, once
                return SmtpOutcome(DeliveryStatus.TEMPORARY, f"the connection dropped: {exc}")
            except smtplib.SMTPResponseException as exc:
                return _refusal("the server answered", [(exc.smtp_code, exc.smtp_error)])
            except BaseException:
                # Raised by before_handover (or an interrupt) in the middle of DATA: this
                # connection is in no state for another message.
                self._connection = None
                connection.close()
                raise
            finally:
                connection.before_handover = None
            detail = "accepted by the SMTP server"
            if refused:
                detail += "; refused: " + ", ".join(
                    f"{address} ({code} {_text(text)})" for address, (code, text) in refused.items()
                )
            return SmtpOutcome(DeliveryStatus.SENT, detail, tuple(refused))
        raise AssertionError("unreachable")  # pragma: no cover


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _refusal(what: str, answers: Any, refused: tuple[str, ...] = ()) -> SmtpOutcome:
    codes = [(int(code), _text(text)) for code, text in answers]
    permanent = any(500 <= code < 600 for code, _ in codes)
    detail = f"{what}: " + "; ".join(f"{code} {text}" for code, text in codes)
    status = DeliveryStatus.PERMANENT if permanent else DeliveryStatus.TEMPORARY
    return SmtpOutcome(status, detail, refused)
