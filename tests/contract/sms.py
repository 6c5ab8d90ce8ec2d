"""The contract every SMS gateway passes: ``sms_gateway_contract(factory)``.

A message is sent (handed over once, then accepted as written); a number the gateway
refuses is a permanent failure (the reminder falls back to the next channel); a 429 or a
5xx is temporary and asked once (the next run tries again); a connection dropped after
the request went out is unconfirmed (repeating it could send it twice); a wrong token is
an AuthError, with the token in neither the message nor a repr.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from integrations.http import AuthError

from .generate import suite
from .harness import HarnessFactory, SmsGatewayHarness
from .network import MisbehavingServer

__all__ = ["SmsGatewayContract", "sms_gateway_contract"]

TEXT = "Herinnering: factuur NS-1"


class SmsGatewayContract:
    factory: ClassVar[HarnessFactory[SmsGatewayHarness]]

    @pytest.fixture
    def sms(self, tmp_path: Path) -> Iterator[SmsGatewayHarness]:
        with self.factory(tmp_path) as made:
            yield made

    def test_a_message_is_sent(self, sms: SmsGatewayHarness) -> None:
        handed: list[str] = []
        sent = sms.gateway.send(sms.number, TEXT, "k1", lambda: handed.append("x"))
        assert sent.status == "sent" and handed == ["x"]
        assert sms.accepted() == [(sms.number, TEXT)]
        assert sms.calls() == 1

    def test_a_refused_number_is_permanent(self, sms: SmsGatewayHarness) -> None:
        refused = sms.gateway.send(sms.refused_number, "x", "k2", lambda: None)
        assert refused.status == "permanent"
        assert sms.accepted() == [] and sms.calls() == 1

    @pytest.mark.parametrize(
        ("status", "outcome"),
        [
            (429, "temporary"),
            (503, "temporary"),
            (500, "unconfirmed"),
            (502, "unconfirmed"),
            (504, "unconfirmed"),
        ],
    )
    def test_429_and_5xx_are_asked_once_and_a_server_error_is_in_doubt(
        self, sms: SmsGatewayHarness, status: int, outcome: str
    ) -> None:
        """429 and 503 say the message was not taken: the next run sends it. A 500 or 502
        may come after the gateway took it: unconfirmed, never sent again by itself."""
        sms.fail_next(status)
        busy = sms.gateway.send(sms.number, "x", "k3", lambda: None)
        assert busy.status == outcome
        assert sms.calls() == 1, "a temporary failure waits for the next run, not a retry now"
        assert sms.accepted() == []
        # The rest of this run's messages are not tried: the gateway is down or busy.
        handed: list[str] = []
        rest = sms.gateway.send(sms.number, "y", "k5", lambda: handed.append("x"))
        assert rest.status == "temporary" and "not tried again in this run" in rest.detail
        assert sms.calls() == 1 and handed == [], "nothing handed over, nothing asked"
        # The next run's try goes through.
        assert sms.with_token(sms.token).send(sms.number, "x", "k3", lambda: None).status == "sent"

    def test_a_dropped_connection_is_unconfirmed(self, sms: SmsGatewayHarness) -> None:
        server = MisbehavingServer("hang up")
        sms.point_at(server.url)
        try:
            dropped = sms.gateway.send(sms.number, "x", "k4", lambda: None)
        finally:
            server.close()
        assert dropped.status == "unconfirmed", "it may have gone: not sent again blindly"
        assert server.connections == 1

    def test_a_refused_connection_is_temporary(self, sms: SmsGatewayHarness) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        sms.point_at(f"http://127.0.0.1:{port}/api")
        refused = sms.gateway.send(sms.number, "x", "k6", lambda: None)
        assert refused.status == "temporary", "nothing reached the gateway: send it next run"

    def test_a_wrong_token_is_an_auth_error_without_the_token(self, sms: SmsGatewayHarness) -> None:
        wrong = sms.with_token("wrong-token-value")
        with pytest.raises(AuthError) as caught:
            wrong.send(sms.number, "x", "k5", lambda: None)
        error = caught.value
        text = str(error) + repr(error) + str(error.hint or "") + repr(wrong)
        text += repr(getattr(wrong, "http", ""))
        assert "wrong-token-value" not in text
        assert error.status == 401 and sms.accepted() == []


def sms_gateway_contract(factory: HarnessFactory[SmsGatewayHarness]) -> type:
    """The SMS gateway contract for ``factory``'s gateway, as a test class: assign it to a
    ``Test...`` name in the gateway's test file."""
    return suite(SmsGatewayContract, factory)
