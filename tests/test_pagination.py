"""The paginators and their one loop: where each paging style starts, moves and stops,
and the guard against servers that page in circles."""

from __future__ import annotations

import doctest
import itertools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import integrations.pagination
from integrations.http import FatalError, HttpClient, Response
from integrations.pagination import (
    NextLink,
    NextToken,
    ODataNext,
    Offset,
    Page,
    PageNumber,
    paginate,
)
from tests.fakes.http_server import base_url, serve, stop


def test_the_worked_examples_in_the_docstrings_hold() -> None:
    result = doctest.testmod(integrations.pagination)
    assert result.attempted >= 3 and result.failed == 0


# -- page numbers ------------------------------------------------------------------------


def numbered(records: list[int], size: int, first: int) -> tuple[list[int], Any]:
    """A server with ``records`` in pages of ``size``, numbered from ``first``; and the
    page numbers it was asked for."""
    asked: list[int] = []

    def fetch(number: int) -> Page[int]:
        asked.append(number)
        start = (number - first) * size
        return Page(records[start : start + size])

    return asked, fetch


def test_page_numbers_are_read_until_a_short_page() -> None:
    asked, fetch = numbered(list(range(7)), 3, 1)
    assert list(paginate(PageNumber(3), fetch)) == list(range(7))
    assert asked == [1, 2, 3]


def test_a_full_last_page_costs_one_more_call_for_an_empty_page() -> None:
    asked, fetch = numbered(list(range(6)), 3, 1)
    assert list(paginate(PageNumber(3), fetch)) == list(range(6))
    assert asked == [1, 2, 3]


def test_pages_can_be_numbered_from_zero() -> None:
    asked, fetch = numbered(list(range(5)), 2, 0)
    assert list(paginate(PageNumber(2, first=0), fetch)) == list(range(5))
    assert asked == [0, 1, 2]


def test_a_page_count_header_stops_at_a_full_last_page() -> None:
    asked: list[int] = []
    records = list(range(4))

    def fetch(number: int) -> Page[int]:
        asked.append(number)
        return Page(records[number * 2 : number * 2 + 2], headers={"fiken-api-page-count": "2"})

    paginator = PageNumber(2, first=0, count_header="Fiken-Api-Page-Count")
    assert list(paginate(paginator, fetch)) == records
    assert asked == [0, 1]


def test_a_page_count_header_that_is_not_a_number_falls_back_to_the_short_page() -> None:
    asked: list[int] = []

    def fetch(number: int) -> Page[int]:
        asked.append(number)
        items = [number] * 2 if number < 3 else []
        return Page(items, headers={"Fiken-Api-Page-Count": "many"})

    paginator = PageNumber(2, first=0, count_header="Fiken-Api-Page-Count")
    assert list(paginate(paginator, fetch)) == [0, 0, 1, 1, 2, 2]
    assert asked == [0, 1, 2, 3]


def test_a_server_that_ignores_the_page_number_is_caught_on_the_second_page() -> None:
    asked: list[int] = []

    def fetch(number: int) -> Page[str]:
        asked.append(number)
        return Page(["a", "b"])

    pages = paginate(PageNumber(2), fetch)
    with pytest.raises(FatalError, match="repeats the page before it"):
        list(pages)
    assert asked == [1, 2]


@pytest.mark.parametrize("size", [0, -1])
def test_a_page_holds_at_least_one_item(size: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PageNumber(size)
    with pytest.raises(ValueError, match="at least 1"):
        Offset(size)


# -- offsets -----------------------------------------------------------------------------


def test_an_offset_moves_by_the_items_read_and_stops_on_a_short_page() -> None:
    records = [f"inv{n}" for n in range(1, 6)]
    asked: list[int] = []

    def fetch(start: int) -> Page[str]:
        # STARTPOSITION is 1-based, as QuickBooks counts.
        asked.append(start)
        return Page(records[start - 1 : start - 1 + 2])

    assert list(paginate(Offset(2), fetch)) == records
    assert asked == [1, 3, 5]


def test_an_offset_from_zero() -> None:
    asked: list[int] = []

    def fetch(start: int) -> Page[int]:
        asked.append(start)
        return Page(list(range(10))[start : start + 4])

    assert list(paginate(Offset(4, first=0), fetch)) == list(range(10))
    assert asked == [0, 4, 8]


def test_a_missing_entity_key_is_an_empty_last_page() -> None:
    def fetch(start: int) -> Page[Any]:
        body: dict[str, Any] = (
            {"QueryResponse": {}}
            if start > 1
            else {"QueryResponse": {"Invoice": [{"Id": "1"}], "startPosition": 1, "maxResults": 1}}
        )
        return Page(body["QueryResponse"].get("Invoice", []), body)

    assert list(paginate(Offset(1), fetch)) == [{"Id": "1"}]


# -- tokens and links --------------------------------------------------------------------


def test_page_tokens_are_followed_and_the_last_page_keeps_its_sync_token() -> None:
    bodies: dict[str | None, dict[str, Any]] = {
        None: {"items": ["e1", "e2"], "nextPageToken": "t2"},
        "t2": {"items": ["e3"], "nextPageToken": "t3"},
        "t3": {"items": [], "nextSyncToken": "sync-9"},
    }
    asked: list[str | None] = []

    def fetch(token: str | None) -> Page[str]:
        asked.append(token)
        return Page(bodies[token]["items"], bodies[token])

    pages = paginate(NextToken(), fetch)
    assert list(pages) == ["e1", "e2", "e3"]
    assert asked == [None, "t2", "t3"]
    assert pages.last_page is not None
    assert pages.last_page.body["nextSyncToken"] == "sync-9"
    assert pages.pages_read == 3


@pytest.mark.parametrize("body", [{"items": [1]}, {"items": [1], "nextPageToken": ""}, [1], None])
def test_no_token_is_the_last_page(body: Any) -> None:
    assert list(paginate(NextToken(), lambda token: Page([1], body))) == [1]


def test_a_token_already_used_stops_the_loop() -> None:
    tokens = {None: "a", "a": "b", "b": "a"}
    asked: list[str | None] = []

    def fetch(token: str | None) -> Page[str]:
        asked.append(token)
        return Page([f"from {token}"], {"nextPageToken": tokens[token]})

    pages = paginate(NextToken(), fetch)
    assert [next(pages), next(pages), next(pages)] == ["from None", "from a", "from b"]
    with pytest.raises(FatalError, match=r"points back to a page already read \('a'\)"):
        next(pages)
    assert asked == [None, "a", "b"]


def test_graph_next_links_are_followed_to_the_delta_link() -> None:
    base = "https://graph.microsoft.com/v1.0/me/calendarView/delta"
    bodies: dict[str | None, dict[str, Any]] = {
        None: {"value": [{"id": "1"}], "@odata.nextLink": f"{base}?$skiptoken=x"},
        f"{base}?$skiptoken=x": {"value": [{"id": "2"}], "@odata.deltaLink": f"{base}?$d=y"},
    }
    pages = paginate(NextLink(), lambda link: Page(bodies[link]["value"], bodies[link]))
    assert [item["id"] for item in pages] == ["1", "2"]
    assert pages.last_page is not None
    assert pages.last_page.body["@odata.deltaLink"] == f"{base}?$d=y"


def test_a_next_link_that_points_to_itself_stops_the_loop() -> None:
    link = "https://graph.test/items?$skiptoken=same"
    pages = paginate(NextLink(), lambda cursor: Page([cursor], {"@odata.nextLink": link}))
    with pytest.raises(FatalError, match="pages in a loop"):
        list(pages)
    assert pages.pages_read == 2


def test_a_link_header_names_the_next_page() -> None:
    links = {
        None: '<https://moneybird.test/api/v2/1/contacts.json?page=2>; rel="next"',
        "https://moneybird.test/api/v2/1/contacts.json?page=2": (
            '<https://moneybird.test/api/v2/1/contacts.json?page=1>; rel="prev"'
        ),
    }
    asked: list[str | None] = []

    def fetch(link: str | None) -> Page[str]:
        asked.append(link)
        # Moneybird's body is a bare list: the link is in the header only.
        return Page([f"c{len(asked)}"], ["ignored"], {"link": links[link]})

    assert list(paginate(NextLink(), fetch)) == ["c1", "c2"]
    assert asked == [None, "https://moneybird.test/api/v2/1/contacts.json?page=2"]


def test_a_relative_link_is_resolved_against_the_url_asked_for() -> None:
    page = Page(
        [1],
        None,
        {"Link": '</api/v2/1/contacts.json?page=3>; rel="next"'},
        url="https://moneybird.test/api/v2/1/contacts.json?page=2",
    )
    assert NextLink().advance(None, page) == "https://moneybird.test/api/v2/1/contacts.json?page=3"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ('<https://x.test/?page=1>; rel="prev"', None),
        (
            '<https://x.test/?page=1>; rel="prev", <https://x.test/?page=3>; rel="next"',
            "https://x.test/?page=3",
        ),
        ("<https://x.test/?page=3>; rel=next", "https://x.test/?page=3"),
        ('<https://x.test/?page=3>; REL="Next"', "https://x.test/?page=3"),
        ('<https://x.test/?page=9>; rel="last next"', "https://x.test/?page=9"),
        ('<https://x.test/?page=2>; title="a, <b>; rel=next"; rel="prev"', None),
        ('<https://x.test/?a=1,2>; title="x"; rel="next"', "https://x.test/?a=1,2"),
        ('<https://x.test/next-page>; rel="nextish"', None),
    ],
)
def test_reading_a_link_header(header: str | None, expected: str | None) -> None:
    assert NextLink.from_header(header) == expected


def test_exact_online_follows_d_next_until_it_is_absent() -> None:
    first = "https://start.exactonline.nl/api/v1/1/salesinvoice/SalesInvoices"
    second = f"{first}?$skiptoken=guid'00000000-0000-0000-0000-000000000001'"
    bodies: dict[str | None, Any] = {
        None: {"d": {"results": [{"InvoiceID": "a"}], "__next": second}},
        second: {"d": {"results": [{"InvoiceID": "b"}]}},
    }

    def fetch(link: str | None) -> Page[Any]:
        return Page(ODataNext.results(bodies[link]), bodies[link])

    assert [row["InvoiceID"] for row in paginate(ODataNext(), fetch)] == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "rows"),
    [
        ({"d": {"results": [1, 2]}}, [1, 2]),
        ({"d": [3]}, [3]),
        ({"d": {}}, []),
        ({"error": {"message": "x"}}, []),
        ([1], []),
        (None, []),
    ],
)
def test_odata_results(body: Any, rows: list[Any]) -> None:
    assert ODataNext.results(body) == rows


# -- the loop ----------------------------------------------------------------------------


def test_pages_are_read_only_as_far_as_the_items_are_used() -> None:
    asked: list[int] = []

    def fetch(number: int) -> Page[int]:
        asked.append(number)
        return Page([number * 10, number * 10 + 1])

    pages = paginate(PageNumber(2), fetch)
    assert asked == []
    assert list(itertools.islice(pages, 3)) == [10, 11, 20]
    assert asked == [1, 2]


def test_identical_empty_pages_are_no_loop() -> None:
    # An empty page says nothing about paging being ignored: only the cursor decides.
    tokens: Iterator[str | None] = iter(["a", None])
    pages = paginate(NextToken(), lambda token: Page[object]([], {"nextPageToken": next(tokens)}))
    assert list(pages) == []
    assert pages.pages_read == 2


def test_the_same_items_two_pages_apart_are_no_loop() -> None:
    bodies: dict[str | None, Any] = {
        None: {"items": ["x"], "nextPageToken": "b"},
        "b": {"items": ["y"], "nextPageToken": "c"},
        "c": {"items": ["x"]},
    }
    pages = paginate(NextToken(), lambda token: Page(bodies[token]["items"], bodies[token]))
    assert list(pages) == ["x", "y", "x"]


def test_a_page_of_a_real_response_pages_through_link_headers() -> None:
    """Moneybird's way over real HTTP: a relative ``Link`` header, through HttpClient."""
    records = [{"id": str(n)} for n in range(1, 6)]

    def handle(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        page = int(parse_qs(urlsplit(path).query).get("page", ["1"])[0])
        links: dict[str, str] = {}
        if page * 2 < len(records):
            links["Link"] = f'</contacts.json?page={page + 1}&per_page=2>; rel="next"'
        return 200, records[(page - 1) * 2 : page * 2], links

    server = serve(handle)
    client = HttpClient("Moneybird", sleep=lambda seconds: None)
    try:
        first = f"{base_url(server)}/contacts.json"

        def fetch(link: str | None) -> Page[Any]:
            params = None if link else {"per_page": 2}
            response = client.request("GET", link or first, params=params)
            return Page.of(response, response.json(), None)

        assert [r["id"] for r in paginate(NextLink(), fetch)] == ["1", "2", "3", "4", "5"]
        assert client.calls["GET /contacts.json"] == 3
    finally:
        client.close()
        stop(server)


def test_page_of_keeps_the_headers_and_the_url_of_the_response() -> None:
    response = Response(200, {"Link": "<?page=2>; rel=next"}, b"[]", "https://m.test/x.json")
    page: Page[object] = Page.of(response, [], json.loads(response.body))
    assert page.header("link") == "<?page=2>; rel=next"
    assert NextLink().advance(None, page) == "https://m.test/x.json?page=2"


def test_a_page_count_in_the_body_ends_on_a_full_last_page() -> None:
    items = {1: [1, 2], 2: [3, 4]}
    asked: list[int] = []

    def fetch(number: int) -> Page[int]:
        asked.append(number)
        return Page(items.get(number, []), {"pagination": {"pageCount": 2}})

    pages = paginate(PageNumber(2, count_field=("pagination", "pageCount")), fetch)
    assert list(pages) == [1, 2, 3, 4]
    assert asked == [1, 2], "no call for an empty third page"
