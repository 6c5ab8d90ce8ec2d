"""Two workspaces in one database, through the web app: each app answers from its own
workspace only, its accounts and sessions mean nothing to the other.

Both workspaces read a demo ledger, so their organisation has the same source id in the
store ("ledger"): were any row shared, one would see the other's reminders, promises,
sync or sign-ins. The test asks every GET of the API before and after the other
workspace did all it can, and the answers must not change.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from plugin.app.cli.base import open_workspaces
from plugin.app.web.accounts import Accounts
from tests.fakes.smtp import SmtpServer, start_smtp
from tests.web_harness import AT, WebApp, finish_syncs, sign_in, sync, token, web_app


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp(tmp_path)
    yield server
    server.stop()


def _in_shared_store(demo_workspace: Path, folder: Path, store_url: str, name: str) -> Path:
    workspace = folder / "workspace"
    shutil.copytree(demo_workspace, workspace)
    config = workspace / "kindly.toml"
    text = config.read_text(encoding="utf-8")
    shared = f"url = {json.dumps(store_url)}\nworkspace = {json.dumps(name)}"
    text = text.replace('url = "sqlite:///kindly.sqlite3"', shared, 1)
    assert shared in text
    config.write_text(text, encoding="utf-8")
    return workspace


def _every_get(client: FlaskClient, org: str) -> dict[str, Any]:
    paths = [
        "/api/v1/organisations",
        f"/api/v1/organisations/{org}/plan",
        f"/api/v1/organisations/{org}/sync",
        f"/api/v1/organisations/{org}/clients",
        f"/api/v1/organisations/{org}/reminders",
        f"/api/v1/organisations/{org}/reports/ageing",
        f"/api/v1/organisations/{org}/reports/effect",
        f"/api/v1/organisations/{org}/clients/C01",
        f"/api/v1/organisations/{org}/clients/C09",
    ]
    answers = {}
    for path in paths:
        answer = client.get(path)
        answers[path] = (answer.status_code, answer.get_json())
    return answers


def test_one_workspace_sees_nothing_of_another_in_the_same_database(
    demo_workspace: Path, tmp_path: Path, smtp: SmtpServer, store_url: str
) -> None:
    alpha = web_app(_in_shared_store(demo_workspace, tmp_path / "a", store_url, "alpha"), smtp)
    beta = web_app(_in_shared_store(demo_workspace, tmp_path / "b", store_url, "beta"), smtp)
    assert alpha.org == beta.org, "the same organisation id: only the workspace sets apart"
    (beta_kindly,) = open_workspaces(beta.config)
    Accounts(beta_kindly.store).add("bert", "beta's own password", ["*"], AT - timedelta(days=1))
    beta_kindly.store.close()

    in_alpha = alpha.app.test_client()
    assert sign_in(in_alpha) == 302
    sync(in_alpha, alpha.app, alpha.org)
    before = _every_get(in_alpha, alpha.org)
    assert before[f"/api/v1/organisations/{alpha.org}/plan"][0] == 200
    assert before[f"/api/v1/organisations/{alpha.org}/reminders"][1] == {"reminders": []}

    # Beta does all it can: syncs, changes a client, keeps a promise, sends everything.
    in_beta = beta.app.test_client()
    assert sign_in(in_beta, "bert", "beta's own password") == 302
    _do_everything(in_beta, beta)
    sent = in_beta.get(f"/api/v1/organisations/{beta.org}/reminders").get_json()["reminders"]
    assert sent and smtp.received, "beta sent its reminders"

    assert _every_get(in_alpha, alpha.org) == before
    # Beta's account and beta's session mean nothing to alpha's app.
    assert sign_in(alpha.app.test_client(), "bert", "beta's own password") != 302
    stolen = alpha.app.test_client()
    stolen.set_cookie("kindly_session", in_beta.get_cookie("kindly_session").value)  # type: ignore[union-attr]
    assert stolen.get("/api/v1/organisations").status_code == 401
    finish_syncs(alpha.app)


def _do_everything(client: FlaskClient, web: WebApp) -> None:
    sync(client, web.app, web.org)
    headers = {"X-CSRF-Token": client.get("/api/v1/session").get_json()["csrf_token"]}
    base = f"/api/v1/organisations/{web.org}/clients"
    changed = client.patch(f"{base}/C09", json={"tone": "friendly"}, headers=headers)
    assert changed.status_code == 200, changed.get_json()
    plan = client.get(f"/api/v1/organisations/{web.org}/plan").get_json()
    number = next(r["invoices"][0] for r in plan["reminders"] if r["customer_id"] == "C01")
    kept = client.put(
        f"{base}/C01/promises/{number}", json={"until": "2026-12-10"}, headers=headers
    )
    assert kept.status_code == 200, kept.get_json()
    overview = client.get(f"/o/{web.org}/").get_data(as_text=True)
    keys = re.findall(r'name="key" value="([0-9a-f]+)"', overview)
    answer = client.post(
        f"/o/{web.org}/send",
        data={"csrf_token": token(overview), "key": keys},
        follow_redirects=True,
    )
    assert answer.status_code == 200 and "Sent " in answer.get_data(as_text=True)
    finish_syncs(web.app)
