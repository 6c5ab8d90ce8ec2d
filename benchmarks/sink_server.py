"""aiosmtpd's Sink (accepts every message and drops it), offering PIPELINING as Postfix,
Exim and the big providers do: `python -m aiosmtpd -c sink_server.PipeliningSink`."""

from __future__ import annotations

from typing import Any

from aiosmtpd.handlers import Sink


class PipeliningSink(Sink):
    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [responses[0], "250-PIPELINING", *responses[1:]]
