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


#: What PATCH may change of a client, as `kindly clients set` and the client page do.
CLIENT_FIELDS = (
    "tone", "language", "formality", "channels", "policy", "pause_until", "pause_reason",
    "excluded",
)  # fmt: skip


_KINDS = {list: "a list", bool: "true or false", str: "a string"}


def _client_or_404(kindly: Any, client: str) -> dict[str, Any]:
    from plugin.app.cli.clients import client_rows

    if not _synced(kindly):
        raise _NotFound("not synced yet: POST its /sync first")
    found = next((row for row in client_rows(kindly) if row["id"] == client), None)
    if found is None:
        raise _NotFound(f"no client {client!r} in this organisation")
    return found


class _NotFound(Exception):
    pass


@api.errorhandler(_NotFound)
def _not_found(error: _NotFound) -> Response:
    return _problem(404, str(error))


def _promises_of(kindly: Any, client: str) -> list[dict[str, Any]]:
    snapshot = kindly.snapshot()
    kept = {p.invoice_id for p in kindly.kept_promises()}
    return [
        {
            "invoice_id": promise.invoice_id,
            "invoice": snapshot.invoices_by_id[promise.invoice_id].number,
            "until": promise.promised_date.isoformat(),
            "amount": {"amount": str(promise.amount.amount), "currency": promise.amount.currency}
            if promise.amount
            else None,
            "note": promise.note,
            "kept_in": "kindly" if promise.invoice_id in kept else "accounting system",
        }
        for promise in snapshot.promises
        if promise.invoice_id in snapshot.invoices_by_id
        and snapshot.invoices_by_id[promise.invoice_id].customer_id == client
    ]


@api.get("/organisations/<org>/clients/<client>")
@signed_in
def client_of(org: str, client: str) -> Any:
    """One client: its effective settings, its promises to pay."""
    with _organisation(org) as kindly:
        row = _client_or_404(kindly, client)
        return jsonify({**row, "promises": _promises_of(kindly, client)})


@api.patch("/organisations/<org>/clients/<client>")
@signed_in
def change_client_of(org: str, client: str) -> Any:
    """Change a client's own settings (they win over kindly.toml); all or nothing."""
    from plugin.app.client_settings import ClientSettingError, change_client

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _problem(400, "the body must be a JSON object of settings")
    unknown = sorted(set(body) - set(CLIENT_FIELDS))
    if unknown:
        return _problem(400, f"{unknown[0]}: not a client setting ({', '.join(CLIENT_FIELDS)})")
    for name, value in body.items():
        expected = {"channels": list, "excluded": bool}.get(name, str)
        if value is not None and not isinstance(value, expected):
            return _problem(400, f"{name}: must be {_KINDS[expected]} (or null)")
        if isinstance(value, list) and not all(isinstance(c, str) for c in value):
            return _problem(400, "channels: must be a list of channel names")
    with _organisation(org) as kindly:
        _client_or_404(kindly, client)
        resume = "pause_until" in body and body["pause_until"] is None
        values = {name: value for name, value in body.items() if value is not None}
        try:
            change_client(kindly, client, values, _now(), resume=resume)
        except ClientSettingError as exc:
            return _problem(400, f"{exc.field}: {exc}")
        kindly_row = _client_or_404(kindly, client)
        return jsonify({**kindly_row, "promises": _promises_of(kindly, client)})


@api.put("/organisations/<org>/clients/<client>/promises/<invoice>")
@signed_in
def keep_promise(org: str, client: str, invoice: str) -> Any:
    """Record a promise to pay for one of the client's open invoices (by id or number)."""
    from plugin.app.client_settings import ClientSettingError, promise_for

    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("until"), str):
        return _problem(400, "until: the day the client promised to pay by (YYYY-MM-DD)")
    amount, note = body.get("amount"), body.get("note")
    if amount is not None and not isinstance(amount, str):
        return _problem(400, 'amount: a string such as "250.00"')
    if note is not None and not isinstance(note, str):
        return _problem(400, "note: text")
    with _organisation(org) as kindly:
        _client_or_404(kindly, client)
        try:
            promise = promise_for(kindly, client, invoice, body["until"], amount, note, _now())
        except ClientSettingError as exc:
            return _problem(400, f"{exc.field}: {exc}")
        kindly.keep_promise(promise, _now())
        found = [p for p in _promises_of(kindly, client) if p["invoice_id"] == promise.invoice_id]
        return jsonify(found[-1])


@api.delete("/organisations/<org>/clients/<client>/promises/<invoice>")
@signed_in
def forget_promise(org: str, client: str, invoice: str) -> Any:
    """Forget a promise recorded in Kindly (those in the accounting system stay)."""
    with _organisation(org) as kindly:
        _client_or_404(kindly, client)
        snapshot = kindly.snapshot()
        ids = {
            i.id
            for i in snapshot.invoices
            if i.customer_id == client and invoice in (i.id, i.number)
        }
        kept = [p.invoice_id for p in kindly.kept_promises() if p.invoice_id in ids]
        if not kept:
            return _problem(404, f"no promise recorded in Kindly for {invoice!r}")
        for invoice_id in kept:
            kindly.forget_promise(invoice_id)
        return Response(status=204)
