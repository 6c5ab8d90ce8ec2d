"""The JSON API behind the pages (/api/v1): what it answers, its errors in JSON, and
schemathesis against its own OpenAPI description: no 500s, no answer outside the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings

from tests.fakes.smtp import SmtpServer, start_smtp
from tests.web_harness import WebApp, finish_syncs, sign_in, sync, web_app


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def web(demo_workspace: Path, smtp: SmtpServer) -> Iterator[WebApp]:
    app = web_app(demo_workspace, smtp)
    yield app
    finish_syncs(app.app)


@pytest.fixture
def client(web: WebApp) -> FlaskClient:
    client = web.app.test_client()
    assert sign_in(client) == 302
    return client


def test_without_a_session_every_answer_is_401_in_json(web: WebApp) -> None:
    anonymous = web.app.test_client()
    for path in ("/api/v1/organisations", f"/api/v1/organisations/{web.org}/plan"):
        answer = anonymous.get(path)
        assert answer.status_code == 401, path
        assert answer.get_json() == {"error": "sign in first (POST /login)"}
    assert anonymous.get("/api/v1/openapi.json").get_json()["openapi"].startswith("3.1")


def test_the_plan_clients_and_history_in_json(web: WebApp, client: FlaskClient) -> None:
    organisations = client.get("/api/v1/organisations").get_json()["organisations"]
    assert [o["id"] for o in organisations] == [web.org]
    not_yet = client.get(f"/api/v1/organisations/{web.org}/plan")
    assert not_yet.status_code == 409 and "not synced yet" in not_yet.get_json()["error"]
    sync(client, web.app, web.org)
    plan = client.get(f"/api/v1/organisations/{web.org}/plan").get_json()
    bakkerij = next(r for r in plan["reminders"] if r["customer"] == "Bakkerij Van Dijk")
    assert bakkerij["amount_due"]["currency"] == "EUR" and bakkerij["why"]
    assert plan["skips"], "the invoices left alone, each with its reason"
    firm = client.get(f"/api/v1/organisations/{web.org}/clients?tone=firm").get_json()
    assert all(row["tone"] == "firm" for row in firm["clients"])
    found = client.get(f"/api/v1/organisations/{web.org}/clients?q=bakkerij").get_json()
    assert [row["name"] for row in found["clients"]] == ["Bakkerij Van Dijk"]
    assert client.get(f"/api/v1/organisations/{web.org}/reminders").get_json() == {"reminders": []}
    assert client.get(f"/api/v1/organisations/{web.org}/reminders?limit=0").status_code == 400
    assert client.get("/api/v1/organisations/000000000000/plan").status_code == 404


def test_a_sync_is_started_once_and_followed(web: WebApp, client: FlaskClient) -> None:
    token = client.get("/api/v1/session").get_json()["csrf_token"]
    assert client.post(f"/api/v1/organisations/{web.org}/sync").status_code == 403
    path = f"/api/v1/organisations/{web.org}/sync"
    # Another process's sync, running and recently heard of: a second one is refused.
    from plugin.app.cli.base import open_workspaces
    from plugin.app.web.syncing import SCOPE

    (kindly,) = open_workspaces(web.config)
    from tests.web_harness import AT

    running = {"state": "running", "started": AT.isoformat(), "updated": AT.isoformat()}
    kindly.store.set_setting(SCOPE, kindly.source_id, {**running, "resource": "Invoices"}, AT)
    refused = client.post(path, headers={"X-CSRF-Token": token})
    assert refused.status_code == 409 and refused.get_json()["resource"] == "Invoices"
    # Heard of last 11 minutes ago: that process died; a new sync starts.
    from datetime import timedelta

    old = (AT - timedelta(minutes=11)).isoformat()
    kindly.store.set_setting(SCOPE, kindly.source_id, {**running, "updated": old}, AT)
    kindly.store.close()
    started = client.post(path, headers={"X-CSRF-Token": token})
    assert started.status_code == 202 and started.get_json()["state"] == "running"
    finish_syncs(web.app)
    done = client.get(path).get_json()
    assert (done["state"], done["clients"], done["invoices"]) == ("done", 14, 66)


def test_a_failed_sync_says_why_in_plain_words(web: WebApp, client: FlaskClient) -> None:
    invoices = web.config.parent / "ledger" / "invoices.json"
    invoices.write_text("[{", encoding="utf-8")
    page = sync(client, web.app, web.org)
    status = client.get(f"/api/v1/organisations/{web.org}/sync").get_json()
    assert status["state"] == "failed"
    assert "invoices.json" in status["error"], status
    assert "The last sync failed" in page and "invoices.json" in page


def test_the_api_keeps_to_its_openapi_description(web: WebApp, client: FlaskClient) -> None:
    """Every operation, 25 generated requests each (bounded for CI), with the signed-in
    session's cookie: schemathesis's checks (no 500, status codes, content types and
    bodies as described) hold. Each operation runs as a hypothesis test of its own."""
    from hypothesis import given
    from schemathesis.checks import positive_data_acceptance

    sync(client, web.app, web.org)
    cookie = client.get_cookie("kindly_session")
    assert cookie is not None
    session = {"kindly_session": cookie.value}
    csrf = client.get("/api/v1/session").get_json()["csrf_token"]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", web.app)
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err would raise here: wanted

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def keeps_to_it(case: Any) -> None:
            if case.path_parameters and "org" in case.path_parameters:
                # The one organisation there is: other ids are a plain 404 (tested above).
                case.path_parameters["org"] = web.org
            if case.path_parameters and "client" in case.path_parameters:
                # A real client, so that the generated changes reach the checks behind.
                case.path_parameters["client"] = "C01"
            if case.headers and "X-CSRF-Token" in case.headers:
                case.headers["X-CSRF-Token"] = csrf
            # What a change may be depends on the workspace (its policies, the client's
            # open invoices and what is due): a well-formed change may be refused with 400.
            # Every other check holds for them, and all checks for the rest.
            excluded = [positive_data_acceptance] if case.method in ("PATCH", "PUT") else []
            case.call_and_validate(cookies=session, excluded_checks=excluded)

        keeps_to_it()
        checked.append(operation.label)
    finish_syncs(web.app)
    assert len(checked) == 13, checked


def test_a_clients_settings_and_promises_through_the_api(web: WebApp, client: FlaskClient) -> None:
    sync(client, web.app, web.org)
    token = {"X-CSRF-Token": client.get("/api/v1/session").get_json()["csrf_token"]}
    path = f"/api/v1/organisations/{web.org}/clients/C01"
    before = client.get(path).get_json()
    assert before["id"] == "C01" and before["promises"] == []
    assert client.patch(path, json={"tone": "firm"}).status_code == 403, "no CSRF token"
    changed = client.patch(path, json={"tone": "firm", "channels": ["email"]}, headers=token)
    assert changed.status_code == 200 and changed.get_json()["tone"] == "firm"
    assert changed.get_json()["sources"]["tone"] == "client"
    wrong = client.patch(path, json={"tone": "grumpy", "language": "nl"}, headers=token)
    assert wrong.status_code == 400 and wrong.get_json()["error"].startswith("tone: ")
    assert client.get(path).get_json()["language"] == before["language"], "all or nothing"
    assert client.patch(path, json={"colour": "red"}, headers=token).status_code == 400
    assert client.patch(path, json={"excluded": "yes"}, headers=token).status_code == 400
    # A promise to pay for one of C01's open invoices holds it; forgotten, it is gone.
    plan = client.get(f"/api/v1/organisations/{web.org}/plan").get_json()
    number = next(r["invoices"][0] for r in plan["reminders"] if r["customer_id"] == "C01")
    promise = f"{path}/promises/{number}"
    kept = client.put(promise, json={"until": "2026-12-10", "note": "called"}, headers=token)
    assert kept.status_code == 200, kept.get_json()
    assert kept.get_json()["invoice"] == number and kept.get_json()["kept_in"] == "kindly"
    plan = client.get(f"/api/v1/organisations/{web.org}/plan").get_json()
    assert all(number not in r["invoices"] for r in plan["reminders"])
    past = client.put(promise, json={"until": "2020-01-01"}, headers=token)
    assert past.status_code == 400 and past.get_json()["error"].startswith("until: ")
    assert client.delete(promise, headers=token).status_code == 204
    assert client.delete(promise, headers=token).status_code == 404
    assert client.get(f"/api/v1/organisations/{web.org}/clients/nobody").status_code == 404
