"""The web app through Flask's test client: signing in, its safety, and the work a user
does there (sync, a client's tone, the preview, review and send, what went out)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.fakes.smtp import SmtpServer, start_smtp
from tests.web_harness import PASSWORD, WebApp, sign_in, sync, token, web_app


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
    return web.app.test_client()


def _post(client: FlaskClient, path: str, page: str, **data: object) -> tuple[int, str]:
    answer = client.post(path, data={**data, "csrf_token": token(page)}, follow_redirects=True)
    return answer.status_code, answer.get_data(as_text=True)


def test_every_page_needs_a_signed_in_account(web: WebApp, client: FlaskClient) -> None:
    for path in ("/", f"/o/{web.org}/", f"/o/{web.org}/clients", f"/o/{web.org}/clients/C01"):
        answer = client.get(path)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/login?next=")
    assert sign_in(client) == 302
    assert client.get(f"/o/{web.org}/").status_code == 200


def test_a_form_without_its_csrf_token_is_refused(web: WebApp, client: FlaskClient) -> None:
    answer = client.post("/login", data={"name": "anouk", "password": PASSWORD})
    assert answer.status_code == 403
    assert sign_in(client) == 302
    for path in (f"/o/{web.org}/sync", f"/o/{web.org}/send", f"/o/{web.org}/clients/C01"):
        assert client.post(path, data={"tone": "firm"}).status_code == 403, path
        wrong = client.post(path, data={"tone": "firm", "csrf_token": "not-the-token"})
        assert wrong.status_code == 403, path


def test_five_wrong_passwords_and_the_account_waits(web: WebApp, client: FlaskClient) -> None:
    for _ in range(5):
        assert sign_in(client, password="wrong password!") == 401
    # The sixth try is refused before the password is looked at, even the right one.
    page = client.get("/login").get_data(as_text=True)
    refused = client.post(
        "/login", data={"name": "anouk", "password": PASSWORD, "csrf_token": token(page)}
    )
    assert refused.status_code == 429
    assert "too many failed sign-ins" in refused.get_data(as_text=True)
    other = web.app.test_client()
    assert sign_in(other) == 429, "counted per account, not per browser"


def test_another_organisation_or_client_is_not_found(web: WebApp, client: FlaskClient) -> None:
    assert sign_in(client) == 302
    assert client.get("/o/000000000000/").status_code == 404
    assert client.get("/o/000000000000/clients/C01").status_code == 404
    assert client.get(f"/o/{web.org}/clients/C99").status_code == 404
    assert client.get(f"/o/{web.org}/preview/no-such-key").status_code == 404
    # An account for another organisation does not see this one at all.
    from datetime import UTC, datetime

    from plugin.app.cli.base import open_workspaces
    from plugin.app.web.accounts import Accounts

    (kindly,) = open_workspaces(web.config)
    Accounts(kindly.store).add("kari", "another password", ["xero:other"], datetime.now(UTC))
    kindly.store.close()
    stranger = web.app.test_client()
    assert sign_in(stranger, "kari", "another password") == 302
    assert stranger.get(f"/o/{web.org}/").status_code == 404
    assert stranger.get(f"/o/{web.org}/clients/C01").status_code == 404


def test_a_client_name_with_html_is_shown_as_text(web: WebApp, client: FlaskClient) -> None:
    customers = web.config.parent / "ledger" / "customers.json"
    data = json.loads(customers.read_text(encoding="utf-8"))
    data[0]["name"] = '<script>alert("x")</script><b>Van Dijk</b> & Co'
    customers.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert sign_in(client) == 302
    sync(client, web.app, web.org)
    for path in (f"/o/{web.org}/", f"/o/{web.org}/clients", f"/o/{web.org}/clients/C01"):
        shown = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in shown and "<b>Van Dijk" not in shown, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;Van Dijk" in shown, path


def test_pages_carry_the_security_headers_and_the_cookie_its_flags(
    web: WebApp, client: FlaskClient
) -> None:
    answer = client.get("/login")
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie, "plain http on loopback"
    from plugin.app.web import create_app

    behind_tls = create_app(web.config, public_url="https://kindly.example").test_client()
    assert "Secure" in behind_tls.get("/login").headers["Set-Cookie"]


def test_sync_set_a_client_firm_preview_send_and_see_the_note(
    web: WebApp, client: FlaskClient
) -> None:
    """The user's round: sync, make a client firm, read the message as it will go out,
    send it alone, and find it in what went out with its note written back."""
    org = web.org
    assert sign_in(client) == 302
    page = client.get(f"/o/{org}/").get_data(as_text=True)
    assert "Not synced yet" in page
    page = sync(client, web.app, org)
    assert "Bakkerij Van Dijk" in page, re.sub(r"\s+", " ", page)[:3000]
    assert "14 clients, 66 invoices, 0 records left out" in page

    form = client.get(f"/o/{org}/clients/C01").get_data(as_text=True)
    status, saved = _post(
        client,
        f"/o/{org}/clients/C01",
        form,
        tone="firm",
        language="nl",
        formality="formal",
        channels=["email"],
    )
    assert status == 200 and "Saved the settings of Bakkerij Van Dijk" in saved
    assert re.search(r'<option value="firm" selected>', saved)

    overview = client.get(f"/o/{org}/").get_data(as_text=True)
    keys = re.findall(r'name="key" value="([0-9a-f]+)"', overview)
    assert len(keys) > 1, "several reminders due"
    found = re.search(
        r"Bakkerij Van Dijk</td>.*?first \(firm\).*?/preview/([0-9a-f]+)", overview, re.S
    )
    assert found, "C01's reminder, firm now"
    key = found.group(1)
    preview = client.get(f"/o/{org}/preview/{key}").get_data(as_text=True)
    assert 'sandbox src="/o/' in preview and "Subject:" in preview
    framed = client.get(f"/o/{org}/preview/{key}/email.html")
    assert framed.headers["Content-Security-Policy"].startswith("default-src 'none'")
    html = framed.get_data(as_text=True)
    text = re.sub(r"<[^>]+>", " ", html)
    # Firm, not friendly: "the payment term has passed" (friendly: "a friendly reminder").
    assert "De betaaltermijn van de onderstaande facturen is verstreken" in text, text[:3000]

    status, sent = _post(client, f"/o/{org}/send", overview, key=[key])
    assert status == 200 and "Sent 1," in sent and "notes written back: 1" in sent
    (message,) = web.smtp.received
    assert message.recipients == ["administratie@bakkerijvandijk.example"]
    body = message.message.get_body(("plain",))
    assert body is not None
    assert "De betaaltermijn van de onderstaande facturen is verstreken" in body.get_content()
    history = client.get(f"/o/{org}/").get_data(as_text=True)
    row = re.search(r"<tr>\s*<td>[^<]+</td>\s*<td>Bakkerij Van Dijk</td>.*?</tr>", history, re.S)
    assert row and "sent" in row.group(0) and "written" in row.group(0)
    # Sent once: it is no longer due, and its preview is gone.
    assert key not in re.findall(r'name="key" value="([0-9a-f]+)"', history)
    assert client.get(f"/o/{org}/preview/{key}").status_code == 404


def test_a_wrong_setting_is_named_and_nothing_is_kept(web: WebApp, client: FlaskClient) -> None:
    assert sign_in(client) == 302
    sync(client, web.app, web.org)
    form = client.get(f"/o/{web.org}/clients/C01").get_data(as_text=True)
    answer = client.post(
        f"/o/{web.org}/clients/C01",
        data={"tone": "rude", "pause_until": "someday", "csrf_token": token(form)},
    )
    assert answer.status_code == 400
    assert "is not a tone" in answer.get_data(as_text=True)
    again = client.get(f"/o/{web.org}/clients/C01").get_data(as_text=True)
    assert '<option value="rude"' not in again


def test_a_promise_to_pay_holds_the_invoice_and_can_be_forgotten(
    web: WebApp, client: FlaskClient
) -> None:
    assert sign_in(client) == 302
    sync(client, web.app, web.org)
    plan = client.get(f"/api/v1/organisations/{web.org}/plan").get_json()
    bakkerij = next(r for r in plan["reminders"] if r["customer_id"] == "C01")
    invoice_id, number = bakkerij["invoice_ids"][0], bakkerij["invoices"][0]
    page = client.get(f"/o/{web.org}/clients/C01").get_data(as_text=True)
    assert "No promise to pay." in page
    # Wrong input is named, and nothing is kept.
    for wrong, says in (
        ({"invoice": invoice_id, "until": "2026-11-01"}, "until: 2026-11-01 is in the past"),
        ({"invoice": invoice_id, "until": "soon"}, "until: &#39;soon&#39; is not a date"),
        ({"invoice": "NOT-THERE", "until": "2026-12-10"}, "is not an open invoice"),
        ({"invoice": invoice_id, "until": "2026-12-10", "amount": "-5"}, "amount: -5 is not"),
    ):
        answer = client.post(
            f"/o/{web.org}/clients/C01/promises", data={**wrong, "csrf_token": token(page)}
        )
        assert answer.status_code == 400 and says in answer.get_data(as_text=True), says
    status, page = _post(
        client,
        f"/o/{web.org}/clients/C01/promises",
        page,
        invoice=invoice_id,
        until="2026-12-10",
        note="Pays after the holidays",
    )
    assert status == 200
    assert f"Recorded: no reminder for {number} until 2026-12-10." in page
    assert f"{number}: promised by 2026-12-10" in page and "Pays after the holidays" in page
    plan = client.get(f"/api/v1/organisations/{web.org}/plan").get_json()
    held = [s for s in plan["skips"] if s["invoice_id"] == invoice_id]
    assert held and held[0]["code"] == "promised", held
    assert all(invoice_id not in r["invoice_ids"] for r in plan["reminders"])
    # Another organisation's client, or a promise not kept here, is not found.
    assert (
        client.post(
            "/o/000000000000/clients/C01/promises",
            data={"forget": invoice_id, "csrf_token": token(page)},
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/o/{web.org}/clients/C01/promises",
            data={"forget": "someone-elses", "csrf_token": token(page)},
        ).status_code
        == 404
    )
    status, page = _post(client, f"/o/{web.org}/clients/C01/promises", page, forget=invoice_id)
    assert "Forgot the promise to pay." in page and "No promise to pay." in page
    plan = client.get(f"/api/v1/organisations/{web.org}/plan").get_json()
    assert any(invoice_id in r["invoice_ids"] for r in plan["reminders"])


def test_clients_filtered_and_changed_together(web: WebApp, client: FlaskClient) -> None:
    assert sign_in(client) == 302
    sync(client, web.app, web.org)
    listed = client.get(f"/o/{web.org}/clients?language=nl").get_data(as_text=True)
    dutch = set(re.findall(r'name="client" value="([^"]+)"', listed))
    assert dutch and "C01" in dutch
    everyone = client.get(f"/o/{web.org}/clients").get_data(as_text=True)
    assert len(set(re.findall(r'name="client" value="([^"]+)"', everyone))) == 14
    assert set(re.findall(r'name="client" value="([^"]+)"', everyone)) > dutch
    # Nothing chosen, or a wrong value: named, and no client is changed.
    nothing = client.post(
        f"/o/{web.org}/clients", data={"tone": "firm", "csrf_token": token(listed)}
    )
    assert nothing.status_code == 400 and "no client was chosen" in nothing.get_data(as_text=True)
    wrong = client.post(
        f"/o/{web.org}/clients",
        data={"client": sorted(dutch), "pause_until": "someday", "csrf_token": token(listed)},
    )
    assert wrong.status_code == 400 and "is not a date" in wrong.get_data(as_text=True)
    changed = client.post(
        f"/o/{web.org}/clients?language=nl",
        data={
            "client": sorted(dutch),
            "tone": "firm",
            "pause_until": "2026-12-31",
            "pause_reason": "Year-end close",
            "csrf_token": token(listed),
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"Changed {len(dutch)} clients." in changed
    firm = client.get(f"/o/{web.org}/clients?tone=firm&reminders=paused").get_data(as_text=True)
    assert set(re.findall(r'name="client" value="([^"]+)"', firm)) == dutch
    rows = client.get(f"/api/v1/organisations/{web.org}/clients").get_json()["clients"]
    for row in rows:
        if row["id"] in dutch:
            assert (row["tone"], row["pause_until"], row["pause_reason"]) == (
                "firm",
                "2026-12-31",
                "Year-end close",
            )
        else:
            assert row["pause_until"] is None
    lifted = client.post(
        f"/o/{web.org}/clients",
        data={"client": ["C01"], "reminders": "resume", "csrf_token": token(listed)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Changed 1 client." in lifted
    paused = client.get(f"/o/{web.org}/clients?reminders=paused").get_data(as_text=True)
    assert "C01" not in set(re.findall(r'name="client" value="([^"]+)"', paused))


def test_a_letter_is_previewed_as_the_pdf_that_will_be_printed(
    web: WebApp, client: FlaskClient
) -> None:
    assert sign_in(client) == 302
    overview = sync(client, web.app, web.org)
    email_key = re.search(r"/preview/([0-9a-f]+)", overview)
    assert email_key
    form = client.get(f"/o/{web.org}/clients/C01").get_data(as_text=True)
    status, _ = _post(
        client, f"/o/{web.org}/clients/C01", form, tone="friendly", language="nl",
        formality="formal", channels=["letter"],
    )  # fmt: skip
    assert status == 200
    overview = client.get(f"/o/{web.org}/").get_data(as_text=True)
    found = re.search(r"Bakkerij Van Dijk</td>.*?/preview/([0-9a-f]+)", overview, re.S)
    assert found
    preview = client.get(f"/o/{web.org}/preview/{found.group(1)}").get_data(as_text=True)
    assert "The letter as PDF, as it will be printed" in preview
    pdf = client.get(f"/o/{web.org}/preview/{found.group(1)}/letter.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    # An e-mail with no letter to fall back on has no PDF.
    others = set(re.findall(r"/preview/([0-9a-f]+)", overview)) - {found.group(1)}
    emailed = next(
        key
        for key in others
        if "The letter as PDF"
        not in client.get(f"/o/{web.org}/preview/{key}").get_data(as_text=True)
    )
    assert client.get(f"/o/{web.org}/preview/{emailed}/letter.pdf").status_code == 404


def test_a_client_follows_another_policy_chosen_on_its_page(
    web: WebApp, client: FlaskClient
) -> None:
    with web.config.open("a", encoding="utf-8") as toml:
        toml.write(
            "\n[policies.strict]\nstages = [\n"
            '  { name = "first", after = "due", days = 1 },\n'
            '  { name = "final", after = "previous", days = 7, tone = "firm" },\n]\n'
        )
    assert sign_in(client) == 302
    sync(client, web.app, web.org)
    form = client.get(f"/o/{web.org}/clients/C02").get_data(as_text=True)
    assert '<select id="policy" name="policy">' in form
    status, saved = _post(client, f"/o/{web.org}/clients/C02", form, policy="strict")
    assert status == 200 and '<option value="strict" selected>' in saved
    wrong = client.post(
        f"/o/{web.org}/clients/C02", data={"policy": "lenient", "csrf_token": token(form)}
    )
    assert wrong.status_code == 400
    assert "no policy &#39;lenient&#39; (known: default, strict)" in wrong.get_data(as_text=True)


def test_the_runs_page_shows_each_organisation_and_whether_the_queue_answers(
    web: WebApp, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kindly status` in the web app; a broker that does not answer is said, not a 500.
    (tests/test_workers.py reads it after real workers ran.)"""
    pytest.importorskip("celery")
    monkeypatch.setenv("KINDLY_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens
    assert sign_in(client) == 302
    page = client.get("/runs").get_data(as_text=True)
    assert "Scheduled runs" in page and "The queue cannot be asked" in page
    row = re.search(r"<tbody>\s*<tr>(.*?)</tr>", page, re.S)
    assert row and "never" in row.group(1) and "scheduler's next look" in row.group(1)
