"""The web app's own words in six languages: the catalogs hold every word the pages and
views use (the extraction is up to date), each translated with the same placeholders;
the pages follow the browser's language and the switch."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from plugin.app.web.i18n import LANGUAGES
from tests.fakes.smtp import SmtpServer, start_smtp
from tests.web_harness import WebApp, sign_in, web_app

WEB = Path(__file__).resolve().parent.parent / "plugin" / "app" / "web"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _extracted() -> set[str]:
    """What `make messages` would extract from the pages and views today."""
    found = set()
    for method, options in (
        ("python", {}),
        ("jinja2", {"extensions": "jinja2.ext.i18n"}),
    ):
        pattern = "**.py" if method == "python" else "**/templates/**.j2"
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(WEB),
            method_map=[(pattern, method)],
            options_map={pattern: options},
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None},
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(language: str) -> dict[str, tuple[str, ...]]:
    path = WEB / "translations" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    entries: dict[str, tuple[str, ...]] = {}
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, f"{language}: {message.id!r} is only a guess (fuzzy)"
        key = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        entries[key] = tuple(str(text or "") for text in strings)
    return entries


def test_the_template_catalog_holds_every_word_in_use() -> None:
    with (WEB / "messages.pot").open("rb") as pot:
        template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(pot) if m.id}
    missing = _extracted() - template
    assert not missing, f"run `make messages`: not in messages.pot: {sorted(missing)}"


@pytest.mark.parametrize("language", [code for code in LANGUAGES if code != "en"])
def test_every_word_is_translated_with_its_placeholders(language: str) -> None:
    entries = _catalog(language)
    for message in sorted(_extracted()):
        assert message in entries, f"{language}: no entry for {message!r} (`make messages`)"
        wanted = set(PLACEHOLDER.findall(message)) - {"%(num)d"}
        for translated in entries[message]:
            assert translated.strip(), f"{language}: {message!r} is not translated"
            got = set(PLACEHOLDER.findall(translated)) - {"%(num)d"}
            assert got == wanted, f"{language}: {message!r} -> {translated!r}"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def web(demo_workspace: Path, smtp: SmtpServer) -> WebApp:
    return web_app(demo_workspace, smtp)


def test_pages_follow_the_browsers_language_and_the_switch(web: WebApp) -> None:
    client: FlaskClient = web.app.test_client()
    dutch = client.get("/login", headers={"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"})
    page = dutch.get_data(as_text=True)
    assert '<html lang="nl">' in page
    (sign_in_nl,) = _catalog("nl")["Sign in"]
    assert f"<h1>{sign_in_nl}</h1>" in page
    # The switch: kept in the session, whatever the browser says afterwards.
    switched = client.get("/login?lang=vi", headers={"Accept-Language": "nl"})
    assert '<html lang="vi">' in switched.get_data(as_text=True)
    again = client.get("/login", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert '<html lang="vi">' in again
    # An unknown language falls back to English.
    other = web.app.test_client().get("/login", headers={"Accept-Language": "ja"})
    assert '<html lang="en">' in other.get_data(as_text=True)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_page_renders_in_every_language(web: WebApp, language: str) -> None:
    """No placeholder left unfilled, no page that fails in one language."""
    from tests.web_harness import sync

    client = web.app.test_client()
    client.get(f"/login?lang={language}")
    assert sign_in(client) == 302
    overview = sync(client, web.app, web.org)
    pages = [
        overview,
        client.get(f"/o/{web.org}/clients").get_data(as_text=True),
        client.get(f"/o/{web.org}/clients/C01").get_data(as_text=True),
        client.get("/connections").get_data(as_text=True),
        client.get("/settings").get_data(as_text=True),
        client.get("/settings/templates?name=lang/en.j2").get_data(as_text=True),
        client.get(f"/o/{web.org}/sync").get_data(as_text=True),
        client.get("/runs").get_data(as_text=True),
    ]
    key = re.search(r'name="key" value="([^"]+)"', overview)
    assert key
    pages.append(client.get(f"/o/{web.org}/preview/{key.group(1)}").get_data(as_text=True))
    for page in pages:
        assert f'<html lang="{language}">' in page
        assert not re.search(r"%\(\w+\)[sd]", page), "a placeholder left in the page"
