"""The settings page through Flask's test client, on the demo workspace: each form changes
kindly.toml, keeps its comments, is checked as the file is (an invalid IBAN is named and
nothing is written), and takes effect on the next page; a change on a page older than the
file is refused; only an account that sees every organisation has the page."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from plugin.app.cli import cli
from plugin.app.settings_file import change_settings_file, version_of
from plugin.app.web.accounts import Accounts
from plugin.app.wiring import load_settings, open_store
from plugin.errors import ConfigError
from tests.fakes.smtp import SmtpServer, start_smtp
from tests.web_harness import AT, PASSWORD, WebApp, sign_in, sync, token, web_app


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def web(demo_workspace: Path, smtp: SmtpServer) -> WebApp:
    return web_app(demo_workspace, smtp)


@pytest.fixture
def client(web: WebApp) -> FlaskClient:
    answer = web.app.test_client()
    assert sign_in(answer) == 302
    return answer


def _save(client: FlaskClient, section: str, **fields: object) -> tuple[int, str]:
    page = client.get("/settings").get_data(as_text=True)
    version = page.split('name="version" value="', 1)[1].split('"', 1)[0]
    data = {"csrf_token": token(page), "version": version, "section": section, **fields}
    answer = client.post("/settings", data=data, follow_redirects=True)
    return answer.status_code, answer.get_data(as_text=True)


def _file(web: WebApp) -> dict[str, object]:
    return tomllib.loads(web.config.read_text(encoding="utf-8"))


def test_the_bank_details_are_checked_and_a_wrong_iban_is_not_saved(
    web: WebApp, client: FlaskClient
) -> None:
    before = web.config.read_bytes()
    status, page = _save(client, "bank", iban="NL91 ABNA 0417 1643 01", bic="ABNANL2A")
    assert status == 400
    assert "field &#39;bank.iban&#39;" in page and "is not a valid IBAN" in page
    assert web.config.read_bytes() == before, "nothing is written when the check fails"
    # What was typed stays in the form, to be put right.
    assert 'value="NL91 ABNA 0417 1643 01"' in page
    status, page = _save(
        client, "bank", account_holder="Noordlicht Studio B.V.", iban="nl91abna0417164300"
    )
    assert status == 200, page
    assert "Saved in kindly.toml." in page
    assert _file(web)["bank"] == {
        "account_holder": "Noordlicht Studio B.V.",
        "iban": "NL91ABNA0417164300",
    }
    assert load_settings(web.config).bank.iban == "NL91ABNA0417164300"


def test_the_company_is_saved_and_the_files_comments_stay(web: WebApp, client: FlaskClient) -> None:
    web.config.write_text(
        "# Kept by hand: this line must survive the page.\n" + web.config.read_text("utf-8"),
        encoding="utf-8",
    )
    current = load_settings(web.config).company
    status, page = _save(
        client,
        "company",
        name="Noordlicht Studio",
        email=current.email,
        phone="+31 20 123 4567",
        address="Keizersgracht 1\n\n1015 CJ Amsterdam\n",
        country="nl",
    )
    assert status == 200, page
    text = web.config.read_text("utf-8")
    assert text.startswith("# Kept by hand: this line must survive the page.\n")
    company = load_settings(web.config).company
    assert company.address == ("Keizersgracht 1", "1015 CJ Amsterdam")
    assert (company.phone, company.country) == ("+31 20 123 4567", "NL")
    # A wrong e-mail address is named with its field, as in kindly.toml.
    status, page = _save(client, "company", name="Noordlicht Studio", email="not-an-address")
    assert status == 400
    assert "company.email" in page
    assert load_settings(web.config).company.email == current.email


def _first_reminders(web: WebApp) -> int:
    """How many first reminders `kindly plan` finds due on the demo's day."""
    base = ["--config", str(web.config)]
    runner = CliRunner()
    assert runner.invoke(cli, [*base, "sync", "--at", AT.isoformat()]).exit_code == 0
    planned = runner.invoke(cli, [*base, "plan", "--json", "--at", AT.isoformat()])
    assert planned.exit_code == 0, planned.output
    return sum(r["stage"] == "first" for r in json.loads(planned.output)["reminders"])


def test_the_stages_send_window_and_charges_change_what_is_planned(
    web: WebApp, client: FlaskClient
) -> None:
    planned_before = _first_reminders(web)
    assert planned_before > 0
    policy = load_settings(web.config).policies["default"]
    fields: dict[str, object] = {"send_window": "08:30-16:00", "gap_days": "0"}
    for index, stage in enumerate(policy.stages):
        fields[f"stage-{index}-days"] = str(stage.days)
        if stage.enabled:
            fields[f"stage-{index}-enabled"] = "1"
        # As the form shows them: the handoff stage's task is ticked.
        if stage.channels:
            fields[f"stage-{index}-channels"] = list(stage.channels)
        if stage.tone:
            fields[f"stage-{index}-tone"] = stage.tone
    first = next(i for i, s in enumerate(policy.stages) if s.name == "first")
    final = next(i for i, s in enumerate(policy.stages) if s.name == "final")
    fields[f"stage-{first}-days"] = "10"
    fields[f"stage-{first}-tone"] = "neutral"
    fields[f"stage-{final}-channels"] = ["email", "letter"]
    status, page = _save(client, "reminders", **fields)
    assert status == 200, page
    saved = load_settings(web.config).policies["default"]
    assert [s.name for s in saved.stages] == [s.name for s in policy.stages]
    assert saved.stages[first].days == 10 and saved.stages[first].tone == "neutral"
    assert saved.stages[first].business_days == policy.stages[first].business_days
    assert saved.stages[final].channels == ("email", "letter")
    assert saved.stages[final].charges, "what the page does not show is kept"
    assert (saved.send_window.start.hour, saved.send_window.start.minute) == (8, 30)
    assert saved.gap_days == 0
    # The first reminders now wait ten business days: fewer are due on the demo's day.
    assert _first_reminders(web) < planned_before
    # A send window the schema refuses is named.
    status, page = _save(client, "reminders", **{**fields, "send_window": "9-17"})
    assert status == 400 and "policy.send_window" in page
    status, page = _save(client, "reminders", **{**fields, f"stage-{first}-days": "ten"})
    assert status == 400 and "policy.stages.1.days" in page
    status, page = _save(client, "charges", enabled="1", jurisdiction="NL")
    assert status == 200, page
    settings = load_settings(web.config)
    assert settings.defaults.charges and settings.charges.jurisdiction == "NL"
    status, page = _save(client, "charges", contract_rate="eight")
    assert status == 400 and "charges.contract_rate" in page


def test_a_change_on_a_page_older_than_the_file_is_refused(
    web: WebApp, client: FlaskClient
) -> None:
    page = client.get("/settings").get_data(as_text=True)
    version = page.split('name="version" value="', 1)[1].split('"', 1)[0]
    # Someone edits kindly.toml meanwhile (an editor, another tab).
    web.config.write_text(web.config.read_text("utf-8") + "\n# edited\n", encoding="utf-8")
    edited = web.config.read_bytes()
    answer = client.post(
        "/settings",
        data={"csrf_token": token(page), "version": version, "section": "bank", "bic": "X"},
    )
    assert answer.status_code == 400
    assert "changed after this page was shown; nothing was saved" in answer.get_data(as_text=True)
    assert web.config.read_bytes() == edited


def test_the_holidays_ahead_are_listed_for_the_countries_in_play(
    web: WebApp, client: FlaskClient
) -> None:
    assert "<h3>NL</h3>" in client.get("/settings").get_data(as_text=True)
    sync(client, web.app, web.org)
    page = client.get("/settings").get_data(as_text=True)
    # The demo's clock is 22 November 2026; Christmas is within 90 days everywhere.
    assert "2026-12-25: Christmas Day" in page or "2026-12-25: Eerste Kerstdag" in page
    for country in ("NL", "DE", "FR", "NO", "GB", "VN"):
        assert f"<h3>{country}</h3>" in page


def test_only_an_account_that_sees_every_organisation_has_the_page(
    web: WebApp, client: FlaskClient
) -> None:
    store = open_store(load_settings(web.config))
    Accounts(store).add("viewer", PASSWORD, [web.org], AT - timedelta(days=1))
    store.close()
    viewer = web.app.test_client()
    assert sign_in(viewer, "viewer") == 302
    assert viewer.get("/settings").status_code == 404
    assert viewer.post("/settings", data={"section": "bank"}).status_code in (403, 404)


def test_the_file_is_left_whole_when_a_change_breaks_it(tmp_path: Path) -> None:
    """The editor itself: an invalid result raises naming the field, and the file, its
    comments and its bytes, stay as they were."""
    config = tmp_path / "kindly.toml"
    config.write_text('# mine\n[company]\nname = "A"\nemail = "a@example.com"\n', encoding="utf-8")
    before = config.read_bytes()

    def wrong(document: object) -> None:
        document["company"]["email"] = "nope"  # type: ignore[index]

    with pytest.raises(ConfigError, match=r"company\.email"):
        change_settings_file(config, wrong, seen=version_of(config))
    assert config.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["kindly.toml"], "no temporary file left"


def _draft_form(client: FlaskClient, name: str) -> tuple[str, dict[str, str]]:
    page = client.get(f"/settings/templates?name={name}").get_data(as_text=True)
    reminder = page.split('<option value="', 1)[1].split('"', 1)[0]
    return page, {"csrf_token": token(page), "name": name, "reminder": reminder}


def test_a_template_draft_is_previewed_on_a_reminder_due_now_then_kept_or_removed(
    web: WebApp, client: FlaskClient
) -> None:
    from tests.web_harness import sync

    sync(client, web.app, web.org)
    page, form = _draft_form(client, "email/subject.txt.j2")
    assert "{{ t.subject() }}" in page, "the page starts from Kindly's own text"
    draft = "Our invoices: {{ count }} open, {{ t.subject() }}"
    preview = client.post("/settings/templates/preview", data={**form, "text": draft})
    assert preview.status_code == 200
    shown = preview.get_data(as_text=True)
    assert shown.startswith("<pre>Our invoices: ") and " open, " in shown
    # The frame may show the message's inline styles, nothing else, and only in this app.
    assert "style-src 'unsafe-inline'" in preview.headers["Content-Security-Policy"]
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    # Nothing is kept by a preview.
    assert load_settings(web.config).templates is None
    # A mistake in the draft is shown in the frame, naming the template and line.
    wrong = client.post(
        "/settings/templates/preview", data={**form, "text": "{{ t.subject( }}"}
    ).get_data(as_text=True)
    assert "subject.txt.j2" in wrong and "line 1" in wrong
    # Kept: kindly.toml now names the template folder, and the message uses the draft.
    kept = client.post(
        "/settings/templates?name=email/subject.txt.j2",
        data={**form, "text": draft, "action": "save"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Saved your version of email/subject.txt.j2." in kept
    settings = load_settings(web.config)
    assert settings.templates is not None
    assert (settings.templates / "email/subject.txt.j2").read_text("utf-8") == draft
    assert "your own" in kept
    # A broken version is not kept: the folder keeps the one that works.
    refused = client.post(
        "/settings/templates?name=email/subject.txt.j2",
        data={**form, "text": "{% if %}", "action": "save"},
    )
    assert refused.status_code == 400
    assert (settings.templates / "email/subject.txt.j2").read_text("utf-8") == draft
    # Removed: Kindly's own applies again.
    client.post(
        "/settings/templates?name=email/subject.txt.j2",
        data={**form, "action": "remove"},
        follow_redirects=True,
    )
    assert not (settings.templates / "email/subject.txt.j2").exists()
    # Only Kindly's own templates can be named: no way out of the folder.
    assert client.get("/settings/templates?name=../kindly.toml").status_code == 404
    outside = client.post("/settings/templates/preview", data={**form, "name": "../x.j2"})
    assert outside.status_code == 404


@pytest.mark.parametrize("name", ["lang/nl.j2", "sms/message.txt.j2", "letter/letter.html.j2"])
def test_every_kind_of_template_previews(web: WebApp, client: FlaskClient, name: str) -> None:
    from tests.web_harness import sync

    sync(client, web.app, web.org)
    page, form = _draft_form(client, name)
    text = page.split('class="code">', 1)[1].split("</textarea>", 1)[0]
    import html

    shown = client.post(
        "/settings/templates/preview", data={**form, "text": html.unescape(text)}
    ).get_data(as_text=True)
    assert "Traceback" not in shown and "color:#a00" not in shown, shown[:500]
    if name == "lang/nl.j2":
        assert "Met vriendelijke groet" in shown
