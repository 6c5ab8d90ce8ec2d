"""A real SMTP server on loopback (aiosmtpd), with STARTTLS, implicit TLS and AUTH on demand.

Addresses starting with ``nobody@`` are refused at RCPT (550), ``later@`` with a 451;
a message whose subject holds ``REJECT`` is refused after DATA (554), as a server reports
a bounce at once. Everything accepted is kept in ``received``.

Faults are scripted per step, each used once, in order: ``server.fail("MAIL", "451 4.3.2
Try later")``. The steps are ``MAIL``, ``RCPT``, ``DATA`` (the command), ``BODY`` (while
the message comes in: only ``DROP``) and ``END`` (the answer to the final dot). ``DROP``
closes the connection without an answer; at ``END`` the message is kept first, as a
server that took it and lost the line would. ``HOLD`` (at ``END``) keeps the message and
never answers until the server stops.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

USER, PASSWORD = "kindly", "s3cret-smtp-password"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    #: The client's address and port: which connection brought it.
    peer: tuple[str, int] | None = None

    @property
    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


DROP, HOLD = "DROP", "HOLD"


@dataclass
class Handler:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: dict[str, list[str]] = field(default_factory=dict)
    #: How often each step was reached, faults included.
    reached: dict[str, int] = field(default_factory=dict)
    #: Called (in the server's thread) when a message's final dot has come in.
    on_end: Any = None
    #: Offer PIPELINING in the answer to EHLO.
    pipelining: bool = False
    #: Connections taken at once; more are greeted with 421 and closed (None: any).
    max_connections: int | None = None
    #: Connections open now, and the most there were at once.
    open_connections: int = 0
    most_connections: int = 0
    released: threading.Event = field(default_factory=threading.Event)

    def fault(self, step: str) -> str | None:
        with self.lock:
            self.reached[step] = self.reached.get(step, 0) + 1
            queue = self.faults.get(step)
            return queue.pop(0) if queue else None

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            return [responses[0], "250-PIPELINING", *responses[1:]]
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        fault = self.fault("MAIL")
        if fault == DROP and server.transport is not None:
            server.transport.close()
            return "421 closing"
        if fault:
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        fault = self.fault("RCPT")
        if fault:
            return fault
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user here"
        if address.startswith("later@"):
            return "451 4.3.0 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        data = bytes(envelope.original_content or envelope.content)
        if self.on_end is not None:
            self.on_end()
        fault = self.fault("END")
        if fault and fault not in (DROP, HOLD):
            return fault
        if b"REJECT" in data.split(b"\r\n\r\n", 1)[0]:
            return "554 5.7.1 Message rejected as spam"
        with self.lock:
            peer = (session.peer[0], session.peer[1]) if session.peer else None
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), data, peer))
        if fault == DROP and server.transport is not None:
            server.transport.close()
        elif fault == HOLD:
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait)
        return "250 2.0.0 Queued"


class _FaultySmtp(SMTP):
    """aiosmtpd's server, with faults at the DATA command and in the message's body, and
    a limit on connections at once (as providers have)."""

    def connection_made(self, transport: Any) -> None:
        handler = self.event_handler
        with handler.lock:
            handler.open_connections += 1
            self._over_limit = (
                handler.max_connections is not None
                and handler.open_connections > handler.max_connections
            )
            if not self._over_limit:
                handler.most_connections = max(handler.most_connections, handler.open_connections)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        with self.event_handler.lock:
            self.event_handler.open_connections -= 1
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._over_limit and self.transport is not None:
            await self.push("421 4.7.0 Too many connections, try again later")
            self.transport.close()
            return
        await super()._handle_client()

    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
        fault = handler.fault("DATA")
        if fault == DROP and self.transport is not None:
            self.transport.close()
            return
        if fault:
            await self.push(fault)
            return
        taking = self.envelope is not None and bool(self.envelope.rcpt_tos)
        if handler.fault("BODY") == DROP and taking and self.transport is not None:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")  # the first line, then the line drops
            self.transport.close()
            return
        await super().smtp_DATA(arg)


class _FaultyController(Controller):
    def factory(self) -> SMTP:
        return _FaultySmtp(self.handler, **self.SMTP_kwargs)


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made here (no files are committed)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class SmtpServer:
    controller: Controller
    handler: Handler
    port: int
    client_context: ssl.SSLContext | None
    mode: str

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def fail(self, step: str, *answers: str) -> None:
        """Answer the next ``len(answers)`` times ``step`` is reached with these."""
        with self.handler.lock:
            self.handler.faults.setdefault(step, []).extend(answers)

    def stop(self) -> None:
        self.handler.released.set()
        self.controller.stop()


def start_smtp(
    folder: Path,
    mode: str = "plain",
    *,
    pipelining: bool = False,
    max_connections: int | None = None,
) -> SmtpServer:
    """``mode``: "plain", "starttls" (STARTTLS and AUTH required) or "tls" (implicit TLS + AUTH).
    ``pipelining``: the server offers PIPELINING (RFC 2920), as Postfix does; aiosmtpd
    reads a pipelined envelope line by line as it would one command at a time."""
    handler = Handler(pipelining=pipelining, max_connections=max_connections)
    with socket.socket() as probe:  # aiosmtpd checks it is up by connecting: needs a port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": port}
    client_context = None
    if mode in ("starttls", "tls"):
        cert, key = self_signed(folder)
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        client_context = ssl.create_default_context(cafile=str(cert))
        if mode == "starttls":
            kwargs.update(
                authenticator=_authenticator,
                auth_require_tls=True,
                tls_context=server_context,
                require_starttls=True,
            )
        else:
            # Implicit TLS: aiosmtpd does not count it as TLS for auth_require_tls.
            kwargs.update(
                authenticator=_authenticator, auth_require_tls=False, ssl_context=server_context
            )
    controller = _FaultyController(handler, **kwargs)
    controller.start()
    return SmtpServer(controller, handler, port, client_context, mode)
