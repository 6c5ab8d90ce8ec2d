"""The SMS gateways (Twilio, MessageBird) against fakes of both on loopback: the SMS gateway
and HTTP contracts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from integrations.sms.gateways import MessageBirdGateway, SmsGatewaySettings, TwilioGateway
from tests.contract import (
    HarnessFactory,
    HttpHarness,
    SmsGatewayHarness,
    harness_factory,
    http_contract,
    sms_gateway_contract,
)
from tests.fakes.sms import ACCOUNT, TOKEN, FakeSmsGateways

Gateway = type[TwilioGateway] | type[MessageBirdGateway]

ASKS_ONCE = {
    "paging": "an SMS gateway sends one message a call",
    "retries": "an SMS gateway asks once: the next run tries again, never twice in one",
}


def sms_harness(gateway_class: Gateway) -> HarnessFactory[SmsGatewayHarness]:
    @harness_factory(gateway_class)
    def make(folder: Path) -> Iterator[SmsGatewayHarness]:
        fake = FakeSmsGateways()
        fake.start()
        settings = SmsGatewaySettings("Noordlicht", account=ACCOUNT, api_url=fake.url)
        gateway = gateway_class(settings, TOKEN)

        def point_at(url: str) -> None:
            gateway.settings = replace(gateway.settings, api_url=url)

        try:
            yield SmsGatewayHarness(
                gateway=gateway,
                with_token=lambda token: gateway_class(settings, token),
                token=TOKEN,
                accepted=lambda: [(m.to, m.body) for m in fake.messages],
                fail_next=fake.faults.append,
                calls=lambda: fake.calls,
                point_at=point_at,
            )
        finally:
            gateway.close()
            fake.stop()

    return make


def sms_http_harness(gateway_class: Gateway) -> HarnessFactory[HttpHarness]:
    @harness_factory(gateway_class, lacks=ASKS_ONCE)
    def make(folder: Path) -> Iterator[HttpHarness]:
        fake = FakeSmsGateways()
        fake.start()
        settings = SmsGatewaySettings("Noordlicht", account=ACCOUNT, api_url=fake.url)
        gateway = gateway_class(settings, TOKEN)

        def point_at(url: str) -> None:
            gateway.settings = replace(gateway.settings, api_url=url)

        def revoke() -> None:
            fake.token = "a-new-gateway-token"

        def send() -> int:
            """One message: 1 if the gateway took it."""
            outcome = gateway.send("+31612345678", "Herinnering", "k1", lambda: None)
            return 1 if outcome.status == "sent" else 0

        try:
            yield HttpHarness(
                connector=gateway,
                time=None,  # it asks once: nothing to sleep on
                seed=lambda count: None,  # nothing to put on the gateway
                fail_list_call=lambda status, headers, times: fake.faults.extend([status] * times),
                revoke_access=revoke,
                list_calls=lambda: fake.calls,
                point_at=point_at,
                secrets=lambda: [TOKEN],
                read=send,
            )
        finally:
            gateway.close()
            fake.stop()

    return make


TestTwilioContract = sms_gateway_contract(sms_harness(TwilioGateway))
TestTwilioHttp = http_contract(sms_http_harness(TwilioGateway))
TestMessageBirdContract = sms_gateway_contract(sms_harness(MessageBirdGateway))
TestMessageBirdHttp = http_contract(sms_http_harness(MessageBirdGateway))
