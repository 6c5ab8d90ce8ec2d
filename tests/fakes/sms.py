"""Fake SMS gateways on loopback: Twilio's Messages API and MessageBird's, in their shapes.

A number ending in 0000 is refused as invalid (Twilio 400 code 21211, MessageBird 422
code 9), as the real gateways refuse a number they cannot deliver to. ``fail_next`` queues
a 503 or 429. Everything accepted is kept in ``messages``. Both take ``token`` (TOKEN unless
changed: the old one is then refused).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.http_server import base_url, serve, stop

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
TOKEN = "sms-gateway-token-0123456789"


@dataclass
class Sent:
    gateway: str
    to: str
    sender: str
    body: str


@dataclass
class FakeSmsGateways:
    messages: list[Sent] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)
    calls: int = 0
    #: The token both gateways accept.
    token: str = TOKEN
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        def handle(
            method: str, path: str, headers: dict[str, str], body: bytes
        ) -> tuple[int, Any, dict[str, str]]:
            status, payload = self.handle(path, headers, body)
            return status, payload, {}

        self.server = serve(handle)
        return self.url

    @property
    def url(self) -> str:
        assert self.server is not None
        return base_url(self.server)

    def stop(self) -> None:
        stop(self.server)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        self.calls += 1
        if self.faults:
            return self.faults.pop(0), {"message": "Service unavailable"}
        if path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json":
            expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{self.token}".encode()).decode()
            if headers.get("Authorization") != expected:
                return 401, {"code": 20003, "message": "Authenticate", "status": 401}
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            if not form.get("To", "").startswith("+") or form["To"].endswith("0000"):
                return 400, {
                    "code": 21211,
                    "message": f"The 'To' number {form.get('To')} is not a valid phone number.",
                    "status": 400,
                }
            self.messages.append(Sent("twilio", form["To"], form["From"], form["Body"]))
            return 201, {
                "sid": "SM" + uuid.uuid4().hex,
                "status": "queued",
                "to": form["To"],
                "from": form["From"],
                "body": form["Body"],
            }
        if path == "/messages":
            if headers.get("Authorization") != f"AccessKey {self.token}":
                return 401, {"errors": [{"code": 2, "description": "Request not allowed"}]}
            data = json.loads(body)
            number = str(data["recipients"][0])
            if number.endswith("0000"):
                return 422, {
                    "errors": [
                        {
                            "code": 9,
                            "description": "no (correct) recipients found",
                            "parameter": "recipients",
                        }
                    ]
                }
            self.messages.append(
                Sent("messagebird", "+" + number, data["originator"], data["body"])
            )
            return 201, {
                "id": uuid.uuid4().hex,
                "body": data["body"],
                "recipients": {"totalCount": 1, "totalSentCount": 1, "items": []},
            }
        return 404, {"message": "not found"}
