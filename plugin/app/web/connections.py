"""The connections page: connect each bookkeeping platform and calendar by its OAuth round
trip in the browser, see what is connected and when it last synced, and disconnect.

The round trip: the connect button makes a fresh ``state`` and PKCE verifier, kept in the
store under the state (never in the cookie, which the browser can read), and sends the
browser to the platform's sign-in. The platform sends it back to ``/connections/callback``
with a code; the state is looked up and used up at once, so an answer is taken once and
only from the account that asked. With several organisations allowed, the user picks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound

from plugin.app.web.i18n import gettext as _
from plugin.app.web.views import _account, _now, opened_store, pages, signed_in
from plugin.errors import KindlyError

if TYPE_CHECKING:
    from integrations.base import Connector, Workspace

#: Where the pending sign-ins wait, by state, and how long one may take.
PENDING = "web.oauth"
SIGN_IN_TIME = timedelta(minutes=15)


def _manager() -> None:
    """Connections change what every organisation reads: only an account that may see
    them all manages them; for the others the page is not there."""
    account = _account()
    if account is None or not account.may_manage:
        abort(404)


def _workspace() -> Workspace:
    from plugin.app.wiring import workspace_for

    settings, store = opened_store()
    return workspace_for(settings, store)


def _connector(name: str) -> type[Connector]:
    from integrations.base import ConnectorKind
    from integrations.registry import connector_classes

    for cls in connector_classes():
        if cls.name == name and cls.kind in (ConnectorKind.BOOKKEEPING, ConnectorKind.CALENDAR):
            return cls
    raise NotFound()


def _redirect_uri() -> str:
    """Where the platform sends the browser back: under the public address when one is
    set (what the platform's app registers), else this server's own."""
    public = current_app.config.get("KINDLY_PUBLIC_URL")
    shared = current_app.config.get("KINDLY_SHARED_CALLBACK")
    if shared:
        # One address serving many workspaces has one callback for all of them (the
        # platform's app registers one); the state names the workspace (web/many.py).
        root = request.script_root.removesuffix(current_app.config["KINDLY_WORKSPACE_ROOT"])
        base = str(public).rstrip("/") if public else request.host_url.rstrip("/")
        return base + root + str(shared)
    if public:
        return str(public).rstrip("/") + url_for("pages.connection_callback")
    return url_for("pages.connection_callback", _external=True)


def _rows(workspace: Workspace) -> list[dict[str, Any]]:
    """One row per bookkeeping platform and calendar: what kindly.toml uses, what is
    connected, whether the connect button can work and, if not, why not."""
    from integrations.base import ConnectorKind
    from integrations.registry import connector_classes
    from plugin.app.wiring import calendar_name

    settings = workspace.settings
    rows = []
    for cls in connector_classes():
        if cls.kind is ConnectorKind.BOOKKEEPING:
            in_use = settings.connector == cls.name
        elif cls.kind is ConnectorKind.CALENDAR:
            in_use = calendar_name(settings) == cls.name
            if not in_use and cls.auth == "oauth2":
                # A calendar's app settings live in [calendar], which names one calendar.
                rows.append(_row(cls, in_use, None, "Name it in [calendar] in kindly.toml first."))
                continue
        else:
            continue
        problem: str | None = None
        try:
            connected = cls.connected(workspace)
        except KindlyError as exc:
            connected, problem = None, str(exc)
        can_sign_in = None
        if cls.auth == "oauth2":
            try:
                app = cls.web_sign_in(workspace)
                can_sign_in = True
                if app is not None:
                    g.setdefault("sign_in_sites", set()).add(_origin(app.authorize_url))
            except KindlyError as exc:
                problem = problem or str(exc)
                can_sign_in = False
        rows.append(_row(cls, in_use, connected, problem, can_sign_in))
    rows.sort(key=lambda row: (not row["in_use"], row["kind"], row["title"]))
    return rows


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _row(
    cls: type[Connector],
    in_use: bool,
    connected: list[str] | None,
    problem: str | None,
    can_sign_in: bool | None = None,
) -> dict[str, Any]:
    return {
        "name": cls.name,
        "title": cls.title,
        "kind": cls.kind.value,
        "in_use": in_use,
        "connected": connected,
        "problem": problem,
        "can_sign_in": can_sign_in,
        "calls_per_minute": getattr(cls, "calls_per_minute", None),
    }


def _syncs() -> list[dict[str, Any]]:
    """Each source's last sync and what it left out, where the sources open."""
    from plugin.app.web.guard import organisation_id
    from plugin.app.web.views import _synced, _workspaces

    try:
        with _workspaces() as opened:
            return [
                {
                    "id": organisation_id(k.source_id),
                    "name": k.source.location,
                    "synced": _synced(k),
                    "left_out": len(k.left_out()) if _synced(k) else 0,
                    "allowance": k.allowance(),
                }
                for k in opened
            ]
    except KindlyError:
        return []


@pages.route("/connections")
@signed_in
def connections() -> Any:
    _manager()
    return render_template(
        "connections.html.j2", rows=_rows(_workspace()), syncs=_syncs(), manage=True
    )


@pages.route("/connections/<name>/connect", methods=["POST"])
@signed_in
def connect(name: str) -> Any:
    from integrations.oauth import OAuthApp

    _manager()
    cls = _connector(name)
    workspace = _workspace()
    app = cls.web_sign_in(workspace)
    if app is None:
        flash(
            _("%(platform)s is connected in kindly.toml, not by signing in.", platform=cls.title),
            "warning",
        )
        return redirect(url_for("pages.connections"))
    state, verifier = OAuthApp.new_state_and_verifier()
    state = current_app.config.get("KINDLY_STATE_PREFIX", "") + state
    now = _now()
    _forget_abandoned(now)
    account = _account()
    assert account is not None
    redirect_uri = _redirect_uri()
    workspace.store.set_setting(
        PENDING,
        state,
        {
            "connector": cls.name,
            "verifier": verifier,
            "account": account.name,
            "redirect_uri": redirect_uri,
            "until": (now + SIGN_IN_TIME).isoformat(),
        },
        now,
    )
    return redirect(app.authorization_url(redirect_uri, state, verifier))


def _forget_abandoned(now: datetime) -> None:
    """Sign-ins never finished (the user closed the tab) are forgotten once over time."""
    store = opened_store()[1]
    for state, pending in store.settings_in(PENDING).get(PENDING, {}).items():
        if not isinstance(pending, dict) or datetime.fromisoformat(pending["until"]) < now:
            store.delete_setting(PENDING, state)


def _take_pending(state: str) -> dict[str, Any]:
    """The sign-in ``state`` names, used up: a second answer with it finds nothing. Only
    the account that started it, and only within its time."""
    pending = opened_store()[1].take_setting(PENDING, state) if state else None
    account = _account()
    if (
        not isinstance(pending, dict)
        or account is None
        or pending.get("account") != account.name
        or datetime.fromisoformat(pending["until"]) < _now()
    ):
        abort(400, _("This sign-in answer is unknown, used or too old: connect again."))
    return pending


@pages.route("/connections/callback")
@signed_in
def connection_callback() -> Any:
    from integrations.http import HttpClient

    _manager()
    pending = _take_pending(request.args.get("state", ""))
    cls = _connector(pending["connector"])
    if "error" in request.args or "code" not in request.args:
        reason = request.args.get("error_description") or request.args.get("error") or "no code"
        flash(
            _("%(platform)s did not connect: %(reason)s.", platform=cls.title, reason=reason),
            "warning",
        )
        return redirect(url_for("pages.connections"))
    workspace = _workspace()
    app = cls.web_sign_in(workspace)
    assert app is not None
    http = HttpClient(app.platform, secrets=lambda: [request.args["code"], pending["verifier"]])
    from integrations.oauth import with_granted

    token = app.exchange(
        http, request.args["code"], pending["redirect_uri"], pending["verifier"], _now()
    )
    token = with_granted(token, request.args.to_dict())
    organisations = cls.signed_in(workspace, token, http)
    if len(organisations) <= 1:
        flash(cls.keep_organisations(workspace, organisations), "done")
        return redirect(url_for("pages.connections"))
    # Several organisations allowed: the user picks; the list waits under a new state.
    from integrations.oauth import OAuthApp

    choice, _verifier = OAuthApp.new_state_and_verifier()
    now = _now()
    workspace.store.set_setting(
        PENDING,
        choice,
        {
            "connector": cls.name,
            "account": pending["account"],
            "organisations": organisations,
            "until": (now + SIGN_IN_TIME).isoformat(),
        },
        now,
    )
    return render_template(
        "choose_organisations.html.j2", title=cls.title, state=choice, organisations=organisations
    )


@pages.route("/connections/choose", methods=["POST"])
@signed_in
def choose_organisations() -> Any:
    _manager()
    pending = _take_pending(request.form.get("state", ""))
    cls = _connector(pending["connector"])
    offered = {item[0]: item[1] for item in pending.get("organisations", [])}
    chosen = [(i, offered[i]) for i in request.form.getlist("organisation") if i in offered]
    flash(cls.keep_organisations(_workspace(), chosen), "done")
    return redirect(url_for("pages.connections"))


@pages.route("/connections/<name>/disconnect", methods=["POST"])
@signed_in
def disconnect(name: str) -> Any:
    _manager()
    cls = _connector(name)
    flash(cls.disconnect(_workspace()), "done")
    return redirect(url_for("pages.connections"))
