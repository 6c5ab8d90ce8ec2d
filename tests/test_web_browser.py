"""The web app in a real browser: Debian's Chromium driven by Playwright, on loopback.

A user signs in, connects the fake Xero through its OAuth redirect, syncs and waits for the
progress to finish, makes a client firm, reads the firm wording in the preview, sends that
reminder alone to a real SMTP server and finds its note written in Xero. The pages are also
photographed at 375 and 1280 pixels wide and checked against accessibility rules written
here (labels, names, alt texts, one h1, a language, no sideways scrolling on a phone).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.smtp import SmtpServer, start_smtp
from tests.fakes.xero import FakeXero
from tests.test_xero_cli import write_config
from tests.web_harness import NAME, PASSWORD, WebApp, finish_syncs
from tests.xero_harness import seed_small_ledger

#: Two days after the fake Xero's clock: Cleo Martin's invoice is 20 days overdue.
XERO_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(
        "no Chromium at /usr/bin/chromium (Debian's chromium package; .ci/run installs it)",
        allow_module_level=True,
    )

#: Accessibility rules, run in the page: each finding names the element.
A11Y_RULES = """
() => {
  const found = [];
  const named = (el) => (el.getAttribute('aria-label') || el.textContent || '').trim();
  if (!document.documentElement.lang) found.push('html without lang');
  if (document.querySelectorAll('h1').length !== 1) found.push('not exactly one h1');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const label = (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest('label');
    if (!label && !el.getAttribute('aria-label')) found.push(`unlabelled ${el.outerHTML}`);
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (!named(el)) found.push(`no name: ${el.outerHTML}`);
  }
  for (const el of document.querySelectorAll('img')) {
    if (!el.hasAttribute('alt')) found.push(`img without alt: ${el.outerHTML}`);
  }
  for (const el of document.querySelectorAll('iframe')) {
    if (!el.title) found.push(`iframe without title: ${el.outerHTML}`);
  }
  for (const el of document.querySelectorAll('th')) {
    if (!el.getAttribute('scope')) found.push(`th without scope: ${el.outerHTML}`);
  }
  return found;
}
"""


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def fake_xero() -> Iterator[FakeXero]:
    server = FakeXero()
    server.start()
    seed_small_ledger(server)
    yield server
    server.stop()


@pytest.fixture
def served(
    fake_xero: FakeXero, smtp: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[WebApp, str]]:
    """The web app on a workspace that reads the fake Xero (not connected yet) and mails
    through aiosmtpd, served on loopback by a real HTTP server."""
    from cryptography.fernet import Fernet
    from werkzeug.serving import make_server

    from plugin.app.web import create_app, organisation_id
    from plugin.app.web.accounts import Accounts
    from plugin.app.wiring import load_settings, open_store

    monkeypatch.setenv("KINDLY_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, fake_xero, email_via="smtp")
    with config.open("a", encoding="utf-8") as toml:
        toml.write(
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\nretry_wait = 0\n'
        )
    store = open_store(load_settings(config))
    Accounts(store).add(NAME, PASSWORD, ["*"], XERO_AT - timedelta(days=1))
    store.close()
    app = create_app(config, clock=lambda: XERO_AT)
    web = WebApp(app, config, organisation_id(f"xero:{fake_xero.tenant_id}"), smtp)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield web, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    finish_syncs(app)


@pytest.fixture
def page(served: tuple[WebApp, str]) -> Iterator[Any]:
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        yield context.new_page()
        browser.close()


def _accessible(page: Any) -> None:
    problems = page.evaluate(A11Y_RULES)
    assert problems == [], f"{page.url}: {problems}"


def _photograph(page: Any, folder: Path, name: str) -> None:
    """The page at 375 and 1280 px wide: saved, and never scrolling sideways."""
    for width, height in ((375, 800), (1280, 900)):
        page.set_viewport_size({"width": width, "height": height})
        path = folder / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
        wide = page.evaluate("document.documentElement.scrollWidth")
        culprits = page.evaluate(
            "(w) => [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > w).slice(0, 5)"
            ".map(e => e.outerHTML.slice(0, 120))",
            width,
        )
        assert wide <= width, f"{name} scrolls sideways at {width} px ({wide} px): {culprits}"


def test_a_user_connects_xero_syncs_makes_a_client_firm_previews_and_sends(
    served: tuple[WebApp, str], page: Any, tmp_path: Path, fake_xero: FakeXero
) -> None:
    web, base = served
    expect = playwright_api.expect
    # 1. Sign in.
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login?next=/")
    _accessible(page)
    page.get_by_label("Name").fill(NAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # 2. Nothing is connected yet: the connections page says so; connect the fake Xero
    # through its OAuth redirect (it consents at once and sends the browser back).
    expect(page).to_have_url(f"{base}/connections")
    expect(page.locator(".messages")).to_contain_text("Xero is not connected")
    _accessible(page)
    _photograph(page, tmp_path, "connections")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name="Connect to Xero").click()
    expect(page.locator(".messages")).to_contain_text("Connected Xero: Noordlicht Studio.")
    assert fake_xero.refresh_tokens, "the code was exchanged for tokens at Xero"

    # 3. Sync now, and wait for its progress to finish: the overview then says what it read.
    page.get_by_role("link", name="Xero organisation Noordlicht Studio").click()
    expect(page.get_by_text("Not synced yet")).to_be_visible()
    page.get_by_role("button", name="Sync now").click()
    # The progress page says the same words when it is done, then goes on to the overview:
    # the overview is awaited, not the words, or the page may go while it is looked at.
    expect(page).to_have_url(f"{base}/o/{web.org}/")
    expect(page.get_by_text("3 clients, 5 invoices, 0 records left out")).to_be_visible()
    _accessible(page)
    # By keyboard: the first stop is the link past the navigation, which then shows.
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    expect(page.locator(".skip")).to_be_in_viewport()

    # 4. Make a client firm; the preview shows the firm wording.
    page.get_by_role("link", name="Clients", exact=True).click()
    _accessible(page)
    page.get_by_role("link", name="Cleo Martin").click()
    page.get_by_label("Tone").select_option("firm")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved the settings of Cleo Martin")).to_be_visible()
    _accessible(page)
    page.get_by_role("link", name="Overview").click()
    row = page.locator("tr", has_text="Cleo Martin").filter(has_text="first (firm)")
    expect(row).to_have_count(1)
    _photograph(page, tmp_path, "overview")
    page.set_viewport_size({"width": 1280, "height": 900})
    row.get_by_role("link", name="Preview").click()
    _accessible(page)
    frame = page.frame_locator("iframe.message")
    expect(frame.get_by_text("nous n’avons reçu aucun règlement")).to_be_visible()
    _photograph(page, tmp_path, "preview")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Back to the overview").click()

    # 5. Approve this client's reminder alone, and send it to the SMTP server.
    for box in page.locator('input[name="key"]').all():
        box.uncheck()
    page.locator("tr", has_text="Cleo Martin").locator('input[name="key"]').check()
    page.get_by_role("button", name="Send the chosen reminders").click()
    expect(page.get_by_text("Sent 1,")).to_be_visible()
    assert [m.recipients for m in web.smtp.received] == [["cleo@client.example"]]

    # 6. The history shows it sent, and its note written on the invoice in Xero.
    history = page.locator("section", has_text="What went out").locator(
        "tr", has_text="Cleo Martin"
    )
    expect(history.first).to_contain_text("sent")
    expect(history.first).to_contain_text("written")
    assert any(
        "Kindly" in str(entry) for entries in fake_xero.history.values() for entry in entries
    )
    _accessible(page)

    # 7. The settings page, and a template draft whose preview follows the typing.
    page.get_by_role("link", name="Settings").click()
    _accessible(page)
    _photograph(page, tmp_path, "settings")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Edit the templates").click()
    page.get_by_role("link", name="email/subject.txt.j2").click()
    _accessible(page)
    draft = page.frame_locator('iframe[name="draft-preview"]')
    # The page shows Kindly's own subject on a reminder due now, without a button pressed.
    expect(draft.locator("pre")).not_to_be_empty()
    page.get_by_label("The template (Jinja2)").fill("Typed just now: {{ t.subject() }}")
    expect(draft.locator("pre")).to_contain_text("Typed just now: ")
    assert not (web.config.parent / "templates").exists(), "a preview keeps nothing"
