"""The web app's page of `kindly status`: each organisation's scheduled runs on the workers
(the last and what came of it, the next, the failures of the week), the shared call limits
and how much of each the workers use now, and the queue's depth."""

from __future__ import annotations

import os
from typing import Any

from flask import current_app, render_template

from plugin.app.web.views import _account, _now, pages, signed_in

__all__ = ["runs"]


@pages.route("/runs")
@signed_in
def runs() -> Any:
    """The organisations the account may see, as the workers run them."""
    try:
        from plugin.app import workers
    except ImportError:
        # Celery is not installed: runs happen when someone runs `kindly run`.
        return render_template("runs.html.j2", installed=False, found=None)
    broker = os.environ.get(workers.BROKER_VARIABLE, workers.DEFAULT_BROKER)
    from plugin.app.stored_settings import place_key

    found = workers.status([place_key(current_app.config["KINDLY_CONFIG"])], _now(), broker)
    account = _account()
    found["organisations"] = [
        entry
        for entry in found["organisations"]
        if account is not None and account.may_see(entry["organisation"])
    ]
    return render_template("runs.html.j2", installed=True, found=found)
