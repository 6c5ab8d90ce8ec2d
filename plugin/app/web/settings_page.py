"""The settings page: the company and bank details, the default policy's stages, the send
window, the public holidays reminders wait for, and the charges opt-in.

Each form changes kindly.toml itself (:mod:`plugin.app.settings_file`): the file stays the
one place settings live, the user's comments stay, and a change is checked with the same
rules and messages as the file. kindly.toml is shared by every organisation of the
workspace, so only an account that may see them all changes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import tomlkit
from flask import current_app, flash, redirect, render_template, request, url_for
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


def _config() -> Path:
    return Path(current_app.config["KINDLY_CONFIG"])


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
    from plugin.app.settings_file import change_settings_file, version_of

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
                change_settings_file(
                    _config(),
                    changes[section](),
                    seen=form.get("version") or None,
                    lock=store.exclusive("kindly.toml"),
                )
            except ConfigError as exc:
                error, failed = str(exc), section
            else:
                flash(_("Saved in %(file)s.", file=_config().name), "done")
                return redirect(url_for("pages.settings_page") + f"#{section}")
    policy = settings.policies["default"]
    return render_template(
        "settings.html.j2",
        settings=settings,
        policy=policy,
        send_window=f"{policy.send_window.start:%H:%M}-{policy.send_window.end:%H:%M}",
        version=version_of(_config()),
        file=_config().name,
        holidays=_holidays(settings, _countries(settings)),
        jurisdictions=JURISDICTIONS,
        stage_channels=STAGE_CHANNELS,
        form=request.form if error else None,
        error=error,
        failed=failed,
    ), (400 if error else 200)
