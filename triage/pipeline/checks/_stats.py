"""Small statistics over metric series: baseline vs recent level, shift in standard deviations, onset time."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime

from tools.types import Point, Series

# a flat baseline has no spread; this share of its level (or an absolute floor) stands in for it
MIN_SPREAD_SHARE = 0.05
MIN_SPREAD_ABS = 1e-6
ONSET_SIGMA = 3.0


@dataclass(frozen=True)
class Shift:
    baseline_mean: float
    baseline_std: float
    recent_mean: float
    recent_peak: float
    z: float
    onset: datetime | None
    peak_at: datetime | None

    @property
    def relative(self) -> float:
        """Recent mean relative to the baseline mean (0.5 = 50 % higher)."""
        if abs(self.baseline_mean) < MIN_SPREAD_ABS:
            return math.inf if self.recent_mean > MIN_SPREAD_ABS else 0.0
        return (self.recent_mean - self.baseline_mean) / abs(self.baseline_mean)


def _finite(points: list[Point]) -> list[Point]:
    return [p for p in points if math.isfinite(p.value)]


def shift(series: Series, split_at: datetime, *, min_recent: int = 1) -> Shift | None:
    """Compare the points before ``split_at`` (baseline) with those from it on (recent); None with fewer than two
    baseline points or fewer than ``min_recent`` recent ones."""
    cut = split_at.timestamp()
    points = _finite(series.points)
    before = [p.value for p in points if p.t < cut]
    after = [p for p in points if p.t >= cut]
    if len(before) < 2 or len(after) < max(1, min_recent):
        return None
    mean = statistics.fmean(before)
    spread = max(statistics.pstdev(before), abs(mean) * MIN_SPREAD_SHARE, MIN_SPREAD_ABS)
    values = [p.value for p in after]
    recent = statistics.fmean(values)
    peak_point = max(after, key=lambda p: p.value)
    z = (recent - mean) / spread
    threshold = mean + ONSET_SIGMA * spread if z >= 0 else mean - ONSET_SIGMA * spread
    onset = None
    for point in points:
        if (z >= 0 and point.value > threshold) or (z < 0 and point.value < threshold):
            onset = point.at
            break
    return Shift(mean, spread, recent, peak_point.value, z, onset, peak_point.at)


def trend(series: Series) -> float:
    """Least-squares slope per hour over the series (0 for fewer than two points)."""
    points = _finite(series.points)
    if len(points) < 2:
        return 0.0
    ts = [p.t for p in points]
    vs = [p.value for p in points]
    mean_t, mean_v = statistics.fmean(ts), statistics.fmean(vs)
    denom = sum((t - mean_t) ** 2 for t in ts)
    if denom == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(ts, vs, strict=True)) / denom * 3600.0


def departure(series: Series, *, rising: bool, share: float = 0.25, min_points: int = 4) -> datetime | None:
    """When the series left the level it started the window at, for good: the start of the excursion (in the
    ``rising`` direction) that lasts to the window's end. None when it never left, or was already out at the start.

    Unlike :func:`shift`'s onset, the baseline here is the window's first ``share`` only, so a slow rise that began
    long before the alert is dated where it began, not where it became unusual against a baseline it contaminates.
    """
    points = _finite(series.points)
    head = points[: max(min_points, int(len(points) * share))]
    if len(head) < min_points or len(points) <= len(head):
        return None
    values = [p.value for p in head]
    mean = statistics.fmean(values)
    spread = max(statistics.pstdev(values), abs(mean) * MIN_SPREAD_SHARE, MIN_SPREAD_ABS)
    sign = 1.0 if rising else -1.0
    limit = mean + sign * ONSET_SIGMA * spread
    if sign * (points[-1].value - limit) <= 0:
        return None
    start = None
    for point in points[len(head) :]:
        beyond = sign * (point.value - limit) > 0
        if beyond and start is None:
            start = point.at
        elif not beyond:
            start = None
    return start


def level_change(
    series: Series, baseline_until: datetime, recent_from: datetime, *, min_recent: int = 3
) -> Shift | None:
    """The level from ``recent_from`` on against the level before ``baseline_until`` (a gap between them is left
    out, so a slow change that began inside it does not blur the baseline). The onset is where the final excursion
    beyond the baseline's usual range began. None with fewer than two baseline or ``min_recent`` recent points."""
    points = _finite(series.points)
    cut, recent_cut = baseline_until.timestamp(), recent_from.timestamp()
    before = [p.value for p in points if p.t < cut]
    recent = [p for p in points if p.t >= recent_cut]
    if len(before) < 2 or len(recent) < max(1, min_recent):
        return None
    mean = statistics.fmean(before)
    spread = max(statistics.pstdev(before), abs(mean) * MIN_SPREAD_SHARE, MIN_SPREAD_ABS)
    level = statistics.fmean(p.value for p in recent)
    z = (level - mean) / spread
    limit = mean + (ONSET_SIGMA if z >= 0 else -ONSET_SIGMA) * spread
    onset = None
    for point in points:
        if point.t < cut:
            continue
        beyond = point.value > limit if z >= 0 else point.value < limit
        if beyond and onset is None:
            onset = point.at
        elif not beyond:
            onset = None
    peak = max(recent, key=lambda p: p.value if z >= 0 else -p.value)
    return Shift(mean, spread, level, peak.value, z, onset, peak.at)
