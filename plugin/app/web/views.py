"""The web app's pages. Each opens the workspaces afresh (settings, store, connectors), as
a command does, so that a client's settings changed a moment ago are what it shows."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from plugin.app.web.accounts import Account, Accounts, RateLimited
from plugin.app.web.guard import organisation_id
from plugin.errors import KindlyError

if TYPE_CHECKING:
    from plugin.config.settings import Settings
    from plugin.core.decisions import PlannedReminder
    from plugin.run import Kindly
    from plugin.state.store import Store

__all__ = ["pages"]

pages = Blueprint("pages", __name__)
F = TypeVar("F", bound=Callable[..., Any])

#: Entries of the reminder log shown on the overview.
RECENT = 30


def _now() -> datetime:
    clock: Callable[[], datetime] = current_app.config["KINDLY_CLOCK"]
    return clock()


def opened_store() -> tuple[Settings, Store]:
    """The settings and the store, opened once per request: the accounts and the
    connections live there, whether or not a source can be opened."""
    from plugin.app.wiring import load_settings, open_store

    if "store" not in g:
        g.settings = load_settings(Path(current_app.config["KINDLY_CONFIG"]))
        g.store = open_store(g.settings)
    return g.settings, g.store


@contextmanager
def _workspaces() -> Iterator[list[Kindly]]:
    """The workspaces, opened once per request (the account check and the page share
    them) and closed when the request ends."""
    from plugin.app.cli.base import workspaces_with

    if "kindlys" not in g:
        g.kindlys = workspaces_with(*opened_store())
    yield g.kindlys


@pages.teardown_app_request
def _close_workspaces(_error: BaseException | None) -> None:
    g.pop("kindlys", None)
    store = g.pop("store", None)
    if store is not None:
        store.close()


def _account() -> Account | None:
    name = session.get("account")
    if not isinstance(name, str):
        return None
    return Accounts(opened_store()[1]).get(name)


@pages.app_context_processor
def _navigation() -> dict[str, Any]:
    """What the navigation shows: the connections only to an account that manages them."""
    if "account" not in session:
        return {"may_manage": False}
    account = _account()
    return {"may_manage": bool(account and account.may_manage)}


def signed_in(view: F) -> F:
    """The page needs a signed-in account; without one, the sign-in page (and back)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if _account() is None:
            session.pop("account", None)
            return redirect(url_for("pages.sign_in", next=request.path))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


@contextmanager
def _organisation(org: str) -> Iterator[Kindly]:
    """The organisation the URL names, if the account may see it; else 404 (not 403: an
    organisation one may not see is one that is not there)."""
    account = _account()
    with _workspaces() as opened:
        for kindly in opened:
            if organisation_id(kindly.source_id) == org:
                if account is None or not account.may_see(kindly.source_id):
                    break
                yield kindly
                return
        abort(404)


def _synced(kindly: Kindly) -> str | None:
    """When the organisation was last synced (ISO, UTC), or None if never."""
    return kindly.store.get_bookmark(kindly.source_id, "snapshot")


@pages.app_errorhandler(KindlyError)
def problem(error: KindlyError) -> Any:
    """What Kindly says went wrong (a setting, a busy sender, a platform that refused), in
    plain words on a page, never a traceback."""
    return render_template("problem.html.j2", error=error), 409


# -- signing in ---------------------------------------------------------------------------


@pages.route("/login", methods=["GET", "POST"])
def sign_in() -> Any:
    target = request.args.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("pages.home")  # only a page of this app: never a redirect away
    if request.method == "GET":
        return render_template("sign_in.html.j2", next=target)
    name = request.form.get("name", "")
    password = request.form.get("password", "")
    accounts = Accounts(opened_store()[1])
    try:
        account = accounts.sign_in(name, password, _now())
    except RateLimited as exc:
        return render_template("sign_in.html.j2", next=target, error=str(exc)), 429
    if account is None:
        return (
            render_template("sign_in.html.j2", next=target, error="Wrong name or password."),
            401,
        )
    # A new session: the one before sign-in (and its CSRF token) is dropped.
    session.clear()
    session["account"] = account.name
    return redirect(target)


@pages.route("/logout", methods=["POST"])
def sign_out() -> Any:
    session.clear()
    return redirect(url_for("pages.sign_in"))


@pages.route("/")
@signed_in
def home() -> Any:
    account = _account()
    assert account is not None
    try:
        with _workspaces() as opened:
            visible = [
                {"id": organisation_id(k.source_id), "name": k.source.location}
                for k in opened
                if account.may_see(k.source_id)
            ]
    except KindlyError as exc:
        # Nothing to show until a source is connected (Xero before its sign-in): the
        # connections page says why and offers the connect button.
        if not account.may_manage:
            raise
        flash(f"{exc}. Connect it below.", "warning")
        return redirect(url_for("pages.connections"))
    if len(visible) == 1:
        return redirect(url_for("pages.overview", org=visible[0]["id"]))
    return render_template("home.html.j2", organisations=visible)


# -- the overview: what is due, what went out ----------------------------------------------


@pages.route("/o/<org>/")
@signed_in
def overview(org: str) -> Any:
    from plugin.app.web.syncing import sync_status
    from plugin.compose.render import note_locale

    with _organisation(org) as kindly:
        now = _now()
        synced = _synced(kindly)
        plan = kindly.plan(now) if synced else None
        names = {c.id: c.name for c in kindly.snapshot().customers} if synced else {}
        records = sorted(
            kindly.store.reminders(kindly.source_id),
            key=lambda record: record.sent_at or record.planned_at,
            reverse=True,
        )[:RECENT]
        return render_template(
            "overview.html.j2",
            org=org,
            organisation=kindly.source.location,
            synced=synced,
            plan=plan,
            names=names,
            left_out=kindly.left_out() if synced else (),
            last_sync=sync_status(kindly.store, kindly.source_id),
            records=records,
            now=now,
            locale=note_locale(kindly.settings),
        )


@pages.route("/o/<org>/sync", methods=["POST"])
@signed_in
def sync(org: str) -> Any:
    """Start the sync beside this request, and show how it goes."""
    from plugin.app.web.syncing import start_sync

    with _organisation(org) as kindly:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if not start_sync(app, kindly.store, kindly.source_id):
            flash(f"A sync of {kindly.source.location} is running already: here it is.", "warning")
    return redirect(url_for("pages.sync_progress", org=org), code=303)


@pages.route("/o/<org>/sync")
@signed_in
def sync_progress(org: str) -> Any:
    """How the sync goes: the page asks /api/v1 every second (static/sync.js), or reloads
    itself without JavaScript, and goes on to the overview when it is done."""
    from plugin.app.web.syncing import sync_status

    with _organisation(org) as kindly:
        status = sync_status(kindly.store, kindly.source_id)
        return render_template(
            "sync.html.j2", org=org, organisation=kindly.source.location, status=status
        )


@pages.route("/o/<org>/send", methods=["POST"])
@signed_in
def send(org: str) -> Any:
    chosen = set(request.form.getlist("key"))
    with _organisation(org) as kindly:
        now = _now()
        plan = kindly.plan(now)
        approved = replace(
            plan,
            reminders=tuple(r for r in plan.reminders if r.key in chosen),
            appointments=tuple(a for a in plan.appointments if a.key in chosen),
        )
        if not approved.reminders and not approved.appointments:
            flash("Nothing was chosen: nothing was sent.", "warning")
            return redirect(url_for("pages.overview", org=org))
        result = kindly.send(approved, now)
        flash(
            f"Sent {len(result.sent)}, deferred {len(result.deferred)}, failed "
            f"{len(result.failed)}, unconfirmed {len(result.unconfirmed)}; "
            f"notes written back: {result.notes_written}.",
            "done" if not (result.failed or result.unconfirmed) else "warning",
        )
        for reminder, reason in [*result.failed, *result.deferred]:
            flash(f"{reminder.customer.name}: {reason}", "warning")
    return redirect(url_for("pages.overview", org=org))


# -- previews: each message as it will go out --------------------------------------------


def _planned(kindly: Kindly, key: str, now: datetime) -> PlannedReminder:
    """The reminder due now under ``key``; 404 when none is (sent since, or never due)."""
    if not _synced(kindly):
        abort(404)
    found = next((r for r in kindly.plan(now).reminders if r.key == key), None)
    if found is None:
        abort(404)
    return found


@pages.route("/o/<org>/preview/<key>")
@signed_in
def preview(org: str, key: str) -> Any:
    from plugin.compose.render import render_sms

    with _organisation(org) as kindly:
        now = _now()
        reminder = _planned(kindly, key, now)
        sms = None
        if reminder.channel == "sms":
            settings = kindly.settings
            sms = render_sms(
                reminder,
                settings,
                limit=settings.sms_limit,
                transliterate=settings.sms_transliterate,
                on=now.date(),
            )
        subject = None
        if reminder.channel == "email":
            subject = _email(kindly, reminder, now).subject
        return render_template(
            "preview.html.j2", org=org, reminder=reminder, sms=sms, subject=subject
        )


def _email(kindly: Kindly, reminder: PlannedReminder, now: datetime) -> Any:
    """The e-mail as the e-mail channel composes it: online links, invoice PDFs."""
    from plugin.compose.render import render_reminder
    from plugin.deliver.channels import invoice_attachments

    reminder = kindly.with_online_links(reminder)
    pdfs = invoice_attachments(kindly.source, reminder)
    return render_reminder(reminder, kindly.settings, pdfs, on=now.date())


@pages.route("/o/<org>/preview/<key>/<part>.html")
@signed_in
def framed(org: str, key: str, part: str) -> Any:
    """The message itself, for the preview's sandboxed frame: the e-mail's HTML (its QR code
    inline) or the printable letter."""
    from plugin.compose.render import QR_CID, render_letter

    with _organisation(org) as kindly:
        now = _now()
        reminder = _planned(kindly, key, now)
        if part == "email" and reminder.channel == "email":
            rendered = _email(kindly, reminder, now)
            html = rendered.html or ""
            if rendered.qr_png:
                inline = "data:image/png;base64," + base64.b64encode(rendered.qr_png).decode()
                html = html.replace(f"cid:{QR_CID}", inline)
        elif part == "letter" and reminder.channel == "letter":
            html = render_letter(reminder, kindly.settings, now.date())
        else:
            abort(404)
    return Response(html, mimetype="text/html")


# -- clients ------------------------------------------------------------------------------


@pages.route("/o/<org>/clients")
@signed_in
def clients(org: str) -> Any:
    from plugin.app.cli.clients import client_rows
    from plugin.core.vocabulary import TONES

    query = request.args.get("q", "").strip().lower()
    tone = request.args.get("tone", "")
    with _organisation(org) as kindly:
        rows = [
            row
            for row in (client_rows(kindly) if _synced(kindly) else [])
            if (not query or query in row["name"].lower() or query in row["id"].lower())
            and (not tone or row["tone"] == tone)
        ]
        return render_template(
            "clients.html.j2", org=org, rows=rows, query=query, tone=tone, tones=TONES
        )


@pages.route("/o/<org>/clients/<client>", methods=["GET", "POST"])
@signed_in
def client(org: str, client: str) -> Any:
    from plugin.app.cli.clients import client_rows
    from plugin.app.client_settings import ClientSettingError, change_client
    from plugin.core.vocabulary import CHANNELS, FORMALITIES, LANGUAGES, TONES

    with _organisation(org) as kindly:
        rows = {row["id"]: row for row in (client_rows(kindly) if _synced(kindly) else [])}
        if client not in rows:
            abort(404)
        error = None
        if request.method == "POST":
            form = request.form
            values = {
                "tone": form.get("tone") or None,
                "language": form.get("language") or None,
                "formality": form.get("formality") or None,
                "channels": form.getlist("channels") or None,
                "pause_until": form.get("pause_until") or None,
                "pause_reason": form.get("pause_reason") or None,
                "excluded": form.get("excluded") == "on",
            }
            # Only what was changed becomes the client's own setting: the rest keeps
            # following kindly.toml.
            current = rows[client]
            changed = {
                name: value
                for name, value in values.items()
                if value != (current[name] if name != "channels" else current["channels"])
            }
            try:
                change_client(
                    kindly,
                    client,
                    changed,
                    _now(),
                    resume=bool(current["pause_until"]) and not values["pause_until"],
                )
            except ClientSettingError as exc:
                error = f"{exc.field.replace('_', ' ')}: {exc}"
            else:
                flash(f"Saved the settings of {rows[client]['name']}.", "done")
                return redirect(url_for("pages.client", org=org, client=client))
        return render_template(
            "client.html.j2",
            org=org,
            row=rows[client],
            error=error,
            tones=TONES,
            languages=LANGUAGES,
            formalities=FORMALITIES,
            channels=CHANNELS,
        ), (400 if error else 200)
