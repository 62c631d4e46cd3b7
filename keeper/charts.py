"""The admin's charts, as SVG coordinates: stacked bars per UTC day for
templates/admin/includes/stacked_bar_chart.html, and the geometry every chart shares.

Drawn on the server, so the admin needs no chart library, no JavaScript and no CDN: a key's usage
(apps.keys.admin) and the staff overview's traffic (apps.keys.overview) are drawn by `stacked_bar_chart`;
a server's price over time (apps.catalog.admin) on the same geometry.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


@dataclass(frozen=True)
class ChartGeometry:
    width: int = 760
    height: int = 250
    left: int = 60
    right: int = 12
    top: int = 14
    bottom: int = 58

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom

    @property
    def baseline(self) -> int:
        return self.top + self.plot_height

    # Where the frame's parts stand, for the templates: the plot's right edge, the day (or date) labels
    # under it, the legend at the bottom, the y axis' title turned along the left margin.
    @property
    def plot_right(self) -> int:
        return self.left + self.plot_width

    @property
    def x_label_y(self) -> int:
        return self.baseline + 16

    @property
    def legend_y(self) -> int:
        return self.height - 14

    @property
    def y_title_x(self) -> int:
        return 14

    @property
    def y_title_y(self) -> int:
        return self.top + self.plot_height // 2


@dataclass(frozen=True)
class Series:
    """One part of each bar, bottom first: its key in the day's values, legend label and colour."""

    name: str
    label: str
    color: str


def _nice_step(maximum: int, steps: int = 4) -> int:
    raw = max(maximum / steps, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _num(value: float) -> str:
    return f"{value:.1f}"


def _compact(value: int) -> str:
    """An axis label that fits the margin: 950, 1.5k, 2M."""
    if value < 1000:
        return str(value)
    if value < 1_000_000:
        return f"{value / 1000:g}k"
    return f"{value / 1_000_000:g}M"


def stacked_bar_chart(
    values: Mapping[date, Mapping[str, int]],
    series: Sequence[Series],
    *,
    days: int,
    today: date,
    title: Callable[[date, Mapping[str, int]], str],
    y_title: str,
    chart_id: str = "",
) -> dict[str, Any]:
    """A bar per day of the `days` ending `today` that has values, stacked from `series`; `title` is its tooltip."""
    first = today - timedelta(days=days - 1)
    shown = {day: row for day, row in values.items() if first <= day <= today}
    g = ChartGeometry()
    peak = max((sum(row.get(part.name, 0) for part in series) for row in shown.values()), default=0)
    step = _nice_step(peak)
    top = step * max(1, math.ceil(peak / step))
    slot = g.plot_width / days

    def y(value: float) -> float:
        return g.baseline - value / top * g.plot_height

    bars, labels = [], []
    for index in range(days):
        day = first + timedelta(days=index)
        center = g.left + slot * (index + 0.5)
        if (days - 1 - index) % 7 == 0:  # weekly, ending today
            labels.append({"x": _num(center), "text": day.strftime("%b %d")})
        row = shown.get(day)
        if row is None:
            continue
        segments, level = [], 0
        for part in series:
            value = row.get(part.name, 0)
            if value:
                segments.append(
                    {
                        "kind": part.name,
                        "y": _num(y(level + value)),
                        "height": _num(y(level) - y(level + value)),
                        "fill": part.color,
                    }
                )
                level += value
        bars.append(
            {
                "day": day.isoformat(),
                "x": _num(center - slot * 0.35),
                "width": _num(slot * 0.7),
                "segments": segments,
                "title": title(day, row),
            }
        )
    legend, offset = [], 0
    for part in series:
        legend.append({"x": g.left + offset, "fill": part.color, "label": part.label})
        offset += 24 + 7 * len(part.label)
    return {
        "id": chart_id,
        "days": days,
        "first": first,
        "last": today,
        "geometry": g,
        "y_title": y_title,
        "bars": bars,
        "ticks": [{"y": _num(y(value)), "label": _compact(value)} for value in range(0, top + 1, step)],
        "labels": labels,
        "legend": legend,
    }
