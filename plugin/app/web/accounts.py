"""Who may sign in to the web app: local accounts in the store, passwords hashed with
argon2 (argon2-cffi), and sign-in attempts counted per account so that guessing stops.

An account is a setting in the scope ``web.account``: its password hash and the
organisations it may see (``*`` for all). Failed attempts are kept in ``web.attempts`` and
counted under the store's lock, so that several app processes count them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from plugin.state.store import Store

__all__ = ["ATTEMPTS", "WINDOW", "Account", "Accounts", "RateLimited"]

ACCOUNT_SCOPE = "web.account"
ATTEMPT_SCOPE = "web.attempts"
#: Failed sign-ins allowed in WINDOW before an account is refused until the window passes.
ATTEMPTS = 5
WINDOW = timedelta(minutes=15)
#: Passwords shorter than this are refused when an account is made.
SHORTEST_PASSWORD = 10

_hasher = PasswordHasher()
# Checked against when the account does not exist, so that the answer takes as long.
_NOBODY = _hasher.hash("no account has this password")


class RateLimited(Exception):
    """Too many failed sign-ins for this account: try again after ``until``."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"too many failed sign-ins; try again after {until:%H:%M} UTC")
        self.until = until


@dataclass(frozen=True)
class Account:
    name: str
    #: The organisations (source ids) the account may see; "*" for every one.
    organisations: tuple[str, ...]

    def may_see(self, organisation: str) -> bool:
        return "*" in self.organisations or organisation in self.organisations

    @property
    def may_manage(self) -> bool:
        """May connect and disconnect platforms: what every organisation reads from. Only
        an account that may see them all ("*")."""
        return "*" in self.organisations

    def __repr__(self) -> str:
        return f"Account({self.name!r})"


class Accounts:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, name: str, password: str, organisations: Sequence[str], now: datetime) -> Account:
        """Make an account, or give an existing one a new password and organisations."""
        name = name.strip()
        if not name or any(c.isspace() for c in name):
            raise ValueError("an account name is one word, e.g. anouk")
        if len(password) < SHORTEST_PASSWORD:
            raise ValueError(f"a password has at least {SHORTEST_PASSWORD} characters")
        value = {"password": _hasher.hash(password), "organisations": list(organisations)}
        self.store.set_setting(ACCOUNT_SCOPE, name, value, now)
        return Account(name, tuple(organisations))

    def names(self) -> list[str]:
        return sorted(self.store.settings_in(ACCOUNT_SCOPE).get(ACCOUNT_SCOPE, {}))

    def get(self, name: str) -> Account | None:
        value = self.store.get_setting(ACCOUNT_SCOPE, name)
        if not isinstance(value, dict):
            return None
        return Account(name, tuple(value.get("organisations", ())))

    def sign_in(self, name: str, password: str, now: datetime) -> Account | None:
        """The account if the password is right; None if not. Raises RateLimited after
        ATTEMPTS failures within WINDOW, before looking at the password."""
        key = name.strip().lower()[:200]
        with self.store.exclusive(f"{ATTEMPT_SCOPE}:{key}") as transaction:
            failures = [
                stamp
                for stamp in transaction.get_setting(ATTEMPT_SCOPE, key) or []
                if datetime.fromisoformat(stamp) > now - WINDOW
            ]
            if len(failures) >= ATTEMPTS:
                raise RateLimited(datetime.fromisoformat(min(failures)) + WINDOW)
            account = self._check(name.strip(), password)
            if account is None:
                failures.append(now.isoformat())
            else:
                failures = []
            transaction.set_setting(ATTEMPT_SCOPE, key, failures, now)
        return account

    def _check(self, name: str, password: str) -> Account | None:
        value: Any = self.store.get_setting(ACCOUNT_SCOPE, name) if name else None
        stored = value.get("password") if isinstance(value, dict) else None
        try:
            _hasher.verify(stored or _NOBODY, password)
        except (VerificationError, InvalidHashError):
            return None
        if stored is None:
            return None
        return Account(name, tuple(value.get("organisations", ())))
