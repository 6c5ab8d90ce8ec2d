"""SMS gateways: Twilio's Messages API and MessageBird's, through the shared HTTP module.

Both take an E.164 number and a text. A refusal of the number (Twilio 400 with code 21211
or 21614, MessageBird 422) is permanent: the reminder falls back to the next channel. A
429, a 5xx or a network failure is temporary. A refused credential stops the batch.
Each gateway's secret comes from ``KINDLY_SMS_TOKEN`` and never appears in a message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Self

from integrations.base import ConnectorSettings, SmsGatewayConnector, Workspace
from integrations.http import AuthError, HttpClient, HttpError, delivery_status
from plugin.core.vocabulary import DeliveryStatus
from plugin.errors import ConfigError
from plugin.ports import Outcome

__all__ = ["MessageBirdGateway", "SmsGatewaySettings", "TwilioGateway"]

TOKEN_VARIABLE = "KINDLY_SMS_TOKEN"  # noqa: S105 (a variable name)


@dataclass(frozen=True)
class SmsGatewaySettings(ConnectorSettings):
    """[sms] gateway = "twilio" or "messagebird": who sends, as whom (the token only in
    KINDLY_SMS_TOKEN)."""

    sender: str = field(
        metadata={
            "schema": {
                "minLength": 1,
                "maxLength": 16,
                "description": "A number in E.164 or an alphanumeric sender id",
            }
        }
    )
    account: str | None = field(
        default=None, metadata={"schema": {"minLength": 1, "description": "Twilio's account SID"}}
    )
    api_url: str | None = field(
        default=None,
        metadata={
            "schema": {
                "pattern": "^https?://",
                "description": "The gateway's address, for a test server",
            }
        },
    )


class _Gateway(SmsGatewayConnector):
    name: ClassVar[str] = ""
    auth: ClassVar[str] = "api_key"
    settings_type: ClassVar[type[ConnectorSettings]] = SmsGatewaySettings
    secret_variables: ClassVar[Mapping[str, str]] = {TOKEN_VARIABLE: "the gateway's token"}

    @classmethod
    def open(cls, workspace: Workspace) -> Self:
        settings = cls.settings_of(workspace.settings)
        assert isinstance(settings, SmsGatewaySettings)
        token = os.environ.get(TOKEN_VARIABLE)
        if not token:
            raise ConfigError(
                f"SMS through {cls.name} needs its token in {TOKEN_VARIABLE}",
                hint="Twilio: the auth token; MessageBird: the live access key.",
            )
        cls.check(settings)
        return cls(settings, token)

    @classmethod
    def check(cls, settings: SmsGatewaySettings) -> None:
        """Refuse settings this gateway cannot send with."""

    def __init__(self, settings: SmsGatewaySettings, token: str, http: HttpClient | None = None):
        self.settings = settings
        self._token = token
        # Retries belong to the next run: a gateway that answers slowly must not be asked
        # twice for the same message within one.
        self.http = http or HttpClient(self.name, secrets=lambda: [token], attempts=1)
        #: Set once the gateway turned the run away for now (see _outcome).
        self._resting: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sender={self.settings.sender!r})"

    def close(self) -> None:
        self.http.close()

    def _outcome(self, call: Callable[[], str], hand_over: Callable[[], None]) -> Outcome:
        if self._resting is not None:
            return Outcome(DeliveryStatus.TEMPORARY, self._resting)
        hand_over()
        try:
            return Outcome(DeliveryStatus.SENT, call())
        except AuthError:
            raise  # every message would fail alike: the batch stops
        except HttpError as exc:
            # Asked once, without an idempotency key: an answer that never came may
            # still mean the gateway took it.
            status = delivery_status(exc, repeatable=False)
            if status is DeliveryStatus.UNCONFIRMED and exc.status is None:
                return Outcome(status, f"{self.name} did not answer: {exc}")
            if status is DeliveryStatus.UNCONFIRMED:
                # A server error that may have come after the message was taken (500,
                # 502, 504): not sent again, and the failing gateway is left alone.
                self._resting = f"{exc}; {self.name} not tried again in this run"
                return Outcome(status, f"{self.name} may have taken it before failing: {exc}")
            if status is DeliveryStatus.TEMPORARY and (exc.status is None or exc.status >= 429):
                # The gateway is down, unreachable or asks us to slow down: the rest of
                # this run's messages wait for the next run rather than knock again.
                self._resting = f"{exc}; {self.name} not tried again in this run"
            return Outcome(status, str(exc))


class TwilioGateway(_Gateway):
    name: ClassVar[str] = "twilio"
    title: ClassVar[str] = "Twilio"

    @classmethod
    def check(cls, settings: SmsGatewaySettings) -> None:
        if not settings.account:
            raise ConfigError("[sms] account is missing: Twilio's account SID (AC…)")

    def send(
        self, number: str, text: str, reference: str, hand_over: Callable[[], None]
    ) -> Outcome:
        account = self.settings.account or ""
        base = (self.settings.api_url or "https://api.twilio.com").rstrip("/")

        def call() -> str:
            response = self.http.request(
                "POST",
                f"{base}/2010-04-01/Accounts/{account}/Messages.json",
                data={"To": number, "From": self.settings.sender, "Body": text},
                auth=(account, self._token),
            )
            data = response.json()
            return f"accepted by Twilio as {data.get('sid')} ({data.get('status')})"

        return self._outcome(call, hand_over)


class MessageBirdGateway(_Gateway):
    name: ClassVar[str] = "messagebird"
    title: ClassVar[str] = "MessageBird"

    def send(
        self, number: str, text: str, reference: str, hand_over: Callable[[], None]
    ) -> Outcome:
        base = (self.settings.api_url or "https://rest.messagebird.com").rstrip("/")

        def call() -> str:
            response = self.http.request(
                "POST",
                f"{base}/messages",
                json={
                    "originator": self.settings.sender,
                    "recipients": [number.lstrip("+")],
                    "body": text,
                    "reference": reference,
                },
                headers={"Authorization": f"AccessKey {self._token}"},
            )
            data = response.json()
            return f"accepted by MessageBird as {data.get('id')}"

        return self._outcome(call, hand_over)
