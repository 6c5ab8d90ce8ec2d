"""Paging through a platform's lists: one loop, and a small paginator per paging style.

A connector picks the paginator its platform speaks and writes one ``fetch(cursor)``
that makes the call and returns a :class:`Page`; :func:`paginate` does the rest:

- :class:`PageNumber`: ``page=N`` (Xero from 1, Fiken from 0); a short page is the last.
- :class:`Offset`: a start position that moves by the items read (QuickBooks
  ``STARTPOSITION``/``MAXRESULTS``); a short page is the last.
- :class:`NextToken`: an opaque token in the body (Google ``nextPageToken``).
- :class:`NextLink`: the next page's URL, in the body (Microsoft Graph
  ``@odata.nextLink``) or in an RFC 8288 ``Link: <…>; rel="next"`` header (Moneybird).
- :class:`ODataNext`: OData v2's ``d.__next`` URL (Exact Online).

The loop lives in :func:`paginate` only, so every connector gets the same guard: a
server that hands out a cursor already read, or that ignores paging and sends the same
page again, raises :class:`~integrations.http.FatalError` instead of looping for ever.
What the last page said besides its items (Google's ``nextSyncToken``, Graph's
``@odata.deltaLink``) stays on :attr:`Pages.last_page`.

    >>> pages_of_google = {
    ...     None: {"items": [1, 2], "nextPageToken": "p2"},
    ...     "p2": {"items": [3], "nextSyncToken": "s1"},
    ... }
    >>> def fetch(token):
    ...     body = pages_of_google[token]
    ...     return Page(body["items"], body)
    >>> pages = paginate(NextToken(), fetch)
    >>> list(pages), pages.last_page.body["nextSyncToken"], pages.pages_read
    ([1, 2, 3], 's1', 2)
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urljoin

from integrations.http import FatalError, Response

__all__ = [
    "NextLink",
    "NextToken",
    "ODataNext",
    "Offset",
    "Page",
    "PageNumber",
    "Pages",
    "Paginator",
    "paginate",
]

Item = TypeVar("Item")
Cursor = TypeVar("Cursor", bound=Hashable)


@dataclass(frozen=True)
class Page(Generic[Item]):
    """One answer of a list call: its items, and what a paginator may read the next
    cursor from (the decoded body, the response headers, the URL a relative link is
    relative to)."""

    items: Sequence[Item]
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    url: str | None = None

    @classmethod
    def of(cls, response: Response, items: Sequence[Item], body: Any = None) -> Page[Item]:
        """A page of ``items`` read from ``response`` (whose ``body`` the caller decoded)."""
        return cls(items, body, response.headers, response.url)

    def header(self, name: str) -> str | None:
        # requests gives a case-insensitive mapping, a test or a fake a plain dict.
        value = self.headers.get(name)
        if value is not None:
            return value
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


class Paginator(ABC, Generic[Cursor]):
    """Where the first page starts, and where the page after ``cursor`` starts."""

    @abstractmethod
    def start(self) -> Cursor: ...

    @abstractmethod
    def advance(self, cursor: Cursor, page: Page[Any]) -> Cursor | None:
        """The cursor of the next page, or None when ``page`` was the last."""


class PageNumber(Paginator[int]):
    """``page=N`` with ``size`` items to a full page; a short page is the last.

    ``size`` is what the server really sends on a full page: a size above its maximum
    (Fiken and Moneybird send at most 100) makes the first page look like the last.

    ``count_header`` names a header that gives the number of pages (Fiken's
    ``Fiken-Api-Page-Count``), ``count_field`` the path to it in the body (Xero's
    ``pagination.pageCount``): with either, a last page that happens to be full costs no
    extra call for an empty one.
    """

    def __init__(
        self,
        size: int,
        first: int = 1,
        *,
        count_header: str | None = None,
        count_field: tuple[str, ...] = (),
    ) -> None:
        if size < 1:
            raise ValueError(f"page size must be at least 1, not {size}")
        self.size = size
        self.first = first
        self.count_header = count_header
        self.count_field = count_field

    def start(self) -> int:
        return self.first

    def advance(self, cursor: int, page: Page[Any]) -> int | None:
        if len(page.items) < self.size:
            return None
        count = self._page_count(page)
        if count is not None and cursor - self.first + 1 >= count:
            return None  # a full last page: no call for an empty one after it
        return cursor + 1

    def _page_count(self, page: Page[Any]) -> int | None:
        """The number of pages, where the answer says it (a header, or a field)."""
        if self.count_header is not None:
            count = (page.header(self.count_header) or "").strip()
            if count.isdigit():
                return int(count)
        if self.count_field:
            value: Any = page.body
            for name in self.count_field:
                value = value.get(name) if isinstance(value, Mapping) else None
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None


class Offset(Paginator[int]):
    """A start position (QuickBooks ``STARTPOSITION``, 1-based) with ``size`` items
    asked for (``MAXRESULTS``); the next page starts after the items read, and a short
    page is the last."""

    def __init__(self, size: int, first: int = 1) -> None:
        if size < 1:
            raise ValueError(f"page size must be at least 1, not {size}")
        self.size = size
        self.first = first

    def start(self) -> int:
        return self.first

    def advance(self, cursor: int, page: Page[Any]) -> int | None:
        if len(page.items) < self.size:
            return None
        return cursor + len(page.items)


class NextToken(Paginator[str | None]):
    """An opaque token in the body names the next page (Google ``nextPageToken``).

    The first cursor is None: the first call carries no token.
    """

    def __init__(self, name: str = "nextPageToken") -> None:
        self.name = name

    def start(self) -> str | None:
        return None

    def advance(self, cursor: str | None, page: Page[Any]) -> str | None:
        return _text_at(page.body, (self.name,))


class NextLink(Paginator[str | None]):
    """The next page's URL: a field of the body (Graph ``@odata.nextLink``), else the
    ``rel="next"`` target of the ``Link`` header (Moneybird).

    The first cursor is None: the first call goes to the caller's own URL and query,
    and every later one to the link alone, which carries its query.
    """

    def __init__(self, name: str = "@odata.nextLink") -> None:
        self.name = name

    def start(self) -> str | None:
        return None

    def advance(self, cursor: str | None, page: Page[Any]) -> str | None:
        link = _text_at(page.body, (self.name,)) or self.from_header(page.header("Link"))
        return _absolute(link, page.url)

    @staticmethod
    def from_header(value: str | None) -> str | None:
        """The ``rel="next"`` target of an RFC 8288 ``Link`` header, if there is one.

        >>> NextLink.from_header('<https://x.test/i?page=1>; rel="prev", '
        ...                      '<https://x.test/i?page=3>; rel="next"')
        'https://x.test/i?page=3'
        """
        for target, params in _LINK.findall(value or ""):
            for name, quoted, bare in _LINK_PARAM.findall(params):
                # rel may hold several relation types, separated by spaces (RFC 8288 §3.3).
                if name.lower() == "rel" and "next" in (quoted or bare).lower().split():
                    return str(target).strip() or None
        return None


class ODataNext(Paginator[str | None]):
    """OData v2's ``{"d": {"results": […], "__next": "<url>"}}`` (Exact Online).

    The first cursor is None, as for :class:`NextLink`.
    """

    def start(self) -> str | None:
        return None

    def advance(self, cursor: str | None, page: Page[Any]) -> str | None:
        return _absolute(_text_at(page.body, ("d", "__next")), page.url)

    @staticmethod
    def results(body: Any) -> list[Any]:
        """The rows of an OData v2 answer (``d.results``; empty when there are none)."""
        rows = body.get("d") if isinstance(body, Mapping) else None
        if isinstance(rows, Mapping):
            rows = rows.get("results")
        # A bare list under "d" is the older OData v1 form of the same answer.
        return list(rows) if isinstance(rows, list) else []


class Pages(Iterator[Item], Generic[Cursor, Item]):
    """The items of every page, read as they are iterated; see :func:`paginate`."""

    def __init__(self, paginator: Paginator[Cursor], fetch: Callable[[Cursor], Page[Item]]) -> None:
        self.paginator = paginator
        self._fetch = fetch
        #: The page read last: after the loop, the last page (with its sync token).
        self.last_page: Page[Item] | None = None
        self.pages_read = 0
        self._items = self._walk()

    def __iter__(self) -> Pages[Cursor, Item]:
        return self

    def __next__(self) -> Item:
        return next(self._items)

    def _walk(self) -> Iterator[Item]:
        cursor = self.paginator.start()
        used = {cursor}
        previous: list[Item] | None = None
        while True:
            page = self._fetch(cursor)
            items = list(page.items)
            self.last_page = page
            self.pages_read += 1
            if previous is not None and items and items == previous:
                raise FatalError(
                    f"page {self.pages_read} ({_short(cursor)}) repeats the page before it; "
                    "the server ignores paging"
                )
            yield from items
            following = self.paginator.advance(cursor, page)
            if following is None:
                return
            if following in used:
                raise FatalError(
                    f"after page {self.pages_read} the server points back to a page already "
                    f"read ({_short(following)}); it pages in a loop"
                )
            used.add(following)
            previous = items
            cursor = following


def paginate(
    paginator: Paginator[Cursor], fetch: Callable[[Cursor], Page[Item]]
) -> Pages[Cursor, Item]:
    """Every item of every page, page after page: ``fetch(cursor)`` reads one page.

    Pages are read as the items are iterated. Raises :class:`FatalError` when the next
    cursor is one already read, or when a page holds the same items as the page before.
    """
    return Pages(paginator, fetch)


# A link-value (RFC 8288 §3): <target>, then its parameters up to the next target; a
# quoted parameter value may hold anything, "<" and "," included.
_LINK = re.compile(r'<([^>]*)>((?:[^<"]|"[^"]*")*)')
_LINK_PARAM = re.compile(r';\s*([^\s=;,]+)\s*(?:=\s*(?:"([^"]*)"|([^;,\s]*)))?')


def _text_at(body: Any, path: tuple[str, ...]) -> str | None:
    for name in path:
        if not isinstance(body, Mapping):
            return None
        body = body.get(name)
    return body if isinstance(body, str) and body else None


def _absolute(link: str | None, base: str | None) -> str | None:
    # RFC 8288 allows a relative target, resolved against the URL that was asked for.
    return urljoin(base, link) if link and base else link


def _short(cursor: object) -> str:
    text = repr(cursor)
    return text if len(text) <= 80 else text[:77] + "..."
