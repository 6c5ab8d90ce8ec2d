"""The one module that talks HTTP: every connector and gateway goes through `HttpClient`.

It owns what each of them would otherwise get subtly wrong on its own:

- one `requests.Session` per client (connection reuse), a connect and a read timeout, and
  a User-Agent naming Kindly;
- retries with exponential backoff and full jitter, honouring ``Retry-After``;
- every failure sorted, here and nowhere else, into :class:`RetriableError` (429, 5xx, a
  dropped connection, a timeout: trying later may work), :class:`AuthError` (401/403: the
  user has to reconnect) and :class:`FatalError` (anything else: trying again will not help);
- a call budget: at most ``per_minute`` calls in any 60 seconds, and a stop before the
  platform's daily allowance runs out, read from its rate-limit headers;
- debug logging of each call with credentials, tokens and query secrets masked.

Sleeping and the clock are injected, so tests run every backoff without waiting.
"""

from __future__ import annotations

import collections
import datetime
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from plugin.core.vocabulary import DeliveryStatus
from plugin.errors import KindlyError

__all__ = [
    "AuthError",
    "CallBudget",
    "FatalError",
    "HttpClient",
    "HttpError",
    "Response",
    "RetriableError",
    "delivery_status",
]

log = logging.getLogger("kindly.http")

USER_AGENT = "Kindly/0.1 (+https://github.com/kindly-reminders; payment reminders)"
#: Query parameters and form fields whose values never reach a log line.
SECRET_NAMES = frozenset(
    {
        "access_token",
        "refresh_token",
        "client_secret",
        "code",
        "code_verifier",
        "token",
        "password",
        "api_key",
        "apikey",
        "key",
        "signature",
    }
)
RETRIABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Failures a server may answer after it did the work: a 500 raised on the way out, a
#: gateway (502, 504) that gave up waiting on a server that went on. The others (408,
#: 425, 429, 503) say the request was not taken up.
MAYBE_DONE_STATUS = frozenset({500, 502, 504})


class HttpError(KindlyError):
    """A call to a platform failed. ``status`` is the HTTP status, None without a response."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class RetriableError(HttpError):
    """Trying again later may work: rate limits, server errors, network trouble."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
        later: bool = False,
        maybe_received: bool = False,
    ) -> None:
        super().__init__(message, status=status, hint=hint)
        self.retry_after = retry_after
        #: Not worth retrying within this run (a daily limit, a long Retry-After): the
        #: next run tries again.
        self.later = later
        #: The request may have reached the platform before it failed (a read timeout,
        #: a dropped connection): a request that is not idempotent must not be repeated.
        self.maybe_received = maybe_received


class FatalError(HttpError):
    """The request itself is wrong, or the record is gone; retrying will not help."""


class AuthError(FatalError):
    """The platform refused our credentials; the user has to connect again."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str] = field(repr=False)
    # A token endpoint's answer holds tokens: never in a repr.
    body: bytes = field(repr=False)
    url: str = field(repr=False)

    def json(self) -> Any:
        try:
            # Amounts stay exact: never through float.
            return json.loads(self.body, parse_float=Decimal)
        except ValueError:
            raise FatalError(
                f"{_safe_url(self.url)} answered {self.status} with something that is not JSON",
                status=self.status,
            ) from None


@dataclass
class CallBudget:
    """At most ``per_minute`` calls in any minute; stop when the day's allowance is near.

    ``day_reserve`` calls are kept back from the platform's daily allowance, so a sync
    never leaves nothing for writing notes after sending.
    """

    per_minute: int = 60
    day_reserve: int = 50
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    recent: collections.deque[float] = field(default_factory=collections.deque)
    minute_remaining: int | None = None
    day_remaining: int | None = None
    #: The UTC day ``day_remaining`` was read on: a new day has a new allowance.
    day_of_reading: str | None = None
    today: Callable[[], str] = field(
        default=lambda: datetime.datetime.now(datetime.UTC).date().isoformat()
    )

    def before_call(self, method: str = "GET") -> None:
        if self.day_of_reading is not None and self.day_of_reading != self.today():
            self.day_remaining = self.day_of_reading = None
        reads = method in ("GET", "HEAD", "PROPFIND", "REPORT")
        # The reserve is for writing notes back: reads stop before it, writes may use it.
        floor = self.day_reserve if reads else 0
        if self.day_remaining is not None and self.day_remaining <= floor:
            now_utc = datetime.datetime.now(datetime.UTC)
            midnight = datetime.datetime.combine(
                now_utc.date() + datetime.timedelta(days=1), datetime.time(), datetime.UTC
            )
            raise RetriableError(
                f"the platform's daily call allowance is used up for "
                f"{'reading' if reads else 'today'} ({self.day_remaining} left"
                + (f", {self.day_reserve} kept back for notes)" if reads else ")"),
                hint="Kindly carries on after the allowance resets (at midnight UTC).",
                later=True,
                retry_after=(midnight - now_utc).total_seconds(),
            )
        now = self.clock()
        while self.recent and now - self.recent[0] >= 60:
            self.recent.popleft()
        wait = 0.0
        if len(self.recent) >= self.per_minute:
            wait = 60 - (now - self.recent[0])
        elif self.minute_remaining is not None and self.minute_remaining <= 0 and self.recent:
            wait = 60 - (now - self.recent[-1])
        if wait > 0:
            log.info(
                "call budget: waiting %.1f s to stay within %d a minute", wait, self.per_minute
            )
            self.sleep(wait)
            now = self.clock()
            while self.recent and now - self.recent[0] >= 60:
                self.recent.popleft()
            self.minute_remaining = None
        self.recent.append(now)

    def after_call(self, headers: Mapping[str, str], names: tuple[str, str] | None) -> None:
        if names is None:
            return
        minute, day = (headers.get(name) for name in names)
        if minute is not None and minute.strip().lstrip("-").isdigit():
            self.minute_remaining = int(minute)
        if day is not None and day.strip().lstrip("-").isdigit():
            self.day_remaining = int(day)
            self.day_of_reading = self.today()


@dataclass
class WindowBudget(CallBudget):
    """The calls a minute of :class:`CallBudget`, and no more than ``burst`` in any
    ``window`` seconds: a platform's own window (Pennylane 25 in 5 seconds, Moneybird 150
    in 5 minutes), kept a little under. When the platform's ``remaining_header`` says none
    is left, the next call waits until its ``reset_header`` (a Unix time, read on
    ``wall_clock``) or, without one, a whole window after the last call."""

    burst: int = 20
    window: float = 5.0
    remaining_header: str = "ratelimit-remaining"
    reset_header: str | None = None
    wall_clock: Callable[[], float] = time.time
    #: When each call of the last window went out, on ``clock``.
    in_window: collections.deque[float] = field(default_factory=collections.deque)
    #: What the platform's last answer said is left of its window, and when it resets.
    window_remaining: int | None = None
    window_reset: float | None = None

    def before_call(self, method: str = "GET") -> None:
        now = self._forget_before(self.clock())
        # Ours (the calls of the last window) and the platform's (none left until its
        # reset): the longer wait counts.
        ours = self.window - (now - self.in_window[0]) if len(self.in_window) >= self.burst else 0.0
        theirs = 0.0
        exhausted = self.window_remaining is not None and self.window_remaining <= 0
        if exhausted and self.window_reset is not None:
            theirs = min(self.window, self.window_reset - self.wall_clock())
        elif exhausted and self.in_window:
            theirs = self.window - (now - self.in_window[-1])
        wait = max(ours, theirs)
        if wait > 0:
            log.info("call budget: waiting %.1f s for the platform's window", wait)
            self.sleep(wait)
            self._forget_before(self.clock())
        if exhausted:
            # Waited for (or already past): the next answer says what is left.
            self.window_remaining = self.window_reset = None
        super().before_call(method)
        self.in_window.append(self.clock())

    def _forget_before(self, now: float) -> float:
        while self.in_window and now - self.in_window[0] >= self.window:
            self.in_window.popleft()
        return now

    def after_call(self, headers: Mapping[str, str], names: tuple[str, str] | None) -> None:
        super().after_call(headers, names)
        lowered = {k.lower(): v for k, v in headers.items()}
        left = lowered.get(self.remaining_header.lower())
        if left is not None and left.strip().lstrip("-").isdigit():
            self.window_remaining = int(left)
            self.window_reset = None  # a reset belongs to the answer that gave it
        reset = lowered.get(self.reset_header.lower()) if self.reset_header else None
        if reset is not None and reset.strip().isdigit():
            value = float(reset)
            # A Unix time, or (as the IETF draft has it) seconds from now.
            self.window_reset = value if value > 1e9 else self.wall_clock() + value


@dataclass(frozen=True)
class Limit:
    """A platform's limit: ``calls`` in any ``seconds``, per ``scope``: "organisation" (a
    tenant, realm, division or company), "token" (the connection of one workspace, which
    may reach several organisations: the platform counts per token or per user) or
    "app" (every organisation the app serves)."""

    calls: int
    seconds: float
    scope: str = "organisation"


class SharedLimits(Protocol):
    """Counts calls against limits that many processes share (Redis, for the workers)."""

    def take(self, rules: Sequence[tuple[str, int, float]]) -> float:
        """Count one call under every rule (key, calls, seconds) and return 0, or count
        none and return the seconds until all would allow one."""
        ...


#: The shared limits of this process, once a worker installed them.
_shared_limits: SharedLimits | None = None


def share_limits(limits: SharedLimits | None) -> None:
    """From now on, the connectors made in this process also count their calls in
    ``limits`` (None: no longer)."""
    global _shared_limits
    _shared_limits = limits


def shared_limits() -> SharedLimits | None:
    return _shared_limits


def _patient(
    sleep: Callable[[float], None], patience: float, platform: str
) -> Callable[[float], None]:
    """``sleep`` for a short wait; for a longer one, RetriableError(later) saying when."""

    def sleep_or_come_back_later(seconds: float) -> None:
        if seconds > patience:
            raise RetriableError(
                f"{platform}'s call limit is used up for now",
                retry_after=seconds,
                later=True,
                hint=f"Kindly goes on in {seconds:.0f} s.",
            )
        sleep(seconds)

    sleep_or_come_back_later.comes_back_later = True  # type: ignore[attr-defined]
    return sleep_or_come_back_later


@dataclass
class SharedBudget(CallBudget):
    """A connector's own budget (``local``: its pace in this process), then the limits
    shared with every other process: when one is used up, the call is not made and a
    RetriableError says when the budget returns (``later``: a worker puts its task back
    on the queue for then, rather than sleep)."""

    local: CallBudget = field(default_factory=CallBudget)
    limits: SharedLimits | None = None
    rules: Sequence[tuple[str, int, float]] = ()
    platform: str = "the platform"
    #: A wait this short is slept (a window's edge, another worker's burst); a longer
    #: one puts the task back on the queue.
    patience: float = 5.0
    #: The last call this budget refused because a limit was used up: a run that went on
    #: without it (notes left for later) is queued again for when the budget returns.
    refused: RetriableError | None = None

    def __post_init__(self) -> None:
        # The connector's own pacing may want a long wait too (a minute's calls used up
        # in this process): on a worker that is a task for later, not a worker asleep.
        if not getattr(self.local.sleep, "comes_back_later", False):
            self.local.sleep = _patient(self.local.sleep, self.patience, self.platform)

    def before_call(self, method: str = "GET") -> None:
        try:
            self._take(method)
        except RetriableError as exc:
            if exc.later:
                self.refused = exc
            raise

    def _take(self, method: str) -> None:
        self.local.before_call(method)
        if self.limits is None or not self.rules:
            return
        waited = 0.0
        while (wait := self.limits.take(self.rules)) > 0:
            if waited + wait > self.patience:
                raise RetriableError(
                    f"{self.platform}'s call limit is used up for now (shared by every worker)",
                    retry_after=wait,
                    later=True,
                    hint=f"Kindly goes on in {wait:.0f} s.",
                )
            self.local.sleep(wait)
            waited += wait

    def after_call(self, headers: Mapping[str, str], names: tuple[str, str] | None) -> None:
        self.local.after_call(headers, names)
        # What the platform said is left, for `allowance()`, as the local budget read it.
        self.minute_remaining = self.local.minute_remaining
        self.day_remaining = self.local.day_remaining


class HttpClient:
    """Calls one platform. ``authorize`` adds credentials; ``refresh`` renews them on a 401."""

    def __init__(
        self,
        platform: str,
        *,
        authorize: Callable[[], Mapping[str, str]] | None = None,
        refresh: Callable[[], bool] | None = None,
        secrets: Callable[[], Iterable[str]] = lambda: (),
        timeout: tuple[float, float] = (5.0, 30.0),
        attempts: int = 5,
        backoff: float = 1.0,
        backoff_cap: float = 60.0,
        budget: CallBudget | None = None,
        rate_headers: tuple[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
        refused_hint: str | None = None,
        private_links: bool = False,
    ) -> None:
        self.platform = platform
        #: The addresses called are capabilities themselves (a file's signed link): no
        #: part of their query is shown in a log or an error.
        self.private_links = private_links
        #: What to do when the platform refuses the credentials; default: connect again.
        self.refused_hint = refused_hint or f"Connect again: kindly connect {platform.lower()}"
        self._authorize = authorize
        self._refresh = refresh
        self._secrets = secrets
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.budget = budget
        self.rate_headers = rate_headers
        self._sleep = sleep
        self._jitter = jitter
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        #: Calls made, by "METHOD path": tests assert on these counts.
        self.calls: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"HttpClient({self.platform!r}, calls={sum(self.calls.values())})"

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | bytes | None = None,
        auth: tuple[str, str] | None = None,
        ok: Iterable[int] = (200, 201, 202, 204),
    ) -> Response:
        """One call, retried as the failure allows; raises an :class:`HttpError` subclass.

        A POST (or PATCH) is repeated only when it surely did not arrive (a refused
        connection, a 429), unless it carries an ``Idempotency-Key``: sending an e-mail
        twice because the answer got lost is worse than trying again on the next run.
        """
        accepted = set(ok)
        idempotent = method.upper() not in ("POST", "PATCH") or any(
            name.lower() == "idempotency-key" for name in (headers or {})
        )
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send(method, url, params, headers, json, data, auth)
            except RetriableError as exc:
                if exc.later or (exc.maybe_received and not idempotent):
                    raise
                if attempt >= self.attempts:
                    raise RetriableError(
                        f"{exc} (gave up after {attempt} attempts)",
                        status=exc.status,
                        hint=exc.hint,
                        maybe_received=exc.maybe_received,
                    ) from None
                self._sleep(self._delay(attempt, exc.retry_after))
                continue
            if response.status in accepted:
                return response
            if response.status == 401 and self._refresh is not None and not refreshed:
                refreshed = True
                if self._refresh():
                    continue
            error = self._classify(method, url, response)
            if isinstance(error, RetriableError) and (
                error.later or (not idempotent and error.status != 429)
            ):
                raise error
            if isinstance(error, RetriableError) and attempt < self.attempts:
                self._sleep(self._delay(attempt, error.retry_after))
                continue
            if isinstance(error, RetriableError):
                raise RetriableError(
                    f"{error} (gave up after {attempt} attempts)",
                    status=error.status,
                    retry_after=error.retry_after,
                ) from None
            raise error

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        json: Any,
        data: Mapping[str, str] | bytes | None,
        auth: tuple[str, str] | None,
    ) -> Response:
        if self.budget is not None:
            self.budget.before_call(method.upper())
        try:
            merged = dict(self._authorize() if self._authorize else {})
        except RetriableError as exc:
            # Renewing the credentials failed for now: that call retried on its own
            # already; repeating it here would multiply the attempts.
            exc.later = True
            raise
        merged.update(headers or {})
        self.calls[f"{method} {urlsplit(url).path}"] += 1
        started = time.perf_counter()
        try:
            raw = self.session.request(
                method,
                url,
                params=params,
                headers=merged,
                json=json,
                data=data,
                auth=auth,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            # ConnectTimeout is both; ReadTimeout and a dropped connection land here too.
            # Only a connection that was never made surely did not deliver the request.
            never_connected = isinstance(exc, requests.ConnectTimeout) or _never_connected(exc)
            shown = self._shown(url, params)
            raise RetriableError(
                f"{self.platform}: {method} {shown} failed: {type(exc).__name__}",
                hint="Check the network connection; Kindly tries again later.",
                maybe_received=not never_connected,
            ) from None
        except requests.exceptions.ChunkedEncodingError:
            raise RetriableError(
                f"{self.platform}: {method} {self._shown(url, params)}: the answer was cut off",
                maybe_received=True,
            ) from None
        except requests.RequestException as exc:
            raise FatalError(
                f"{self.platform}: {method} {self._shown(url, params)} cannot be sent: "
                f"{type(exc).__name__}"
            ) from None
        response = Response(raw.status_code, raw.headers, raw.content, raw.url)
        if self.budget is not None:
            self.budget.after_call(response.headers, self.rate_headers)
        log.debug(
            "%s %s -> %s in %.0f ms (%d bytes)",
            method,
            self._shown(url, params),
            response.status,
            (time.perf_counter() - started) * 1000,
            len(response.body),
        )
        return response

    def _classify(self, method: str, url: str, response: Response) -> HttpError:
        """The one place a failed answer is sorted into retriable, auth and fatal."""
        where = f"{self.platform}: {method} {self._shown(url)}"
        detail = self.redact(_detail(response))
        status = response.status
        if status in RETRIABLE_STATUS:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            problem = (response.headers.get("X-Rate-Limit-Problem") or "").lower()
            # A daily limit, or a wait of more than a minute: not worth sleeping through
            # in this run; the next one tries again.
            later = problem == "day" or (retry_after is not None and retry_after > 60)
            return RetriableError(
                f"{where} answered {status}{detail}" + (f" (limit: {problem})" if problem else ""),
                status=status,
                retry_after=retry_after,
                later=later,
                hint="Kindly tries again on the next run." if later else None,
                maybe_received=status in MAYBE_DONE_STATUS,
            )
        if status in (401, 403):
            return AuthError(
                f"{where} refused our credentials ({status}){detail}",
                status=status,
                hint=self.refused_hint,
            )
        if 300 <= status < 400:
            return FatalError(
                f"{where} redirected ({status}); check the API address", status=status
            )
        return FatalError(f"{where} answered {status}{detail}", status=status)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        # Full jitter (AWS architecture blog): spreads out clients that failed together.
        ceiling = min(self.backoff_cap, self.backoff * 2.0 ** (attempt - 1))
        delay = ceiling * self._jitter()
        if retry_after is not None:
            delay = max(delay, min(retry_after, 15 * 60))
        return delay

    def _shown(self, url: str, params: Mapping[str, Any] | None = None) -> str:
        """The address as logs and errors may show it: secrets masked."""
        shown = _safe_url(url, params)
        if self.private_links:
            parts = urlsplit(shown)
            hidden = [(k, "***") for k, _ in parse_qsl(parts.query, keep_blank_values=True)]
            shown = urlunsplit(parts._replace(query=urlencode(hidden, safe="*")))
        return self.redact(shown)

    def download(self, url: str, *, accept: str = "*/*", hops: int = 5) -> Response:
        """A file at a public link (a platform's signed download address), following its
        redirects (a storage host's signed link): only to http(s), at most ``hops``.
        Meant for a client that carries no credentials."""
        allowed = ("https",) if urlsplit(url).scheme == "https" else ("https", "http")
        for _ in range(hops + 1):
            # Never from https down to http: the link is the key to the file.
            if urlsplit(url).scheme not in allowed:
                raise FatalError(f"{self.platform}: a download led to {self._shown(url)}")
            response = self.request(
                "GET", url, headers={"Accept": accept}, ok=(200, 301, 302, 303, 307, 308)
            )
            location = response.headers.get("Location") or response.headers.get("location")
            if response.status == 200 or not location:
                return response
            url = urljoin(url, location)
        raise FatalError(f"{self.platform}: a download was redirected more than {hops} times")

    def redact(self, text: str) -> str:
        for secret in self._secrets():
            if secret and len(secret) >= 6:
                text = text.replace(secret, "***")
        return _BEARER.sub(r"\1***", text)


_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def _never_connected(exc: BaseException) -> bool:
    """Whether urllib3 failed before a connection was made (refused, or the name did not
    resolve): then the request surely never arrived."""
    from urllib3.exceptions import NewConnectionError

    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        if isinstance(found, NewConnectionError):  # NameResolutionError is one too
            return True
        reason = getattr(found, "reason", None)
        inner = found.args[0] if found.args and isinstance(found.args[0], BaseException) else None
        found = reason if isinstance(reason, BaseException) else inner or found.__cause__
    return False


def _safe_url(url: str, params: Mapping[str, Any] | None = None) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if params:
        query += [(str(k), str(v)) for k, v in params.items()]
    masked = [(k, "***" if k.lower() in SECRET_NAMES else v) for k, v in query]
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(masked), ""))


def _detail(response: Response) -> str:
    text = response.body[:300].decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        data = response.json()
    except FatalError:
        return f": {' '.join(text.split())[:200]}"
    if isinstance(data, dict):
        for key in ("Message", "message", "error_description", "error", "Detail", "detail"):
            if isinstance(data.get(key), str):
                return f": {data[key][:200]}"
    return f": {' '.join(text.split())[:200]}"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        # Seconds, as RFC 9110 says; Moneybird's documentation has a Unix time here instead,
        # which no wait in seconds would ever reach.
        number = float(value)
        return max(0.0, number - time.time()) if number > 1_000_000_000 else number
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def delivery_status(exc: HttpError, *, repeatable: bool) -> DeliveryStatus:
    """What a failed hand-over to a platform (a mailer, an SMS gateway) means for the
    reminder: the one place HTTP failures become delivery outcomes.

    "temporary" (the next run tries again) for what may work later; "unconfirmed" when
    the request may have arrived and repeating it could deliver twice; "permanent" (fall
    back to the client's next channel) for a refusal.
    """
    if repeatable:
        # The request carries an idempotency key: asking again cannot deliver twice, so
        # anything but a refusal of the request itself waits for the next run.
        if exc.status is None or exc.status >= 429:
            return DeliveryStatus.TEMPORARY
        return DeliveryStatus.PERMANENT
    if isinstance(exc, RetriableError):
        # A connection never made delivered nothing: only one that may have carried the
        # request is in doubt.
        return DeliveryStatus.UNCONFIRMED if exc.maybe_received else DeliveryStatus.TEMPORARY
    return DeliveryStatus.PERMANENT
