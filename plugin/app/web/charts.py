"""Pictures drawn on the server as inline SVG: horizontal bars, plain or stacked. No
script, no inline style (the page's policy forbids both): colours come from classes in
kindly.css. Each picture has a title and a description that says its figures in words,
for screen readers, and the figures are also on the page or in the JSON API.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

__all__ = ["Bar", "bars", "stacked"]

WIDTH = 640
ROW = 30
LABEL = 150  # the room for a row's label, left of the bars
VALUE = 120  # the room for its figure, right of them
TOP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: Decimal
    #: The figure as written beside the bar ("€ 1.745,00", "12 days").
    shown: str


def _open(title: str, description: str, height: int, kind: str) -> list[str]:
    ident = "chart-" + hashlib.sha256(f"{title}|{description}".encode()).hexdigest()[:10]
    return [
        f'<svg class="chart {kind}" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" aria-labelledby="{ident}-t {ident}-d" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-t">{escape(title)}</title>',
        f'<desc id="{ident}-d">{escape(description)}</desc>',
    ]


def bars(title: str, items: Sequence[Bar]) -> Markup:
    """One bar per item, as long as its value against the largest."""
    largest = max((item.value for item in items), default=Decimal(0))
    height = TOP * 2 + ROW * max(len(items), 1)
    description = "; ".join(f"{item.label}: {item.shown}" for item in items) or "nothing"
    parts = _open(title, description, height, "bars")
    room = WIDTH - LABEL - VALUE
    for row, item in enumerate(items):
        y = TOP + row * ROW
        length = int(room * item.value / largest) if largest > 0 and item.value > 0 else 0
        parts += [
            f'<text class="label" x="{LABEL - 8}" y="{y + 19}" text-anchor="end">'
            f"{escape(item.label)}</text>",
            f'<rect class="bar s0" x="{LABEL}" y="{y + 5}" width="{max(length, 1)}" '
            f'height="{ROW - 10}" rx="2"/>',
            f'<text class="value" x="{LABEL + length + 6}" y="{y + 19}">'
            f"{escape(item.shown)}</text>",
        ]
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text in it is escaped above)


def stacked(title: str, rows: Sequence[tuple[str, Sequence[int]]], series: Sequence[str]) -> Markup:
    """One bar per row, made of one segment per series (its count), with a legend."""
    largest = max((sum(values) for _label, values in rows), default=0)
    legend = TOP + ROW * max(len(rows), 1)
    height = legend + ROW + TOP
    description = "; ".join(
        f"{label}: "
        + ", ".join(f"{name} {value}" for name, value in zip(series, values, strict=True))
        for label, values in rows
    )
    parts = _open(title, description or "nothing", height, "stacked")
    room = WIDTH - LABEL - VALUE
    for row, (label, values) in enumerate(rows):
        y = TOP + row * ROW
        x = LABEL
        parts.append(
            f'<text class="label" x="{LABEL - 8}" y="{y + 19}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        for index, value in enumerate(values):
            if not value or not largest:
                continue
            length = max(int(room * value / largest), 2)
            parts.append(
                f'<rect class="bar s{index % 6}" x="{x}" y="{y + 5}" width="{length}" '
                f'height="{ROW - 10}"><title>{escape(series[index])}: {value}</title></rect>'
            )
            x += length
        parts.append(f'<text class="value" x="{x + 6}" y="{y + 19}">{sum(values)}</text>')
    x = LABEL
    for index, name in enumerate(series):
        parts += [
            f'<rect class="bar s{index % 6}" x="{x}" y="{legend + 8}" width="12" height="12"/>',
            f'<text class="legend" x="{x + 16}" y="{legend + 19}">{escape(name)}</text>',
        ]
        x += 24 + 8 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text in it is escaped above)
