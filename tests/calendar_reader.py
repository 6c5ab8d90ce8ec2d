"""A calendar read sync after sync, its bookmarks kept here as the store keeps them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from integrations.base import CALENDAR_STATE, CalendarConnector
from plugin.core.model import Appointment


class Bookmarked:
    def __init__(self, calendar: CalendarConnector) -> None:
        self.calendar = calendar
        self.marks: dict[str, str] = {}

    def appointments(self, now: datetime) -> tuple[Appointment, ...]:
        result = self.calendar.sync(now, self.marks)
        self.marks = dict(result.bookmarks)
        return result.appointments

    @property
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.marks[CALENDAR_STATE])
        return state

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        self.marks[CALENDAR_STATE] = json.dumps(value)
