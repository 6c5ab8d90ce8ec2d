"""The settings page: the company and bank details, the default policy's stages, the send
window, the public holidays reminders wait for, and the charges opt-in.

Each form changes the workspace's settings where they are (:mod:`plugin.app.settings_file`):
its kindly.toml, or the document the database holds for it (db:NAME). The user's comments
stay, and a change is checked with the same rules and messages as the file. The settings
are shared by every organisation of the workspace, so only an account that may see them
all changes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import tomlkit
from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from tomlkit.items import Table
from tomlkit.toml_document import TOMLDocument

from plugin.app.web.connections import _manager
from plugin.app.web.i18n import gettext as _
from plugin.app.web.views import _now, opened_store, pages, signed_in
from plugin.config.settings import Settings
from plugin.errors import ConfigError

#: The countries whose public holidays the page lists: the next this many days.
HOLIDAYS_AHEAD = timedelta(days=90)
JURISDICTIONS = ("EU", "NL", "BE", "DE", "FR", "NO", "GB", "IE", "VN", "OTHER")
STAGE_CHANNELS = ("email", "sms", "letter", "task")


def _config() -> str | Path:
    config: str | Path = current_app.config["KINDLY_CONFIG"]
    return config


def _section(document: TOMLDocument, name: str) -> Table:
    found = document.get(name)
    if not isinstance(found, Table):
        found = tomlkit.table()
        document[name] = found
    return found


def _put(table: Table, key: str, value: Any) -> None:
    """Set ``key``; an empty answer removes it, so the default applies again."""
    if value is None or value == "" or value == []:
        if key in table:
            del table[key]
    else:
        table[key] = value


def _whole_number(text: str) -> int | str:
    """A number typed in a form; anything else is passed on for the schema to name."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return text


def _company(form: Mapping[str, str]) -> Callable[[TOMLDocument], None]:
    def change(document: TOMLDocument) -> None:
        company = _section(document, "company")
        for key in ("name", "email", "reply_to", "website", "phone", "country"):
            value = form.get(key, "").strip()
            _put(company, key, value.upper() if key == "country" else value)
        lines = [line.strip() for line in form.get("address", "").splitlines() if line.strip()]
        _put(company, "address", lines)

    return change


def _bank(form: Mapping[str, str]) -> Callable[[TOMLDocument], None]:
    def change(document: TOMLDocument) -> None:
        bank = _section(document, "bank")
        _put(bank, "account_holder", form.get("account_holder", "").strip())
        # IBANs are written in groups of four; the schema and schwifty take either.
        _put(bank, "iban", " ".join(form.get("iban", "").upper().split()))
        _put(bank, "bic", form.get("bic", "").strip().upper())
        _put(bank, "account_number", form.get("account_number", "").strip())
        if not bank:
            del document["bank"]

    return change


def _reminders(form: Any, settings: Settings) -> Callable[[TOMLDocument], None]:
    """The default policy's stages, written out in full in [policy] stages: each keeps
    what the page does not show (its anchor, business days, charges, template)."""
    current = settings.policies["default"].stages

    def change(document: TOMLDocument) -> None:
        policy = _section(document, "policy")
        for shorthand in ("first_reminder_after_days", "courtesy"):
            if shorthand in policy:
                del policy[shorthand]
        stages = tomlkit.aot()
        for index, stage in enumerate(current):
            item = tomlkit.table()
            item["name"] = stage.name
            item["after"] = stage.anchor.value
            item["days"] = _whole_number(form.get(f"stage-{index}-days", str(stage.days)))
            if stage.business_days:
                item["business_days"] = True
            channels = [c for c in form.getlist(f"stage-{index}-channels") if c]
            if channels:
                item["channels"] = channels
            tone = form.get(f"stage-{index}-tone", "")
            if tone:
                item["tone"] = tone
            if stage.template:
                item["template"] = stage.template
            if stage.charges:
                item["charges"] = True
            if not form.get(f"stage-{index}-enabled"):
                item["enabled"] = False
            if stage.on_broken_promise:
                item["on_broken_promise"] = True
            stages.append(item)
        policy["stages"] = stages
        _put(policy, "send_window", form.get("send_window", "").strip())
        for key in ("gap_days", "promise_grace_days"):
            typed = form.get(key, "").strip()
            _put(policy, key, _whole_number(typed) if typed else None)

    return change


def _charges(form: Mapping[str, str]) -> Callable[[TOMLDocument], None]:
    def change(document: TOMLDocument) -> None:
        charges = _section(document, "charges")
        _put(charges, "enabled", bool(form.get("enabled")))
        _put(charges, "jurisdiction", form.get("jurisdiction", ""))
        # An amount is a string in kindly.toml: a float cannot say 8.15 exactly.
        _put(charges, "contract_rate", form.get("contract_rate", "").strip().replace(",", "."))

    return change


def _holidays(settings: Settings, countries: Sequence[str]) -> list[dict[str, Any]]:
    """The public holidays ahead in each country in play: no reminder is sent on them."""
    from plugin.core.businessdays import business_calendar

    today = _now().date()
    found = []
    for country in countries:
        calendar = business_calendar(country)
        days = [
            (today + timedelta(days=n), calendar.holiday_name(today + timedelta(days=n)))
            for n in range(HOLIDAYS_AHEAD.days)
        ]
        found.append(
            {
                "country": country,
                "known": calendar.knows_holidays,
                "days": [(day, name) for day, name in days if name],
            }
        )
    return found


def _countries(settings: Settings) -> list[str]:
    """The company's country and its clients', as the last syncs read them."""
    from plugin.app.web.views import _workspaces

    countries = {settings.company.country}
    try:
        with _workspaces() as opened:
            for kindly in opened:
                if kindly.store.load_snapshot(kindly.source_id) is None:
                    continue
                countries |= {c.country for c in kindly.snapshot().customers if c.country}
    except (ConfigError, OSError):
        pass
    return sorted(countries)


@pages.route("/settings", methods=["GET", "POST"])
@signed_in
def settings_page() -> Any:
    from plugin.app.settings_file import change_settings, settings_label, shown_settings

    _manager()
    settings, store = opened_store()
    error: str | None = None
    failed: str | None = None
    if request.method == "POST":
        form = request.form
        section = form.get("section", "")
        changes = {
            "company": lambda: _company(form),
            "bank": lambda: _bank(form),
            "reminders": lambda: _reminders(form, settings),
            "charges": lambda: _charges(form),
        }
        if section not in changes:
            error, failed = _("There is no such part of the settings."), section
        else:
            try:
                change_settings(
                    _config(),
                    changes[section](),
                    seen=form.get("version") or None,
                    store=store,
                    at=_now(),
                )
            except ConfigError as exc:
                error, failed = str(exc), section
            else:
                flash(_("Saved in %(file)s.", file=settings_label(_config())), "done")
                return redirect(url_for("pages.settings_page") + f"#{section}")
    settings, version = shown_settings(_config(), store)
    policy = settings.policies["default"]
    return render_template(
        "settings.html.j2",
        settings=settings,
        policy=policy,
        send_window=f"{policy.send_window.start:%H:%M}-{policy.send_window.end:%H:%M}",
        version=version,
        file=settings_label(_config()),
        holidays=_holidays(settings, _countries(settings)),
        jurisdictions=JURISDICTIONS,
        stage_channels=STAGE_CHANNELS,
        form=request.form if error else None,
        error=error,
        failed=failed,
    ), (400 if error else 200)


# -- the user's own templates, previewed on a real reminder before they are kept ------------


def _sample_reminders() -> list[tuple[str, Any]]:
    """The reminders due now in the organisations of the workspace, to preview a draft on:
    (organisation id/key, reminder)."""
    from plugin.app.web.guard import organisation_id
    from plugin.app.web.views import _synced, _workspaces

    found = []
    with _workspaces() as opened:
        for kindly in opened:
            if _synced(kindly):
                for reminder in kindly.plan(_now()).reminders:
                    found.append((f"{organisation_id(kindly.source_id)}/{reminder.key}", reminder))
    return found


def _preview_on(settings: Settings, name: str, reminder: Any) -> str:
    """The draft at work: the message its template is part of, as HTML for the frame."""
    from dataclasses import replace

    from markupsafe import escape

    from plugin.compose.render import (
        QR_CID,
        render_letter,
        render_note,
        render_reminder,
        render_sms,
    )

    on = _now().date()
    folder = name.split("/", 1)[0]
    if folder == "lang":
        # The words of one language: shown in an e-mail written in it.
        reminder = replace(reminder, language=name.split("/")[1].removesuffix(".j2"))
    if folder in ("email", "lang"):
        email = render_reminder(replace(reminder, channel="email"), settings, (), on=on)
        if name.endswith("body.html.j2") or folder == "lang":
            html = email.html or ""
            if email.qr_png:
                import base64

                inline = "data:image/png;base64," + base64.b64encode(email.qr_png).decode()
                html = html.replace(f"cid:{QR_CID}", inline)
            return html
        text = email.subject if name.endswith("subject.txt.j2") else email.text
        return f"<pre>{escape(text)}</pre>"
    if folder == "sms":
        sms = render_sms(
            replace(reminder, channel="sms"),
            settings,
            limit=settings.sms_limit,
            transliterate=settings.sms_transliterate,
            on=on,
        )
        return f"<pre>{escape(sms.text)}</pre>"
    if folder == "letter":
        return render_letter(replace(reminder, channel="letter"), settings, on)
    note = render_note(
        stage=reminder.stage,
        channel=reminder.channel,
        recipient=", ".join(reminder.recipients) or reminder.customer.name,
        sent_at=_now(),
        invoice_numbers=tuple(i.number for i in reminder.invoices),
        amount=", ".join(str(i.amount_due) for i in reminder.invoices),
        settings=settings,
    )
    return f"<pre>{escape(note)}</pre>"


def _refuse_for_held_settings(settings: Settings) -> None:
    """Own templates are files: for settings the database holds, a file saved here would be
    on this machine only, and every other that sends would refuse the settings."""
    from plugin.app.stored_settings import is_stored

    if is_stored(_config()):
        raise ConfigError(
            f"{settings.where}: own templates are files in the workspace's data folder on "
            "every machine that sends; they are not saved from here",
            hint="Put them in KINDLY_DATA_DIR/NAME/templates on each machine, and name that "
            "folder in [templates] (kindly settings export, then import --replace).",
        )


@pages.route("/settings/templates", methods=["GET", "POST"])
@signed_in
def templates_page() -> Any:
    from plugin.app import template_drafts
    from plugin.app.settings_file import change_settings

    _manager()
    settings, store = opened_store()
    names = template_drafts.known()
    name = request.values.get("name") or names[0]
    if name not in names:
        abort(404)
    error = None
    if request.method == "POST":
        text = request.form.get("text", "")
        action = request.form.get("action")
        try:
            if action == "save":
                _refuse_for_held_settings(settings)
                template_drafts.keep(settings, name, text)
                if settings.templates is None:
                    # The folder is new: kindly.toml names it, or it would not be read.
                    def name_folder(document: Any) -> None:
                        _section(document, "templates")["folder"] = template_drafts.DEFAULT_FOLDER

                    change_settings(_config(), name_folder, seen=None, store=store, at=_now())
                flash(_("Saved your version of %(template)s.", template=name), "done")
            elif action == "remove":
                template_drafts.remove(settings, name)
                flash(_("Kindly's own %(template)s applies again.", template=name), "done")
            else:
                abort(400)
        except ConfigError as exc:
            error = str(exc)
        else:
            return redirect(url_for("pages.templates_page", name=name))
    current, own = template_drafts.text_of(settings, name)
    own_names = [n for n in names if template_drafts.text_of(settings, n)[1]]
    return render_template(
        "templates.html.j2",
        names=names,
        name=name,
        own=own,
        own_names=own_names,
        text=request.form.get("text", current) if error else current,
        samples=[(key, r) for key, r in _sample_reminders()],
        error=error,
    ), (400 if error else 200)


@pages.route("/settings/templates/preview", methods=["POST"])
@signed_in
def template_preview() -> Any:
    """The draft rendered on a reminder due now, for the page's frame; a mistake in the
    draft is shown there, naming its line, and nothing is kept."""
    from markupsafe import escape

    from plugin.app import template_drafts
    from plugin.errors import TemplateProblem

    _manager()
    settings, _store = opened_store()
    name = request.form.get("name", "")
    if name not in template_drafts.known():
        abort(404)
    samples = dict(_sample_reminders())
    chosen = samples.get(request.form.get("reminder", "")) or next(iter(samples.values()), None)
    if chosen is None:
        nothing = _("No reminder is due now to show the draft on: sync first.")
        body = f"<p>{escape(nothing)}</p>"
    else:
        try:
            draft = request.form.get("text", "")
            with template_drafts.with_draft(settings, name, draft) as drafted:
                body = _preview_on(drafted, name, chosen)
        except (ConfigError, TemplateProblem) as exc:
            body = f'<p style="color:#a00"><strong>{escape(str(exc))}</strong></p>'
    return Response(body, mimetype="text/html")
