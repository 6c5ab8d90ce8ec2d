"""The web app's pages. Each opens the workspaces afresh (settings, store, connectors), as
a command does, so that a client's settings changed a moment ago are what it shows."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
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
from markupsafe import Markup

from plugin.app.web.accounts import Account, Accounts, RateLimited
from plugin.app.web.guard import organisation_id
from plugin.app.web.i18n import gettext as _
from plugin.app.web.i18n import ngettext
from plugin.errors import KindlyError, PlatformRemindersOn

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
    from plugin.app.wiring import open_settings_and_store

    if "store" not in g:
        g.settings, g.store = open_settings_and_store(current_app.config["KINDLY_CONFIG"])
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
    if session.get("workspace") != current_app.config["KINDLY_SESSION_SCOPE"]:
        # Signed in to another workspace (one address serves many, and a shared
        # KINDLY_WEB_SECRET_KEY signs all their sessions): an account of the same name
        # here is someone else.
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
            # The path as the browser sees it: under /w/NAME where one address serves many.
            return redirect(url_for("pages.sign_in", next=request.script_root + request.path))
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
        waited = _(
            "too many failed sign-ins; try again after %(time)s UTC",
            time=f"{exc.until:%H:%M}",
        )
        return render_template("sign_in.html.j2", next=target, error=waited), 429
    if account is None:
        return (
            render_template("sign_in.html.j2", next=target, error=_("Wrong name or password.")),
            401,
        )
    # A new session: the one before sign-in (and its CSRF token) is dropped; the
    # language chosen stays.
    language = session.get("language")
    session.clear()
    session["account"] = account.name
    session["workspace"] = current_app.config["KINDLY_SESSION_SCOPE"]
    if language is not None:
        session["language"] = language
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
        flash(_("%(problem)s. Connect it below.", problem=exc), "warning")
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
            platform_reminders=kindly.platform_reminders() if synced else [],
            beside_platform=kindly.settings.beside_platform_reminders,
            platform=kindly.source.title,
            writes_notes=kindly.source.writes_notes,
            last_sync=sync_status(kindly.store, kindly.source_id),
            pictures=_pictures(kindly, now) if synced else [],
            records=records,
            now=now,
            locale=note_locale(kindly.settings),
        )


def _pictures(kindly: Kindly, now: datetime) -> list[tuple[str, Markup]]:
    """The overview's pictures: receivables by age per currency, reminders per week and
    stage, and the days clients took to pay after each stage."""
    from decimal import Decimal

    from plugin.app.reports import ageing_figures, effect_figures
    from plugin.app.web.charts import Bar, bars, stacked
    from plugin.app.web.i18n import AGE_LABELS
    from plugin.compose.formatting import format_money
    from plugin.compose.render import note_locale
    from plugin.core.money import Money

    locale = note_locale(kindly.settings)
    pictures = []
    ageing = ageing_figures(kindly, now.date())
    for currency, row in ageing["currencies"].items():
        title = _("Open receivables in %(currency)s by age", currency=currency)
        pictures.append(
            (
                title,
                bars(
                    title,
                    [
                        Bar(
                            _(AGE_LABELS[name]),
                            Decimal(amount),
                            format_money(Money.of(amount, currency), locale),
                        )
                        for name, amount in row["buckets"].items()
                    ],
                ),
            )
        )
    effect = effect_figures(kindly)
    if effect["weeks"]:
        stages = [r["stage"] for r in effect["days_to_pay"]]
        stages += sorted({s for w in effect["weeks"] for s in w["stages"]} - set(stages))
        used = [s for s in stages if any(w["stages"].get(s) for w in effect["weeks"])]
        title = _("Reminders sent per week, by stage")
        rows = [
            (
                _("week of %(day)s", day=week["week"]),
                [week["stages"].get(stage, 0) for stage in used],
            )
            for week in effect["weeks"][-12:]
        ]
        pictures.append((title, stacked(title, rows, [_(stage) for stage in used])))
    paid = [row for row in effect["days_to_pay"] if row["paid"]]
    if paid:
        title = _("Days to pay after each stage (median)")
        pictures.append(
            (
                title,
                bars(
                    title,
                    [
                        Bar(
                            _(row["stage"]),
                            Decimal(row["median_days"]),
                            ngettext(
                                "%(num)d day (%(paid)s paid)",
                                "%(num)d days (%(paid)s paid)",
                                int(Decimal(row["median_days"])),
                                paid=row["paid"],
                            ),
                        )
                        for row in paid
                    ],
                ),
            )
        )
    return pictures


@pages.route("/o/<org>/clients/<client>/promises", methods=["POST"])
@signed_in
def promise(org: str, client: str) -> Any:
    """Record a promise to pay for one of the client's open invoices, or forget one."""
    from plugin.app.cli.clients import client_rows
    from plugin.app.client_settings import ClientSettingError, promise_for

    with _organisation(org) as kindly:
        rows = {row["id"]: row for row in (client_rows(kindly) if _synced(kindly) else [])}
        if client not in rows:
            abort(404)
        form = request.form
        if form.get("forget"):
            if form["forget"] not in {p.invoice_id for p in kindly.kept_promises()}:
                abort(404)
            kindly.forget_promise(form["forget"])
            flash(_("Forgot the promise to pay."), "done")
            return redirect(url_for("pages.client", org=org, client=client))
        try:
            kept = promise_for(
                kindly,
                client,
                form.get("invoice", ""),
                form.get("until", ""),
                form.get("amount") or None,
                form.get("note") or None,
                _now(),
            )
        except ClientSettingError as exc:
            return _client_page(kindly, org, rows[client], promise_error=f"{_(exc.field)}: {exc}")
        kindly.keep_promise(kept, _now())
        flash(
            _(
                "Recorded: no reminder for %(invoice)s until %(day)s.",
                invoice=kindly.snapshot().invoices_by_id[kept.invoice_id].number,
                day=kept.promised_date.isoformat(),
            ),
            "done",
        )
    return redirect(url_for("pages.client", org=org, client=client))


@pages.route("/o/<org>/clients/<client>/groups", methods=["POST"])
@signed_in
def platform_group(org: str, client: str) -> Any:
    """Write what Kindly uses for one setting to the accounting system, as the client's
    group there (a Xero contact group), so that both sides say the same."""
    from plugin.app.client_settings import write_platform_group

    with _organisation(org) as kindly:
        if not _synced(kindly) or client not in {c.id for c in kindly.snapshot().customers}:
            abort(404)
        try:
            group = write_platform_group(kindly, client, request.form.get("setting", ""))
        except KindlyError as exc:
            flash(
                _(
                    "Not written to %(platform)s: %(reason)s",
                    platform=kindly.source.title,
                    reason=f"{exc} {exc.hint}" if exc.hint else str(exc),
                ),
                "warning",
            )
        else:
            flash(
                _(
                    "Written to %(platform)s: the client is now in its group %(group)s. "
                    "The next sync reads it back.",
                    platform=kindly.source.title,
                    group=group,
                ),
                "done",
            )
    return redirect(url_for("pages.client", org=org, client=client) + "#platform")


def _payment_history(kindly: Kindly, client: str, now: datetime) -> Markup | None:
    """One client's last invoices: how late each paid one was paid, how overdue each
    open one is."""
    from decimal import Decimal

    from plugin.app.web.charts import Bar, bars
    from plugin.core.reports import paid_on

    snapshot = kindly.snapshot()
    paid = paid_on(snapshot)
    items = []
    invoices = sorted(
        (i for i in snapshot.invoices if i.customer_id == client),
        key=lambda invoice: invoice.due_date,
    )
    for invoice in invoices[-12:]:
        if invoice.id in paid:
            late = (paid[invoice.id] - invoice.due_date).days
            shown = (
                ngettext("paid %(num)d day late", "paid %(num)d days late", late)
                if late > 0
                else _("paid on time")
            )
        elif invoice.is_open:
            late = (now.date() - invoice.due_date).days
            shown = (
                ngettext("open, %(num)d day overdue", "open, %(num)d days overdue", late)
                if late > 0
                else _("open, not yet due")
            )
        else:
            continue
        items.append(Bar(invoice.number, Decimal(max(late, 0)), shown))
    if not items:
        return None
    return bars(_("Payment history: days late per invoice"), items)


@pages.route("/o/<org>/sync", methods=["POST"])
@signed_in
def sync(org: str) -> Any:
    """Start the sync beside this request, and show how it goes."""
    from plugin.app.web.syncing import start_sync

    with _organisation(org) as kindly:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if not start_sync(app, kindly.store, kindly.source_id):
            flash(
                _(
                    "A sync of %(source)s is running already: here it is.",
                    source=kindly.source.location,
                ),
                "warning",
            )
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
            flash(_("Nothing was chosen: nothing was sent."), "warning")
            return redirect(url_for("pages.overview", org=org))
        try:
            result = kindly.send(approved, now)
        except PlatformRemindersOn:
            flash(
                _(
                    "Nothing was sent: %(platform)s sends payment reminders of its own.",
                    platform=kindly.source.title,
                ),
                "warning",
            )
            return redirect(url_for("pages.overview", org=org))
        flash(
            _(
                "Sent %(sent)s, deferred %(deferred)s, failed %(failed)s, unconfirmed "
                "%(unconfirmed)s; notes written back: %(notes)s.",
                sent=len(result.sent),
                deferred=len(result.deferred),
                failed=len(result.failed),
                unconfirmed=len(result.unconfirmed),
                notes=result.notes_written,
            ),
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
        # What the client would get instead, should this channel fail for good.
        fallback_sms = None
        if reminder.channel != "sms" and "sms" in reminder.fallbacks:
            fallback_sms = render_sms(
                replace(reminder, channel="sms"),
                kindly.settings,
                limit=kindly.settings.sms_limit,
                transliterate=kindly.settings.sms_transliterate,
                on=now.date(),
            )
        return render_template(
            "preview.html.j2",
            org=org,
            reminder=reminder,
            sms=sms,
            subject=subject,
            fallback_sms=fallback_sms,
            letter="letter" in (reminder.channel, *reminder.fallbacks),
        )


@pages.route("/o/<org>/preview/<key>/letter.pdf")
@signed_in
def letter_pdf(org: str, key: str) -> Any:
    """The letter as it will be printed and posted: the PDF made for the print service."""
    from plugin.compose.render import letter_pdf as make_pdf
    from plugin.compose.render import render_letter

    with _organisation(org) as kindly:
        now = _now()
        reminder = _planned(kindly, key, now)
        if "letter" not in (reminder.channel, *reminder.fallbacks):
            abort(404)
        html = render_letter(replace(reminder, channel="letter"), kindly.settings, now.date())
        pdf = make_pdf(html)
    return Response(
        pdf.content,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{reminder.key[:12]}-letter.pdf"'},
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


#: The clients page's filters: the query parameter and the row's field it matches.
FILTERS = ("tone", "language", "stage", "reminders", "behaviour")


def _client_table(kindly: Kindly) -> list[dict[str, Any]]:
    """The clients with their effective settings, the furthest stage a reminder reached
    them at, and whether they are reminded ("on", "paused", "excluded")."""
    from plugin.app.cli.clients import client_rows
    from plugin.core.vocabulary import GONE_OUT

    if not _synced(kindly):
        return []
    order = {stage.name: n for n, stage in enumerate(kindly.settings.policies["default"].stages)}
    furthest: dict[str, str] = {}
    for record in kindly.store.reminders(kindly.source_id, statuses=GONE_OUT):
        known = furthest.get(record.customer_id)
        if record.stage in order and (known is None or order[record.stage] > order[known]):
            furthest[record.customer_id] = record.stage
    rows = client_rows(kindly)
    for row in rows:
        row["stage"] = furthest.get(row["id"], "none")
        row["reminders"] = (
            "excluded" if row["excluded"] else "paused" if row["pause_until"] else "on"
        )
    return rows


@pages.route("/o/<org>/clients", methods=["GET", "POST"])
@signed_in
def clients(org: str) -> Any:
    """The clients, searched and filtered; the chosen ones changed together."""
    from plugin.app.client_settings import ClientSettingError, change_client, checked
    from plugin.core.vocabulary import LANGUAGES, TONES

    query = request.args.get("q", "").strip().lower()
    chosen = {name: request.args.get(name, "") for name in FILTERS}
    error = None
    with _organisation(org) as kindly:
        table = _client_table(kindly)
        if request.method == "POST":
            form = request.form
            ids = {row["id"] for row in table} & set(form.getlist("client"))
            values: dict[str, Any] = {
                "tone": form.get("tone") or None,
                "language": form.get("language") or None,
                "pause_until": form.get("pause_until") or None,
                "pause_reason": form.get("pause_reason") or None,
            }
            if form.get("reminders") in ("exclude", "include"):
                values["excluded"] = form["reminders"] == "exclude"
            values = {k: v for k, v in values.items() if v is not None}
            try:
                if not ids:
                    raise ClientSettingError("client", _("no client was chosen"))
                if not values and form.get("reminders") != "resume":
                    raise ClientSettingError("change", _("no change was chosen"))
                checked(kindly, values)  # all or none: checked before any is changed
                for client in sorted(ids):
                    change_client(
                        kindly, client, values, _now(), resume=form.get("reminders") == "resume"
                    )
            except ClientSettingError as exc:
                error = f"{_(exc.field)}: {exc}"
            else:
                flash(
                    ngettext("Changed %(num)d client.", "Changed %(num)d clients.", len(ids)),
                    "done",
                )
                # Back to the same filters.
                query_string = request.query_string.decode()
                target = url_for("pages.clients", org=org)
                return redirect(f"{target}?{query_string}" if query_string else target)
        rows = [
            row
            for row in table
            if (not query or query in row["name"].lower() or query in row["id"].lower())
            and all(not value or row[name] == value for name, value in chosen.items())
        ]
        stages = [stage.name for stage in kindly.settings.policies["default"].stages]
        return render_template(
            "clients.html.j2",
            org=org,
            rows=rows,
            query=query,
            chosen=chosen,
            options={
                "tone": TONES,
                "language": LANGUAGES,
                "stage": ["none", *stages],
                "reminders": ("on", "paused", "excluded"),
                "behaviour": ("reliable", "usual", "chronic", "unknown"),
            },
            error=error,
        ), (400 if error else 200)


@pages.route("/o/<org>/clients/<client>", methods=["GET", "POST"])
@signed_in
def client(org: str, client: str) -> Any:
    from plugin.app.cli.clients import client_rows
    from plugin.app.client_settings import ClientSettingError, change_client

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
                "policy": form.get("policy") or None,
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
                flash(_("Saved the settings of %(client)s.", client=rows[client]["name"]), "done")
                return redirect(url_for("pages.client", org=org, client=client))
        return _client_page(kindly, org, rows[client], error=error)


def _client_page(
    kindly: Kindly, org: str, row: dict[str, Any], *, error: str | None = None,
    promise_error: str | None = None,
) -> Any:  # fmt: skip
    """A client's page: its settings form, its promises to pay, its payment history."""
    from plugin.compose.render import note_locale
    from plugin.core.vocabulary import CHANNELS, FORMALITIES, LANGUAGES, TONES

    client = row["id"]
    snapshot = kindly.snapshot()
    open_invoices = [i for i in snapshot.invoices if i.customer_id == client and i.is_open]
    kept = {p.invoice_id for p in kindly.kept_promises()}
    promises = [
        {
            "promise": promise,
            "number": snapshot.invoices_by_id[promise.invoice_id].number,
            "kept_here": promise.invoice_id in kept,
        }
        for promise in snapshot.promises
        if promise.invoice_id in snapshot.invoices_by_id
        and snapshot.invoices_by_id[promise.invoice_id].customer_id == client
    ]
    from plugin.app.client_settings import platform_groups

    return render_template(
        "client.html.j2",
        org=org,
        row=row,
        platform=platform_groups(kindly, client),
        platform_title=kindly.source.title,
        history=_payment_history(kindly, client, _now()),
        open_invoices=open_invoices,
        promises=promises,
        promise_error=promise_error,
        locale=note_locale(kindly.settings),
        error=error,
        tones=TONES,
        languages=LANGUAGES,
        formalities=FORMALITIES,
        channels=CHANNELS,
        policies=sorted(kindly.settings.policies),
    ), (400 if error or promise_error else 200)
