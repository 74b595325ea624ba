"""A small inline SVG chart of evidence series, computed server-side (no JavaScript, no external assets).

Each line is normalised to its own value range, because the alert signal (say, a ratio) and the top metric (say,
bytes) rarely share a unit; the legend carries each line's real minimum and maximum instead of a shared y axis.
A vertical marker shows the alert's ``starts_at`` so "before" and "during" read at a glance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from reports.models import Evidence

WIDTH = 640
HEIGHT = 180
PAD_X = 8
PAD_Y = 12
MAX_POINTS = 400
COLORS = ("#d9480f", "#1971c2", "#2f9e44", "#7048e8")
SIGNAL_KINDS = frozenset({"signal", "alert_signal"})


@dataclass(frozen=True)
class ChartLine:
    label: str
    points: str  # SVG polyline "x,y x,y …" in the chart's coordinate space
    color: str
    min_label: str
    max_label: str
    last_label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    lines: list[ChartLine]
    marker_x: float | None  # where starts_at falls, or None when outside the plotted time range
    start_label: str
    end_label: str


def fmt_value(value: float) -> str:
    """A short human number: 0.973, 12.4, 1.2k, 3.4M, 5.6G."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def _clean(series: list[tuple[float, float]]) -> list[tuple[float, float]]:
    points = sorted((float(t), float(v)) for t, v in series if math.isfinite(t) and math.isfinite(v))
    if len(points) > MAX_POINTS:
        # keep the shape: evenly spaced samples, always including the last point
        step = len(points) / MAX_POINTS
        points = [points[int(i * step)] for i in range(MAX_POINTS - 1)] + [points[-1]]
    return points


def chart_series(evidence: list[Evidence]) -> list[Evidence]:
    """The evidence to plot: the alert's own signal first, then the highest-scored other metric with a series."""
    with_series = [e for e in evidence if e.series and len(e.series) >= 2]
    signal = next((e for e in with_series if e.kind in SIGNAL_KINDS), None)
    others = sorted((e for e in with_series if e is not signal), key=lambda e: e.score, reverse=True)
    chosen = ([signal] if signal else []) + others[: 2 if signal is None else 1]
    return chosen


def build_chart(evidence: list[Evidence], starts_at: datetime, *, label_chars: int = 60) -> Chart | None:
    """The chart for a report's evidence, or None when no evidence carries a plottable series."""
    picked = [(e, _clean(e.series or [])) for e in chart_series(evidence)]
    picked = [(e, pts) for e, pts in picked if len(pts) >= 2]
    if not picked:
        return None
    t_min = min(pts[0][0] for _, pts in picked)
    t_max = max(pts[-1][0] for _, pts in picked)
    t_span = (t_max - t_min) or 1.0
    inner_w, inner_h = WIDTH - 2 * PAD_X, HEIGHT - 2 * PAD_Y

    def x_of(t: float) -> float:
        return round(PAD_X + (t - t_min) / t_span * inner_w, 1)

    lines: list[ChartLine] = []
    for index, (item, pts) in enumerate(picked):
        values = [v for _, v in pts]
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        coords = " ".join(f"{x_of(t)},{round(PAD_Y + inner_h - (v - low) / span * inner_h, 1)}" for t, v in pts)
        title = item.title if len(item.title) <= label_chars else item.title[: label_chars - 1] + "…"
        lines.append(
            ChartLine(
                label=title,
                points=coords,
                color=COLORS[index % len(COLORS)],
                min_label=fmt_value(low),
                max_label=fmt_value(high),
                last_label=fmt_value(values[-1]),
            )
        )
    start_s = starts_at.timestamp()
    marker = x_of(start_s) if t_min <= start_s <= t_max else None
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        lines=lines,
        marker_x=marker,
        start_label=datetime.fromtimestamp(t_min, UTC).strftime("%H:%M"),
        end_label=datetime.fromtimestamp(t_max, UTC).strftime("%H:%M"),
    )
