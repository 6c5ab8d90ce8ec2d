"""One address for many workspaces: ``/w/NAME/…`` is workspace NAME's web app.

`kindly web --workspace db:` (every workspace whose settings the database holds) or
``--workspace FOLDER`` (every ``*/kindly.toml`` in it, named by its folder) serves them all
from one process. Each workspace keeps its own app, made when it is first asked for: its
own accounts, its own session cookie (scoped to its path) and its own settings; a session
signed in to one is refused by every other (:func:`plugin.app.web.views._account`). A name
the places do not hold is 404, as is the root: the address does not list its customers.
A workspace imported while this runs is served from its first request.

Signing in to a platform (OAuth) comes back to one address for all, ``/connections/callback``
(the one the platform's app registers): the state starts with the workspace's name, and the
answer is sent on to that workspace's own callback, where its session is.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plugin.app.stored_settings import is_stored, name_of
from plugin.state.tables import WORKSPACE_LENGTH

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["CALLBACK", "PREFIX", "ManyWorkspaces", "servable"]

log = logging.getLogger(__name__)

#: The path every workspace's pages are under.
PREFIX = "/w/"
#: Where a platform's sign-in sends the browser back, for every workspace: the platform's
#: app registers one address. The OAuth state starts with the workspace's name and this.
CALLBACK = "/connections/callback"
STATE_SEPARATOR = "~"

StartResponse = Callable[..., Any]


class ManyWorkspaces:
    """The WSGI app in front of the workspaces' apps."""

    def __init__(
        self,
        places: Sequence[str],
        *,
        public_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
        configure: Callable[[Flask], None] | None = None,
        max_apps: int = 500,
    ) -> None:
        from plugin.app.wiring import share_connections

        self._places = list(places)
        self._public_url = public_url
        self._clock = clock
        self._configure = configure
        # The workspaces served lately (about a third of a MiB each): one asked for again
        # after it left is made anew, its sessions still good (their key is in its store).
        self._apps: OrderedDict[str, Flask] = OrderedDict()
        self.max_apps = max_apps
        self._keeping = threading.Lock()
        self._creating = threading.Lock()
        # The workspaces of one database share its connections, not one pool each.
        share_connections()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path == CALLBACK:
            return self._to_workspace_callback(environ, start_response)
        if not path.startswith(PREFIX):
            return _not_found(start_response)
        name, slash, rest = path[len(PREFIX) :].partition("/")
        if not servable(name):
            return _not_found(start_response)
        if not slash:
            # /w/NAME: the app's pages are under /w/NAME/
            location = environ.get("SCRIPT_NAME", "") + f"{PREFIX}{name}/"
            start_response("308 Permanent Redirect", [("Location", location)])
            return [b""]
        app = self._app(name)
        if app is None:
            return _not_found(start_response)
        environ = {
            **environ,
            "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + f"{PREFIX}{name}",
            "PATH_INFO": "/" + rest,
        }
        return app(environ, start_response)

    def _to_workspace_callback(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """The platform's answer, sent on to the workspace its state names (where the
        browser's session for that workspace is)."""
        from urllib.parse import parse_qs

        query = environ.get("QUERY_STRING", "")
        state = parse_qs(query).get("state", [""])[0]
        name, separator, _rest = state.partition(STATE_SEPARATOR)
        if not separator or self._app(name) is None:
            return _not_found(start_response)
        location = f"{environ.get('SCRIPT_NAME', '')}{PREFIX}{name}{CALLBACK}?{query}"
        start_response("302 Found", [("Location", location)])
        return [b""]

    def _kept(self, name: str) -> Flask | None:
        with self._keeping:
            app = self._apps.get(name)
            if app is not None:
                self._apps.move_to_end(name)
            return app

    def _keep(self, name: str, app: Flask) -> None:
        with self._keeping:
            self._apps[name] = app
            while len(self._apps) > self.max_apps:
                self._apps.popitem(last=False)

    def _app(self, name: str) -> Flask | None:
        app = self._kept(name)
        if app is not None or not servable(name):
            return app
        # Only a name not served yet waits here; the others' requests go on meanwhile.
        with self._creating:
            app = self._kept(name)
            if app is not None:
                return app
            place = self._place_of(name)
            if place is None:
                return None
            from plugin.app.web import create_app

            app = create_app(place, public_url=self._public_url, clock=self._clock)
            app.config["KINDLY_WORKSPACE_ROOT"] = f"{PREFIX}{name}"
            app.config["KINDLY_SHARED_CALLBACK"] = CALLBACK
            app.config["KINDLY_STATE_PREFIX"] = name + STATE_SEPARATOR
            if self._configure is not None:
                self._configure(app)
            self._keep(name, app)
            return app

    def _place_of(self, name: str) -> str | None:
        """The first of the places that holds a workspace ``name``: asked of each place
        alone (one query, or one file looked for), so a workspace added meanwhile is
        found, and a place that cannot answer now does not hide the others."""
        from plugin.app.stored_settings import ALL_STORED, is_held, locator
        from plugin.errors import KindlyError

        for place in self._places:
            try:
                if place == ALL_STORED:
                    if is_held(name, shared=True):
                        return locator(name)
                elif is_stored(place):
                    if name_of(place) == name:
                        return place
                elif Path(place).is_dir():
                    config = Path(place) / name / "kindly.toml"
                    if config.is_file():
                        return str(config.resolve())
                elif Path(place).parent.name == name:
                    return place
            except (KindlyError, OSError):
                log.exception("%s could not be looked into for the workspace %r", place, name)
        return None


def servable(name: str) -> bool:
    """A name a workspace can have (and nothing a header or a path could be made of)."""
    return bool(_NAME.fullmatch(name)) and name not in (".", "..")


_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{WORKSPACE_LENGTH}}}")


def _not_found(start_response: StartResponse) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"Not found. Each workspace's pages are under /w/ and its name.\n"]
