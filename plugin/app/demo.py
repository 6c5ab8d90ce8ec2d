"""The demo workspace: a copy of the bundled demo ledger, its own settings and store.

The bundled ledger (``plugin/app/demo_ledger``) is a small Amsterdam design studio with
clients in six languages. Its dates are written relative to the day the demo is set up
(``"today-45"``, ``"today+1T10:00@Europe/Amsterdam"``), or to the moment it is set up
(``"now~office@Europe/Amsterdam"``: the first whole hour in office hours at least three
hours on, ``"now~office+1h30m@…"`` an hour and a half later), so whenever it is created
there is something overdue, something not yet due and two appointments whose reminders
are due, at a civil hour, whatever the time of day. The copy in the
workspace holds real dates, in the documented ledger format, and is what later runs read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["BUNDLED_LEDGER", "create_demo_workspace", "materialise", "reset_demo"]

BUNDLED_LEDGER = Path(__file__).parent / "demo_ledger"

_RELATIVE = re.compile(
    r"^today(?P<days>[+-]\d+)?(?:T(?P<time>\d{2}:\d{2}))?(?:@(?P<zone>[A-Za-z_/+-]+))?$"
)
_FROM_NOW = re.compile(r"^now\+(?P<hours>\d+)h(?:(?P<minutes>\d+)m)?(?:@(?P<zone>[A-Za-z_/+-]+))?$")
_OFFICE = re.compile(
    r"^now~office(?:\+(?:(?P<hours>\d+)h)?(?:(?P<minutes>\d+)m)?)?@(?P<zone>[A-Za-z_/+-]+)$"
)
#: A demo meeting starts at a whole hour in office hours, at least three hours on: soon
#: enough that its e-mail reminder (a day before) is due, never at 23:00 (the review).
OFFICE_HOURS = range(9, 17)


def materialise(value: Any, now: datetime) -> Any:
    """Replace every relative date in a JSON value by a real one; "today" is ``now``'s day."""
    if isinstance(value, dict):
        return {key: materialise(item, now) for key, item in value.items()}
    if isinstance(value, list):
        return [materialise(item, now) for item in value]
    if isinstance(value, str) and (match := _OFFICE.match(value)):
        zone = ZoneInfo(match["zone"])
        start = _office_hour(now.astimezone(zone) + timedelta(hours=3))
        length = timedelta(hours=int(match["hours"] or 0), minutes=int(match["minutes"] or 0))
        return (start + length).isoformat()
    if isinstance(value, str) and (match := _FROM_NOW.match(value)):
        zone = ZoneInfo(match["zone"] or "UTC")
        later = (now + timedelta(hours=int(match["hours"]))).astimezone(zone)
        later = later.replace(minute=0, second=0, microsecond=0)
        return (later + timedelta(minutes=int(match["minutes"] or 0))).isoformat()
    if isinstance(value, str) and (match := _RELATIVE.match(value)):
        day = now.date() + timedelta(days=int(match["days"] or 0))
        if match["time"] is None:
            return day.isoformat()
        hour, minute = (int(part) for part in match["time"].split(":"))
        zone = ZoneInfo(match["zone"] or "UTC")
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).isoformat()
    return value


def _office_hour(earliest: datetime) -> datetime:
    """The first whole hour from ``earliest`` on that is in office hours, on its clock."""
    moment = earliest.replace(minute=0, second=0, microsecond=0)
    if moment < earliest:
        moment += timedelta(hours=1)
    while moment.hour not in OFFICE_HOURS:
        moment += timedelta(hours=1)
    return moment


_SETTINGS = """\
# Kindly settings for the demo workspace, written by `kindly demo`.
# Every setting is explained in docs/configuration.md; `kindly init` writes one for your company.

connector = "ledger"

[ledger]
path = "ledger"                 # the demo's copy of the bundled ledger

[store]
url = "sqlite:///kindly.sqlite3"  # this workspace's own state, beside this file

[delivery]
outbox = {outbox}               # one .eml file per reminder

[company]
name = "Noordlicht Studio B.V."
email = "debiteuren@noordlicht.example"
reply_to = "anouk@noordlicht.example"
website = "https://noordlicht.example"
phone = "+31 20 555 0100"
fax = "+31 20 555 0199"
address = ["Prinsengracht 263", "1016 GV Amsterdam", "Nederland"]
country = "NL"
city = "Amsterdam"

[company.signature]             # who signs, in each client's language
nl = "Anouk Visser, debiteurenbeheer"
en = "Anouk Visser, accounts receivable"
fr = "Anouk Visser, service comptabilité"
de = "Anouk Visser, Buchhaltung"
nb = "Anouk Visser, regnskap"
vi = "Anouk Visser, phòng kế toán"

[bank]
account_holder = "Noordlicht Studio B.V."
iban = "NL91 ABNA 0417 1643 00"
bic = "ABNANL2A"

[policy]
first_reminder_after_days = 3   # the first reminder: 3 business days after the due date
send_window = "always"          # the demo sends at any hour; the default is 09:00-17:00
                                # on business days, on each client's own clock
tone = "friendly"
channels = ["email"]
minimum = {{ EUR = "5.00", GBP = "5.00", NOK = "50", VND = "100000" }}

[appointments]                  # appointment reminders at any hour too; the default
quiet_hours = "none"            # "21:00-08:00" holds them back at night on the attendee's clock

[clients.C03]                   # Tulpenhof Hoveniers: a payment plan was agreed
pause_until = {pause_until}
pause_reason = "betalingsregeling afgesproken met Joost Bakker"

[clients.C02]                   # a consumer the studio knows well
formality = "informal"          # "je" instead of "u"

[clients.C09]
tone = "firm"

[clients.C14]                   # Harbour Lane Bakery pays by direct debit
excluded = true
"""


def create_demo_workspace(workspace: Path, outbox: Path, now: datetime) -> Path:
    """Set up the workspace and return its kindly.toml. The folder must not exist yet."""
    ledger = workspace / "ledger"
    staging = workspace.with_name(workspace.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "ledger").mkdir(parents=True)
    for source in sorted(BUNDLED_LEDGER.glob("*.json")):
        data = json.loads(source.read_text(encoding="utf-8"))
        target = staging / "ledger" / source.name
        target.write_text(
            json.dumps(materialise(data, now), ensure_ascii=False, indent=2) + "\n",
            encoding="utf-8",
        )
    settings = _SETTINGS.format(
        # Relative when it can be, so the workspace and its outbox can move together.
        outbox=json.dumps(os.path.relpath(outbox.resolve(), workspace.resolve())),
        pause_until=(now.date() + timedelta(days=21)).isoformat(),
    )
    (staging / "kindly.toml").write_text(settings, encoding="utf-8")
    # Rename last, so a crash halfway leaves no workspace that looks complete.
    staging.rename(workspace)
    assert (ledger / "invoices.json").exists()
    return workspace / "kindly.toml"


_MARKER = "written by `kindly demo`"


def reset_demo(workspace: Path) -> None:
    """Remove a demo workspace and the reminders it wrote; refuse anything else."""
    from plugin.errors import KindlyError

    config = workspace / "kindly.toml"
    if not workspace.exists():
        return
    if not config.exists() or _MARKER not in config.read_text(encoding="utf-8"):
        raise KindlyError(
            f"{workspace} is not a Kindly demo workspace; not removing it",
            hint="Point --workspace at the demo folder, or remove the folder yourself.",
        )
    import tomllib

    outbox = tomllib.loads(config.read_text(encoding="utf-8")).get("delivery", {}).get("outbox")
    if outbox:
        for message in (workspace / outbox).glob("*.eml"):
            message.unlink()
    shutil.rmtree(workspace)
