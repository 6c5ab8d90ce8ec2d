"""The JSON API behind the pages, under /api/v1, described by /api/v1/openapi.json.

It answers the signed-in session (the same cookie as the pages; a POST carries the CSRF
token in ``X-CSRF-Token``). Every answer is JSON, errors too: 401 without a session, 404
for an organisation the account may not see, 409 when the work cannot be done now (not
synced, a sync running), each with ``error`` in plain words.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from plugin.app.web.guard import organisation_id
from plugin.app.web.views import _account, _now, _organisation, _synced, _workspaces
from plugin.errors import KindlyError

__all__ = ["api"]

api = Blueprint("api", __name__, url_prefix="/api/v1")
F = TypeVar("F", bound=Callable[..., Any])
#: The most history entries one answer holds.
MOST = 500


def _problem(status: int, error: str) -> Response:
    answer = jsonify({"error": error})
    answer.status_code = status
    return answer


@api.errorhandler(HTTPException)
def _http_problem(error: HTTPException) -> Response:
    return _problem(error.code or 500, error.description or error.name)


@api.errorhandler(KindlyError)
def _kindly_problem(error: KindlyError) -> Response:
    return _problem(409, str(error) + (f". {error.hint}" if error.hint else ""))


def signed_in(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if _account() is None:
            return _problem(401, "sign in first (POST /login)")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


@api.get("/openapi.json")
def openapi() -> Response:
    text = resources.files("plugin.app.web").joinpath("openapi.json").read_text("utf-8")
    return Response(text, mimetype="application/json")


@api.get("/session")
@signed_in
def session_of() -> Any:
    """Who is signed in, and the token a POST carries in X-CSRF-Token."""
    from plugin.app.web.guard import csrf_token

    account = _account()
    assert account is not None
    return jsonify({"account": account.name, "csrf_token": csrf_token()})


@api.get("/organisations")
@signed_in
def organisations() -> Any:
    account = _account()
    assert account is not None
    with _workspaces() as opened:
        return jsonify(
            {
                "organisations": [
                    {
                        "id": organisation_id(k.source_id),
                        "name": k.source.location,
                        "synced": _synced(k),
                    }
                    for k in opened
                    if account.may_see(k.source_id)
                ]
            }
        )


@api.get("/organisations/<org>/plan")
@signed_in
def plan(org: str) -> Any:
    """What is due now, with the why of each reminder and of each invoice left alone."""
    from plugin.app.cli.output import plan_as_json

    with _organisation(org) as kindly:
        if not _synced(kindly):
            return _problem(409, "not synced yet: POST its /sync first")
        return jsonify(plan_as_json(kindly.plan(_now())))


@api.get("/organisations/<org>/sync")
@signed_in
def sync_status_of(org: str) -> Any:
    from plugin.app.web.syncing import sync_status

    with _organisation(org) as kindly:
        return jsonify(sync_status(kindly.store, kindly.source_id))


@api.post("/organisations/<org>/sync")
@signed_in
def start_sync_of(org: str) -> Any:
    from plugin.app.web.syncing import start_sync, sync_status

    with _organisation(org) as kindly:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        started = start_sync(app, kindly.store, kindly.source_id)
        answer = jsonify(sync_status(kindly.store, kindly.source_id))
        answer.status_code = 202 if started else 409
        return answer


@api.get("/organisations/<org>/clients")
@signed_in
def clients(org: str) -> Any:
    from plugin.app.cli.clients import client_rows

    query = request.args.get("q", "").strip().lower()
    tone = request.args.get("tone", "")
    with _organisation(org) as kindly:
        rows = client_rows(kindly) if _synced(kindly) else []
        return jsonify(
            {
                "clients": [
                    row
                    for row in rows
                    if (not query or query in row["name"].lower() or query in row["id"].lower())
                    and (not tone or row["tone"] == tone)
                ]
            }
        )


@api.get("/organisations/<org>/reminders")
@signed_in
def reminders(org: str) -> Any:
    """What went out, newest first, each with its note's state."""
    from plugin.core.codec import to_jsonable

    limit = request.args.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= MOST:
        return _problem(400, f"limit: a whole number from 1 to {MOST}")
    with _organisation(org) as kindly:
        records = sorted(
            kindly.store.reminders(kindly.source_id),
            key=lambda record: record.sent_at or record.planned_at,
            reverse=True,
        )[: int(limit)]
        return Response(
            json.dumps({"reminders": to_jsonable(records)}, ensure_ascii=False),
            mimetype="application/json",
        )


@api.get("/organisations/<org>/reports/ageing")
@signed_in
def ageing_report(org: str) -> Any:
    """Open receivables by age today, per currency (as `kindly report ageing --json`)."""
    from plugin.app.reports import ageing_figures

    with _organisation(org) as kindly:
        if not _synced(kindly):
            return _problem(409, "not synced yet: POST its /sync first")
        return jsonify(ageing_figures(kindly, _now().date()))


@api.get("/organisations/<org>/reports/effect")
@signed_in
def effect_report(org: str) -> Any:
    """Reminders per week and stage, days to pay after each stage (`kindly report effect`)."""
    from plugin.app.reports import effect_figures

    with _organisation(org) as kindly:
        if not _synced(kindly):
            return _problem(409, "not synced yet: POST its /sync first")
        return jsonify(effect_figures(kindly))
