"""The web app in a real browser: Debian's Chromium driven by Playwright, on loopback.

A user signs in, syncs, makes a client firm, reads the firm wording in the preview, sends
that reminder alone to a real SMTP server and finds its note written. The pages are also
photographed at 375 and 1280 pixels wide and checked against accessibility rules written
here (labels, names, alt texts, one h1, a language, no sideways scrolling on a phone).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.smtp import SmtpServer, start_smtp
from tests.web_harness import NAME, PASSWORD, WebApp, web_app

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
def served(demo_workspace: Path, smtp: SmtpServer) -> Iterator[tuple[WebApp, str]]:
    from werkzeug.serving import make_server

    web = web_app(demo_workspace, smtp)
    server = make_server("127.0.0.1", 0, web.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield web, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


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


def test_a_user_syncs_makes_a_client_firm_previews_and_sends(
    served: tuple[WebApp, str], page: Any, tmp_path: Path
) -> None:
    web, base = served
    expect = playwright_api.expect
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login?next=/")
    _accessible(page)
    page.get_by_label("Name").fill(NAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Not synced yet")).to_be_visible()

    page.get_by_role("button", name="Sync now").click()
    expect(page.locator(".messages")).to_contain_text("Synced")
    _accessible(page)
    # By keyboard: the first stop is the link past the navigation, which then shows.
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    expect(page.locator(".skip")).to_be_in_viewport()

    page.get_by_role("link", name="Clients", exact=True).click()
    _accessible(page)
    page.get_by_role("link", name="Bakkerij Van Dijk").click()
    page.get_by_label("Tone").select_option("firm")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved the settings of Bakkerij Van Dijk")).to_be_visible()
    _accessible(page)

    page.get_by_role("link", name="Overview").click()
    row = page.locator("tr", has_text="Bakkerij Van Dijk").filter(has_text="first (firm)")
    expect(row).to_have_count(1)
    for size, name in (((375, 800), "overview-375.png"), ((1280, 900), "overview-1280.png")):
        page.set_viewport_size({"width": size[0], "height": size[1]})
        page.screenshot(path=str(tmp_path / name), full_page=True)
        assert (tmp_path / name).stat().st_size > 10_000
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= size[0], f"the page scrolls sideways at {size[0]} px ({wide} px)"

    row.get_by_role("link", name="Preview").click()
    _accessible(page)
    frame = page.frame_locator("iframe.message")
    expect(
        frame.get_by_text("De betaaltermijn van de onderstaande facturen is verstreken")
    ).to_be_visible()
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=str(tmp_path / "preview-375.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Back to the overview").click()

    # Approve only this client's reminder.
    for box in page.locator('input[name="key"]').all():
        box.uncheck()
    page.locator("tr", has_text="Bakkerij Van Dijk").locator('input[name="key"]').check()
    page.get_by_role("button", name="Send the chosen reminders").click()
    expect(page.get_by_text("Sent 1,")).to_be_visible()
    assert [m.recipients for m in web.smtp.received] == [["administratie@bakkerijvandijk.example"]]
    history = page.locator("section", has_text="What went out").locator(
        "tr", has_text="Bakkerij Van Dijk"
    )
    expect(history.first).to_contain_text("sent")
    expect(history.first).to_contain_text("written")
    _accessible(page)
