"""The web app's own words in six languages: gettext catalogs (babel), one per language
in ``translations/<lang>/LC_MESSAGES/messages.po``, read as they are (no compile step).

The language is the one the user switched to (kept in the session), else the best match
of the browser's Accept-Language, else English. What Kindly writes to clients is not
here: its wording lives in the templates/lang files, per client.

``make messages`` extracts the words from the pages and the views into messages.pot and
updates the catalogs; tests/test_web_i18n.py checks that every catalog translates every
word, with the same placeholders.
"""

from __future__ import annotations

import io
from functools import lru_cache
from importlib import resources
from typing import Any

from babel.support import NullTranslations, Translations
from flask import Flask, g, request, session

__all__ = ["LANGUAGES", "N_", "gettext", "install_i18n", "ngettext", "ui_language"]

#: The interface's languages, each named in itself for the switch.
LANGUAGES = {
    "en": "English",
    "nl": "Nederlands",
    "de": "Deutsch",
    "fr": "Français",
    "nb": "Norsk bokmål",
    "vi": "Tiếng Việt",
}
DEFAULT = "en"


def N_(message: str) -> str:
    """Marks a word for the catalogs that is translated later, from a variable."""
    return message


#: Words Kindly's data holds (tones, stages, channels, states), shown translated: marked
#: here for the catalogs, translated where a page shows them (``_(reminder.tone)``).
VOCABULARY = (
    N_("friendly"), N_("neutral"), N_("firm"),
    N_("courtesy"), N_("first"), N_("second"), N_("final"), N_("handoff"), N_("appointment"),
    N_("email"), N_("sms"), N_("letter"), N_("phone"), N_("task"),
    N_("formal"), N_("informal"),
    N_("sending"), N_("handing_over"), N_("sent"), N_("unconfirmed"), N_("deferred"),
    N_("failed"),
    N_("unknown"), N_("reliable"), N_("usual"), N_("chronic"),
    N_("bookkeeping"), N_("calendar"),
    N_("invoice"), N_("until"), N_("amount"), N_("client"), N_("change"),
    N_("none"), N_("paused"), N_("excluded"), N_("on"), N_("tone"), N_("language"),
    N_("pause until"), N_("pause reason"), N_("formality"), N_("channels"),
    N_("reminders"), N_("kind"), N_("off"), N_("business"), N_("consumer"), N_("setting"),
)  # fmt: skip


#: The age buckets of the receivables (plugin.core.reports.AGE_BUCKETS), as shown.
AGE_LABELS = {
    "not_due": N_("not yet due"),
    "1_30": N_("1-30 days overdue"),
    "31_60": N_("31-60 days overdue"),
    "61_90": N_("61-90 days overdue"),
    "over_90": N_("over 90 days overdue"),
}


@lru_cache(maxsize=len(LANGUAGES))
def _catalog(language: str) -> NullTranslations:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    if language == DEFAULT:
        return NullTranslations()
    source = resources.files("plugin.app.web").joinpath(
        f"translations/{language}/LC_MESSAGES/messages.po"
    )
    with source.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    # Fuzzy entries are guesses: shown in English until a translator confirms them.
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled)


def ui_language() -> str:
    """The language of this request's pages."""
    if "ui_language" not in g:
        chosen = session.get("language")
        if chosen not in LANGUAGES:
            chosen = request.accept_languages.best_match(LANGUAGES) or DEFAULT
        g.ui_language = chosen
    language: str = g.ui_language
    return language


def gettext(message: str, **values: Any) -> str:
    text: str = _catalog(ui_language()).gettext(message)
    return text % values if values else text


def ngettext(singular: str, plural: str, count: int, **values: Any) -> str:
    text: str = _catalog(ui_language()).ngettext(singular, plural, count)
    return text % {"num": count, **values}


def install_i18n(app: Flask) -> None:
    """``_()`` and ``ngettext()`` in every page, in the request's language; ``?lang=xx``
    on any page switches and keeps the choice in the session."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    # Jinja's newstyle calls fill in the placeholders themselves: these only translate.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: _catalog(ui_language()).gettext(message),
        lambda singular, plural, count: _catalog(ui_language()).ngettext(singular, plural, count),
        newstyle=True,
    )
    app.jinja_env.globals["ui_languages"] = LANGUAGES
    app.jinja_env.globals["ui_language"] = ui_language

    @app.before_request
    def switch_language() -> None:
        wanted = request.args.get("lang")
        if wanted in LANGUAGES:
            session["language"] = wanted
