"""A workspace's settings held in the database (db:NAME) instead of a kindly.toml, on real
SQLite and PostgreSQL: imported with their comments, checked as the file is (errors name
the file or db:NAME and the field, and nothing is saved), run as the file runs, changed
on the web app's settings page with a conditional save that real processes racing on it
cannot both win, and kept apart per workspace."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from werkzeug.test import Client

from plugin.app.cli import cli
from plugin.app.cli.base import open_workspaces
from plugin.app.stored_settings import change_stored, data_folder, stored_locators
from plugin.app.web import create_app
from plugin.app.web.accounts import Accounts
from plugin.app.wiring import load_settings, workspace_files
from plugin.errors import ConfigError
from plugin.state.store import Store
from tests.conftest import DEMO_NOW
from tests.web_harness import PASSWORD, sign_in, token


@pytest.fixture
def held(
    store_url: str, demo_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The database (KINDLY_STORE_URL) and the demo's kindly.toml, each workspace's
    ledger in its data folder; nothing imported yet."""
    monkeypatch.setenv("KINDLY_STORE_URL", store_url)
    monkeypatch.setenv("KINDLY_DATA_DIR", str(tmp_path / "data"))
    config = demo_workspace / "kindly.toml"
    # Each workspace mails to an outbox in its own data folder.
    config.write_text(
        config.read_text(encoding="utf-8").replace('"../outbox"', '"outbox"'), encoding="utf-8"
    )
    return store_url


def kindly(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def add_account(url: str, workspace: str, password: str) -> None:
    """The account anouk, who may see everything, in ``workspace`` of the database."""
    store = Store.open(url, workspace)
    try:
        Accounts(store).add("anouk", password, ["*"], DEMO_NOW - timedelta(days=1))
    finally:
        store.close()


def import_demo(demo_workspace: Path, name: str, *extra: str) -> Result:
    shutil.copytree(demo_workspace / "ledger", data_folder(name) / "ledger", dirs_exist_ok=True)
    return kindly("settings", "import", str(demo_workspace / "kindly.toml"), "--as", name, *extra)


def test_a_kindly_toml_is_held_with_its_comments_and_given_back(
    held: str, demo_workspace: Path, tmp_path: Path
) -> None:
    config = demo_workspace / "kindly.toml"
    answer = import_demo(demo_workspace, "acme")
    assert answer.exit_code == 0, answer.output
    assert "Left out [store]" in answer.output, "the database is the workspace's store now"
    exported = kindly("--config", "db:acme", "settings", "export").output
    assert "# the demo's copy of the bundled ledger" in exported, "comments stay"
    assert "[store]" not in exported
    assert tomllib.loads(exported) == {
        key: value for key, value in tomllib.loads(config.read_text()).items() if key != "store"
    }
    # Imported again: refused, unless the user says to replace what is held.
    again = import_demo(demo_workspace, "acme")
    assert again.exit_code == 1 and "holds settings for 'acme' already" in again.output
    assert "--replace" in again.output
    config.write_text(config.read_text().replace("Noordlicht Studio", "Zuidlicht Studio"))
    assert import_demo(demo_workspace, "acme", "--replace").exit_code == 0
    assert load_settings("db:acme").company.name == "Zuidlicht Studio B.V."
    # Written to a file, never over one.
    out = tmp_path / "acme.toml"
    assert kindly("--config", "db:acme", "settings", "export", "-o", str(out)).exit_code == 0
    assert tomllib.loads(out.read_text())["company"]["name"] == "Zuidlicht Studio B.V."
    refused = kindly("--config", "db:acme", "settings", "export", "-o", str(out))
    assert refused.exit_code == 2 and "exists already" in refused.output
    assert kindly("settings", "list").output.split() == ["db:acme"]


def test_a_file_with_a_mistake_is_not_held_and_the_error_names_the_file_and_field(
    held: str, demo_workspace: Path
) -> None:
    config = demo_workspace / "kindly.toml"
    config.write_text(
        config.read_text().replace("NL91 ABNA 0417 1643 00", "NL91 ABNA 0417 1643 01")
    )
    answer = import_demo(demo_workspace, "acme")
    assert answer.exit_code == 1
    assert f"{config}: field 'bank.iban'" in answer.output, answer.output
    assert kindly("settings", "list").output == "", "nothing was saved"
    missing = kindly("--config", "db:acme", "plan", "--at", DEMO_NOW.isoformat())
    assert missing.exit_code == 1
    assert "db:acme: the database holds no settings for the workspace 'acme'" in missing.output
    assert "kindly settings import FILE --as acme" in missing.output


def test_held_settings_that_went_wrong_are_named_by_workspace_and_field(
    held: str, demo_workspace: Path
) -> None:
    """A document changed behind Kindly's back (by SQL): each command names db:NAME and
    the field, as it would name the file."""
    assert import_demo(demo_workspace, "acme").exit_code == 0
    store = Store.open(held, "acme")
    try:
        document = store.settings_document()
        assert document is not None
        broken = document.text.replace('connector = "ledger"', 'connector = "nowhere"')
        assert store.save_settings_document(broken, DEMO_NOW, seen=document.version)
        answer = kindly("--config", "db:acme", "plan", "--at", DEMO_NOW.isoformat())
        assert answer.exit_code == 1 and "db:acme: field 'connector'" in answer.output
        # Exported as it is, to be put right and imported again.
        exported = kindly("--config", "db:acme", "settings", "export")
        assert exported.exit_code == 0 and 'connector = "nowhere"' in exported.output
        with_store = broken.replace('"nowhere"', '"ledger"') + '\n[store]\nurl = "sqlite:///x"\n'
        assert store.save_settings_document(with_store, DEMO_NOW, seen=None, replace=True)
        answer = kindly("--config", "db:acme", "plan", "--at", DEMO_NOW.isoformat())
        assert answer.exit_code == 1 and "db:acme: field 'store'" in answer.output
    finally:
        store.close()
    for name in ("", "..", "a b"):
        answer = kindly("--config", f"db:{name}", "plan")
        assert answer.exit_code == 1 and f"db:{name}" in answer.output, answer.output


def test_without_the_database_named_the_user_is_told_how(
    demo_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KINDLY_STORE_URL", raising=False)
    answer = kindly("--config", "db:acme", "plan")
    assert answer.exit_code == 1 and "KINDLY_STORE_URL" in answer.output


def test_held_settings_run_as_the_file_runs(
    held: str, demo_workspace: Path, tmp_path: Path
) -> None:
    """The same ledger, once from the kindly.toml with a store of its own and once from
    the settings held in the database: the same reminders, and the held workspace's paths
    start in its data folder."""
    assert import_demo(demo_workspace, "acme").exit_code == 0
    settings = load_settings("db:acme")
    assert settings.outbox == data_folder("acme") / "outbox"
    assert settings.where == "db:acme" and settings.store_workspace == "acme"
    at = (DEMO_NOW + timedelta(hours=3)).isoformat()
    from_file = kindly("--config", str(demo_workspace / "kindly.toml"), "run", "--at", at)
    from_database = kindly("--config", "db:acme", "run", "--at", at)
    assert from_file.exit_code == 0 and from_database.exit_code == 0, from_database.output
    sent_from_file = sorted(p.name for p in (demo_workspace / "outbox").glob("*.eml"))
    sent_held = sorted(p.name for p in (data_folder("acme") / "outbox").glob("*.eml"))
    assert sent_held and len(sent_held) == len(sent_from_file)
    (held_kindly,) = open_workspaces("db:acme")
    (file_kindly,) = open_workspaces(demo_workspace / "kindly.toml")
    try:
        assert {r.key for r in held_kindly.store.reminders()} == {
            r.key for r in file_kindly.store.reminders()
        }
    finally:
        held_kindly.store.close()
        file_kindly.store.close()
    assert "Sent nothing new" in kindly("--config", "db:acme", "run", "--at", at).output


def test_db_names_every_workspace_held_and_each_keeps_its_own(
    held: str, demo_workspace: Path
) -> None:
    for name in ("acme", "bravo", "charlie"):
        assert import_demo(demo_workspace, name).exit_code == 0
    assert stored_locators() == ["db:acme", "db:bravo", "db:charlie"]
    assert workspace_files(["db:", "db:bravo"]) == ["db:acme", "db:bravo", "db:charlie"]
    store = Store.open(held, "bravo")
    try:
        document = store.settings_document()
        assert document is not None

        def rename(doc: Any) -> None:
            doc["company"]["name"] = "Bravo B.V."

        change_stored(store, rename, seen=document.version, at=DEMO_NOW)
        assert store.in_workspace("acme").settings_document() != store.settings_document()
        assert store.in_workspace("acme").forget_settings_document()
        assert not store.in_workspace("acme").forget_settings_document()
    finally:
        store.close()
    assert load_settings("db:bravo").company.name == "Bravo B.V."
    assert load_settings("db:charlie").company.name == "Noordlicht Studio B.V."
    assert workspace_files(["db:"]) == ["db:bravo", "db:charlie"]


# -- the settings page ---------------------------------------------------------------------


@pytest.fixture
def page(held: str, demo_workspace: Path) -> FlaskClient:
    assert import_demo(demo_workspace, "acme").exit_code == 0
    assert import_demo(demo_workspace, "bravo").exit_code == 0
    add_account(held, "acme", PASSWORD)
    client = create_app("db:acme", clock=lambda: DEMO_NOW).test_client()
    assert sign_in(client) == 302
    return client


def _save(client: FlaskClient, section: str, version: str | None = None, **fields: str) -> Any:
    shown = client.get("/settings").get_data(as_text=True)
    seen = version or shown.split('name="version" value="', 1)[1].split('"', 1)[0]
    data = {"csrf_token": token(shown), "version": seen, "section": section, **fields}
    return client.post("/settings", data=data, follow_redirects=True)


def _held_text(url: str, name: str) -> str:
    store = Store.open(url, name)
    try:
        document = store.settings_document()
        assert document is not None
        return document.text
    finally:
        store.close()


def test_the_settings_page_saves_in_the_database_and_refuses_a_stale_page(
    held: str, page: FlaskClient, demo_workspace: Path
) -> None:
    file_before = (demo_workspace / "kindly.toml").read_bytes()
    bravo_before = _held_text(held, "bravo")
    shown = page.get("/settings").get_data(as_text=True)
    stale = shown.split('name="version" value="', 1)[1].split('"', 1)[0]
    answer = _save(page, "bank", iban="NL91 ABNA 0417 1643 01", bic="ABNANL2A")
    assert answer.status_code == 400
    assert "db:acme: field &#39;bank.iban&#39;" in answer.get_data(as_text=True)
    answer = _save(page, "bank", account_holder="Acme B.V.", iban="nl91abna0417164300")
    assert answer.status_code == 200 and "Saved in db:acme." in answer.get_data(as_text=True)
    text = _held_text(held, "acme")
    assert tomllib.loads(text)["bank"] == {
        "account_holder": "Acme B.V.",
        "iban": "NL91ABNA0417164300",
    }
    assert "# the demo's copy of the bundled ledger" in text, "comments stay"
    assert load_settings("db:acme").bank.account_holder == "Acme B.V."
    # A page shown before that change: refused, nothing undone.
    answer = _save(page, "bank", version=stale, account_holder="Old page B.V.")
    assert answer.status_code == 400
    assert "changed after this page was shown" in answer.get_data(as_text=True)
    assert _held_text(held, "acme") == text
    assert (demo_workspace / "kindly.toml").read_bytes() == file_before
    assert _held_text(held, "bravo") == bravo_before


# -- real processes changing one workspace's settings at once -------------------------------

WRITERS = 4


def _change_company(url: str, start: Any, results: Any) -> None:
    """Change the company's name from the version every writer saw, all at once."""
    import os

    store = Store.open(url, "acme")
    seen = store.settings_document()
    assert seen is not None
    name = f"Writer {os.getpid()} B.V."

    def rename(document: Any) -> None:
        document["company"]["name"] = name

    start.wait()
    try:
        change_stored(store, rename, seen=seen.version, at=DEMO_NOW)
        results.put(json.dumps({"saved": name}))
    except ConfigError as exc:
        results.put(json.dumps({"refused": str(exc)}))
    finally:
        store.close()


def test_of_writers_changing_the_same_version_at_once_exactly_one_is_saved(
    held: str, demo_workspace: Path
) -> None:
    assert import_demo(demo_workspace, "acme").exit_code == 0
    context = multiprocessing.get_context("spawn")
    for _trial in range(3):
        start = context.Barrier(WRITERS)
        results = context.Queue()
        writers = [
            context.Process(target=_change_company, args=(held, start, results))
            for _ in range(WRITERS)
        ]
        for writer in writers:
            writer.start()
        outcomes = [json.loads(results.get(timeout=120)) for _ in writers]
        for writer in writers:
            writer.join(timeout=60)
            assert writer.exitcode == 0
        saved = [o["saved"] for o in outcomes if "saved" in o]
        assert len(saved) == 1, outcomes
        assert all(
            "changed after this page was shown" in o.get("refused", "")
            for o in outcomes
            if "saved" not in o
        )
        assert load_settings("db:acme").company.name == saved[0]


# -- one address for many workspaces -------------------------------------------------------


def _sign_in(client: Client, name: str, password: str) -> Any:
    page = client.get(f"/w/{name}/login").get_data(as_text=True)
    data = {"name": "anouk", "password": password, "csrf_token": token(page)}
    return client.post(f"/w/{name}/login", data=data)


def test_one_address_serves_each_workspace_under_its_name_and_keeps_them_apart(
    held: str, demo_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workspaces held in one database, each with an account named anouk (their own
    passwords), their sessions signed with one shared key: each signs in under its own
    path only, and acme's session cookie means nothing at bravo's."""
    from plugin.app.web.many import ManyWorkspaces

    monkeypatch.setenv("KINDLY_WEB_SECRET_KEY", "one key for every workspace")
    passwords = {"acme": "acme's own password", "bravo": "bravo's own password"}
    for name, password in passwords.items():
        assert import_demo(demo_workspace, name).exit_code == 0
        add_account(held, name, password)
    client = Client(ManyWorkspaces(["db:"], clock=lambda: DEMO_NOW))
    assert client.get("/").status_code == 404, "the address lists no workspace"
    assert client.get("/w/nobody/login").status_code == 404
    assert client.get("/w/acme").headers["Location"] == "/w/acme/"

    signed = _sign_in(client, "acme", passwords["acme"])
    assert signed.status_code == 302 and signed.headers["Location"] == "/w/acme/"
    assert "Path=/w/acme/" in signed.headers["Set-Cookie"], "the cookie goes to acme only"
    assert "db:acme" in client.get("/w/acme/settings").get_data(as_text=True)
    # Not signed in at bravo: its pages send to bravo's sign-in, back to the page asked.
    away = client.get("/w/bravo/settings")
    assert away.status_code == 302
    assert away.headers["Location"] == "/w/bravo/login?next=/w/bravo/settings"
    # Acme's session cookie, replayed at bravo (same key, same account name): refused.
    cookie = client.get_cookie("kindly_session", path="/w/acme/")
    assert cookie is not None
    client.set_cookie("kindly_session", cookie.value, path="/w/bravo/")
    assert client.get("/w/bravo/settings").status_code == 302
    assert client.get("/w/bravo/api/v1/organisations").status_code == 401
    assert _sign_in(client, "bravo", passwords["acme"]).status_code == 401
    assert _sign_in(client, "bravo", passwords["bravo"]).status_code == 302
    assert client.get("/w/bravo/settings").status_code == 200

    # A change on acme's settings page is acme's alone.
    bravo_before = _held_text(held, "bravo")
    shown = client.get("/w/acme/settings").get_data(as_text=True)
    version = shown.split('name="version" value="', 1)[1].split('"', 1)[0]
    saved = client.post(
        "/w/acme/settings",
        data={
            "csrf_token": token(shown),
            "version": version,
            "section": "bank",
            "account_holder": "Acme B.V.",
            "iban": "NL91ABNA0417164300",
        },
    )
    assert saved.status_code == 302 and saved.headers["Location"].startswith("/w/acme/settings")
    assert load_settings("db:acme").bank.account_holder == "Acme B.V."
    assert _held_text(held, "bravo") == bravo_before

    # A workspace imported while the app runs is served from its first request.
    assert import_demo(demo_workspace, "charlie").exit_code == 0
    assert client.get("/w/charlie/login").status_code == 200


def test_kindly_web_serves_the_workspaces_the_database_holds(
    held: str, demo_workspace: Path, tmp_path: Path
) -> None:
    """`kindly web --workspace db:` as a user starts it: a real server on loopback."""
    import os
    import selectors
    import subprocess
    import sys

    import requests

    assert import_demo(demo_workspace, "acme").exit_code == 0
    server = subprocess.Popen(
        [sys.executable, "-m", "plugin.app.cli", "--config", str(tmp_path / "none.toml"),
         "web", "--port", "0", "--workspace", "db:"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        assert server.stdout is not None
        watch = selectors.DefaultSelector()
        watch.register(server.stdout, selectors.EVENT_READ)
        assert watch.select(timeout=60), "the server says where it listens"
        first = server.stdout.readline()
        address = first.split(" on ", 1)[1].split(" ", 1)[0]
        # (the server flushes its lines together, after the last)
        assert server.stdout.readline().strip() == f"Each workspace at {address}w/NAME/"
        assert requests.get(f"{address}w/acme/login", timeout=30).status_code == 200
        assert requests.get(f"{address}w/bravo/login", timeout=30).status_code == 404
    finally:
        server.terminate()
        server.wait(30)


def test_one_callback_address_serves_every_workspaces_sign_in_to_a_platform(
    held: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform's app registers one redirect address: each workspace's connect button
    sends the platform there, with the workspace in the state; the answer goes on to that
    workspace, which exchanges the code for the same address and keeps the token."""
    from urllib.parse import parse_qs, urlsplit

    import requests
    from cryptography.fernet import Fernet

    from plugin.app.web.many import ManyWorkspaces
    from tests.fakes.xero import FakeXero
    from tests.test_xero_cli import write_config
    from tests.xero_harness import seed_small_ledger

    monkeypatch.setenv("KINDLY_SECRET_KEY", Fernet.generate_key().decode())
    fake = FakeXero()
    fake.start()
    try:
        seed_small_ledger(fake)
        (tmp_path / "xero").mkdir()
        config = write_config(tmp_path / "xero", fake)
        for name in ("acme", "bravo"):
            answer = kindly("settings", "import", str(config), "--as", name)
            assert answer.exit_code == 0, answer.output
            add_account(held, name, PASSWORD)
        client = Client(ManyWorkspaces(["db:"], clock=lambda: DEMO_NOW))
        assert _sign_in(client, "bravo", PASSWORD).status_code == 302
        page = client.get("/w/bravo/connections").get_data(as_text=True)
        pressed = client.post("/w/bravo/connections/xero/connect", data={"csrf_token": token(page)})
        assert pressed.status_code == 302
        asked = parse_qs(urlsplit(pressed.headers["Location"]).query)
        assert asked["redirect_uri"] == ["http://localhost/connections/callback"]
        assert asked["state"][0].startswith("bravo~")
        consent = requests.get(pressed.headers["Location"], allow_redirects=False, timeout=10)
        back = urlsplit(consent.headers["Location"])
        assert (back.path, parse_qs(back.query)["state"]) == (
            "/connections/callback",
            asked["state"],
        )
        sent_on = client.get(f"{back.path}?{back.query}")
        assert sent_on.status_code == 302
        assert sent_on.headers["Location"] == f"/w/bravo/connections/callback?{back.query}"
        landed = client.get(sent_on.headers["Location"], follow_redirects=True)
        assert "Connected Xero: Noordlicht Studio." in landed.get_data(as_text=True)
        # Bravo holds the connection; acme, in the same database, none.
        for name, connected in (("bravo", True), ("acme", False)):
            store = Store.open(held, name)
            try:
                assert bool(store.settings_in("connection:xero")) is connected, name
            finally:
                store.close()
        # A state naming no workspace served here, or none at all: nothing to send on.
        assert client.get("/connections/callback?code=x&state=nobody~abc").status_code == 404
        assert client.get("/connections/callback?code=x").status_code == 404
    finally:
        fake.stop()


def test_folder_workspaces_behind_one_address_keep_their_sessions_apart(
    demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kindly.toml files in a folder, each with a store of its own (each the workspace
    without a name there), one shared session key and an account anouk in each: acme's
    cookie means nothing at bravo's. A name no workspace could have is 404 before anything
    else (a line break in it never reaches a header); a place that cannot answer hides no
    other; behind a proxy's prefix the cookie goes to the prefixed path."""
    from plugin.app.web.many import ManyWorkspaces

    monkeypatch.setenv("KINDLY_WEB_SECRET_KEY", "one key for every workspace")
    monkeypatch.delenv("KINDLY_STORE_URL", raising=False)
    folder = tmp_path / "clients"
    passwords = {"acme": "acme's own password", "bravo": "bravo's own password"}
    for name, password in passwords.items():
        shutil.copytree(demo_template, folder / name)
        (opened,) = open_workspaces(folder / name / "kindly.toml")
        try:
            Accounts(opened.store).add("anouk", password, ["*"], DEMO_NOW - timedelta(days=1))
        finally:
            opened.store.close()
    # db:Bad! cannot be a workspace's name: that place fails and the folder still answers.
    client = Client(ManyWorkspaces(["db:Bad!", str(folder)], clock=lambda: DEMO_NOW))
    assert _sign_in(client, "acme", passwords["acme"]).status_code == 302
    assert client.get("/w/acme/settings").status_code == 200
    cookie = client.get_cookie("kindly_session", path="/w/acme/")
    assert cookie is not None
    client.set_cookie("kindly_session", cookie.value, path="/w/bravo/")
    assert client.get("/w/bravo/settings").status_code == 302
    assert client.get("/w/bravo/api/v1/organisations").status_code == 401

    injected = client.get("/w/x%0d%0aSet-Cookie:%20evil=1")
    assert injected.status_code == 404 and "Set-Cookie" not in injected.headers
    assert "Location" not in injected.headers

    behind = Client(ManyWorkspaces([str(folder)], clock=lambda: DEMO_NOW))
    prefix = {"SCRIPT_NAME": "/kindly"}
    page = behind.get("/w/bravo/login", environ_overrides=prefix).get_data(as_text=True)
    assert 'action="/kindly/w/bravo/login' in page or "/kindly/w/bravo/" in page
    signed = behind.post(
        "/w/bravo/login",
        data={"name": "anouk", "password": passwords["bravo"], "csrf_token": token(page)},
        environ_overrides=prefix,
    )
    assert signed.status_code == 302, signed.get_data(as_text=True)
    assert signed.headers["Location"] == "/kindly/w/bravo/"
    assert "Path=/kindly/w/bravo/" in signed.headers["Set-Cookie"]


def test_own_templates_are_not_saved_from_the_page_for_settings_held_in_the_database(
    held: str, page: FlaskClient
) -> None:
    """A template file saved on the web app's machine would be on that machine only, and
    every other that sends would refuse the settings naming its folder."""
    before = _held_text(held, "acme")
    shown = page.get("/settings/templates").get_data(as_text=True)
    name = shown.split('name="name" value="', 1)[1].split('"', 1)[0]
    answer = page.post(
        "/settings/templates",
        data={"csrf_token": token(shown), "name": name, "text": "mine", "action": "save"},
    )
    assert answer.status_code == 400
    assert "db:acme: own templates are files" in answer.get_data(as_text=True)
    assert _held_text(held, "acme") == before
    assert not (data_folder("acme") / "templates").exists()


def test_a_workspace_made_anew_after_others_took_its_place_keeps_its_sessions(
    held: str, demo_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One address keeps the workspaces served lately (here one): acme's app leaves when
    bravo's is made, and is made again when asked for; acme's user is still signed in."""
    from plugin.app.web.many import ManyWorkspaces

    for name in ("acme", "bravo"):
        assert import_demo(demo_workspace, name).exit_code == 0
        add_account(held, name, PASSWORD)
    served = ManyWorkspaces(["db:"], clock=lambda: DEMO_NOW, max_apps=1)
    client = Client(served)
    assert _sign_in(client, "acme", PASSWORD).status_code == 302
    first = served._kept("acme")
    assert client.get("/w/bravo/login").status_code == 200
    assert served._kept("acme") is None, "acme's app left"
    assert client.get("/w/acme/settings").status_code == 200, "still signed in"
    assert served._kept("acme") not in (None, first), "made anew"
