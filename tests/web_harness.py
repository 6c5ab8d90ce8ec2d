"""The web app on a demo workspace that mails through a real SMTP server (aiosmtpd), with
one account, for the web tests (Flask's test client, and a real browser)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from plugin.app.cli.base import open_workspaces
from plugin.app.web import create_app, organisation_id
from plugin.app.web.accounts import Accounts
from tests.fakes.smtp import SmtpServer

NAME, PASSWORD = "anouk", "correct horse battery"
#: The demo's clock (tests/conftest.py DEMO_NOW) a few hours on: first reminders are due.
AT = datetime.fromisoformat("2026-11-22T13:00:00+00:00")


@dataclass
class WebApp:
    app: Flask
    config: Path
    org: str
    smtp: SmtpServer


def web_app(workspace: Path, smtp: SmtpServer, at: datetime = AT) -> WebApp:
    config = workspace / "kindly.toml"
    text = config.read_text(encoding="utf-8").replace(
        "[delivery]\n", '[delivery]\nemail_via = "smtp"\n', 1
    )
    text += f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\nretry_wait = 0\n'
    config.write_text(text, encoding="utf-8")
    (kindly,) = open_workspaces(config)
    Accounts(kindly.store).add(NAME, PASSWORD, ["*"], at - timedelta(days=1))
    org = organisation_id(kindly.source_id)
    kindly.store.close()
    return WebApp(create_app(config, clock=lambda: at), config, org, smtp)


def token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "a form with its CSRF token"
    return found.group(1)


def sign_in(client: FlaskClient, name: str = NAME, password: str = PASSWORD) -> int:
    page = client.get("/login").get_data(as_text=True)
    answer = client.post(
        "/login", data={"name": name, "password": password, "csrf_token": token(page)}
    )
    return answer.status_code


def finish_syncs(app: Flask) -> None:
    """Wait for the syncs the app started beside their requests (threads) to end."""
    for worker in app.extensions.get("kindly.syncs", []):
        worker.join(timeout=120)
        assert not worker.is_alive(), "the sync did not end"


def sync(client: FlaskClient, app: Flask, org: str) -> str:
    """Press Sync now, let it finish, and return the overview it leads to."""
    page = client.get(f"/o/{org}/").get_data(as_text=True)
    answer = client.post(f"/o/{org}/sync", data={"csrf_token": token(page)})
    assert answer.status_code == 303, answer.status_code
    assert answer.headers["Location"] == f"/o/{org}/sync"
    finish_syncs(app)
    return client.get(f"/o/{org}/").get_data(as_text=True)
