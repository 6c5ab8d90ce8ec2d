"""The connections page through Flask's test client, against the fake Xero on loopback:
the connect button's OAuth round trip (PKCE, state used once), choosing among several
organisations, the page's status, disconnecting, and who may do it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from flask.testing import FlaskClient

from plugin.app.web import create_app
from plugin.app.web.accounts import Accounts
from plugin.app.wiring import load_settings, open_store
from tests.fakes.xero import FakeXero
from tests.test_xero_cli import write_config
from tests.web_harness import AT, NAME, PASSWORD, sign_in, sync, token
from tests.xero_harness import seed_small_ledger


@pytest.fixture
def fake() -> Iterator[FakeXero]:
    server = FakeXero()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def config(fake: FakeXero, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KINDLY_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.chdir(tmp_path)
    seed_small_ledger(fake)
    path = write_config(tmp_path, fake)
    store = open_store(load_settings(path))
    accounts = Accounts(store)
    accounts.add(NAME, PASSWORD, ["*"], AT - timedelta(days=1))
    accounts.add("viewer", PASSWORD, ["xero:someone-else"], AT - timedelta(days=1))
    store.close()
    return path


@pytest.fixture
def client(config: Path) -> FlaskClient:
    return create_app(config, clock=lambda: AT).test_client()


def _press(client: FlaskClient, path: str) -> requests.Response:
    """Press the connect button, and follow the platform's sign-in as a browser would: the
    fake consents at once and sends the browser back with a code."""
    page = client.get("/connections").get_data(as_text=True)
    pressed = client.post(path, data={"csrf_token": token(page)})
    assert pressed.status_code == 302
    return requests.get(pressed.headers["Location"], allow_redirects=False, timeout=10)


def _back(client: FlaskClient, answer: requests.Response) -> tuple[int, str]:
    back = urlsplit(answer.headers["Location"])
    assert back.path == "/connections/callback"
    landed = client.get(f"{back.path}?{back.query}", follow_redirects=True)
    return landed.status_code, landed.get_data(as_text=True)


def test_a_user_connects_xero_in_the_browser_and_the_state_is_used_once(
    config: Path, fake: FakeXero
) -> None:
    app = create_app(config, clock=lambda: AT)
    client = app.test_client()
    assert sign_in(client) == 302
    # Not connected yet: the home page leads to the connect button, saying why.
    home = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Xero is not connected" in home
    assert "Connect to Xero" in home
    answer = _press(client, "/connections/xero/connect")
    sign_in_query = parse_qs(urlsplit(answer.request.url or "").query)
    assert sign_in_query["code_challenge_method"] == ["S256"]
    assert "code_verifier" not in sign_in_query, "the verifier never leaves Kindly"
    status, page = _back(client, answer)
    assert status == 200
    assert "Connected Xero: Noordlicht Studio." in page
    assert "Disconnect Xero" in page
    # The same answer a second time (a replay, a reload) is refused: the state is used up.
    back = urlsplit(answer.headers["Location"])
    assert client.get(f"{back.path}?{back.query}").status_code == 400
    # Now the organisation opens and syncs from Xero.
    overview = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Not synced yet" in overview
    assert "Xero organisation Noordlicht Studio" in overview
    # After a sync, the page says what Xero said is left of the day's allowance.
    fake.day_remaining = 4321
    org = re.search(r'href="/o/([^"/]+)/"', overview)
    assert org, overview
    sync(client, app, org.group(1))
    left = fake.day_remaining
    assert left < 4321
    connections = client.get("/connections").get_data(as_text=True)
    assert f"{left} calls left of today's allowance" in connections


def test_the_connect_form_may_go_to_the_platforms_sign_in_only(
    client: FlaskClient, fake: FakeXero
) -> None:
    """A browser applies form-action to the redirect that answers a form: the connections
    page allows the sign-in site of each platform it offers, and no other page does."""
    assert sign_in(client) == 302
    policy = client.get("/connections").headers["Content-Security-Policy"]
    assert f"form-action 'self' {fake.url};" in policy
    assert "form-action 'self';" in client.get("/login").headers["Content-Security-Policy"]


def test_several_organisations_the_user_chooses(client: FlaskClient, fake: FakeXero) -> None:
    fake.tenants.append({**fake.tenants[0], "tenantId": "t-2", "tenantName": "Fjord Filial"})
    assert sign_in(client) == 302
    status, page = _back(client, _press(client, "/connections/xero/connect"))
    assert status == 200
    assert "Which Xero organisations should Kindly remind for?" in page
    assert "Fjord Filial" in page
    state = page.split('name="state" value="', 1)[1].split('"', 1)[0]
    chosen = client.post(
        "/connections/choose",
        data={"csrf_token": token(page), "state": state, "organisation": "t-2"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Connected Xero: Fjord Filial." in chosen
    assert "Noordlicht Studio" not in chosen.split("<h1>", 1)[1].split("Last sync", 1)[0]
    # The choice is taken once.
    again = client.post(
        "/connections/choose",
        data={"csrf_token": token(chosen), "state": state, "organisation": "t-2"},
    )
    assert again.status_code == 400


def test_a_refused_sign_in_says_so_and_keeps_nothing(client: FlaskClient, fake: FakeXero) -> None:
    assert sign_in(client) == 302
    answer = _press(client, "/connections/xero/connect")
    back = urlsplit(answer.headers["Location"])
    state = parse_qs(back.query)["state"][0]
    page = client.get(
        f"/connections/callback?error=access_denied&state={state}", follow_redirects=True
    ).get_data(as_text=True)
    assert "Xero did not connect: access_denied." in page
    assert "Connect to Xero" in page


def test_disconnecting_revokes_and_forgets(client: FlaskClient, fake: FakeXero) -> None:
    assert sign_in(client) == 302
    _back(client, _press(client, "/connections/xero/connect"))
    page = client.get("/connections").get_data(as_text=True)
    done = client.post(
        "/connections/xero/disconnect", data={"csrf_token": token(page)}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Disconnected Xero (1 organisation(s))" in done
    assert "Connect to Xero" in done
    assert fake.revoked, "the refresh token was revoked at Xero"


def test_only_an_account_for_every_organisation_manages_connections(
    client: FlaskClient,
) -> None:
    assert sign_in(client, name="viewer") == 302
    assert client.get("/connections").status_code == 404
    page = client.get("/login").get_data(as_text=True)
    refused = client.post("/connections/xero/connect", data={"csrf_token": token(page)})
    assert refused.status_code == 404
    # A state it did not start is no use to it either.
    assert client.get("/connections/callback?code=x&state=y").status_code == 404


def test_which_side_wins_for_xeros_contact_groups_and_writing_kindlys_there(
    config: Path, fake: FakeXero
) -> None:
    app = create_app(config, clock=lambda: AT)
    client = app.test_client()
    assert sign_in(client) == 302
    assert _back(client, _press(client, "/connections/xero/connect"))[0] == 200
    overview = client.get("/", follow_redirects=True).get_data(as_text=True)
    org = re.search(r'href="/o/([^"/]+)/"', overview)
    assert org
    sync(client, app, org.group(1))
    ada = next(c for c in fake.contacts.values() if c["Name"] == "Ada Vermeer")
    page_path = f"/o/{org.group(1)}/clients/{ada['ContactID']}"
    page = client.get(page_path).get_data(as_text=True)
    # Ada is in Xero's "Reminders: firm": Xero's group decides, and both say the same.
    assert "Settings in Xero" in page
    assert "Xero: its group decides" in page and "Both say the same." in page
    # Made neutral in Kindly: Kindly wins, and offers to write it to Xero.
    changed = client.post(
        page_path,
        data={"csrf_token": token(page), "tone": "neutral", "language": "en"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Kindly: set for this client here" in changed
    assert "Write to Xero: Reminders: neutral" in changed
    calls = fake.day_remaining
    written = client.post(
        f"{page_path}/groups",
        data={"csrf_token": token(changed), "setting": "reminders"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Written to Xero: the client is now in its group Reminders: neutral." in written
    # One call lists the groups, one makes the new group, one puts Ada in, one takes her out.
    assert calls - fake.day_remaining == 4
    assert [g["Name"] for g in ada["ContactGroups"]] == ["Reminders: neutral"]
    # The next sync reads it back: both sides say neutral.
    sync(client, app, org.group(1))
    after = client.get(page_path).get_data(as_text=True)
    assert "Reminders: neutral" in after and "Write to Xero: Reminders" not in after
    # A setting the client page was not asked about is refused by name.
    refused = client.post(
        f"{page_path}/groups",
        data={"csrf_token": token(after), "setting": "colour"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Not written to Xero: Xero holds no group for &#39;colour&#39;" in refused


def test_the_overview_says_when_xero_reminds_itself_and_sending_waits(
    config: Path, fake: FakeXero
) -> None:
    fake.invoice_reminders = True
    app = create_app(config, clock=lambda: AT)
    client = app.test_client()
    assert sign_in(client) == 302
    assert _back(client, _press(client, "/connections/xero/connect"))[0] == 200
    overview = client.get("/", follow_redirects=True).get_data(as_text=True)
    org = re.search(r'href="/o/([^"/]+)/"', overview)
    assert org
    sync(client, app, org.group(1))
    page = client.get(f"/o/{org.group(1)}/").get_data(as_text=True)
    assert "Xero sends reminders itself" in page
    assert "Xero&#39;s invoice reminders are on" in page
    assert "Kindly sends nothing while they are on" in page
    keys = re.findall(r'name="key" value="([^"]+)"', page)
    assert keys, "the plan is shown all the same"
    sent = client.post(
        f"/o/{org.group(1)}/send",
        data={"csrf_token": token(page), "key": keys},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Nothing was sent: Xero sends payment reminders of its own." in sent
    assert not fake.history or not any(fake.history.values())
