"""Whether a target stopped reporting: the time of its latest sample, compared with the end of the window.

When a host goes down its series end, but a range query still returns values for a while after: an instant selector
looks back up to five minutes for the last sample, and ``rate()`` extrapolates from whatever samples remain in its
range. Those values are not measurements, and comparing them with the baseline invents shifts ("CPU rose +6σ" of a
host that is off). ``timestamp()`` of a raw selector gives, at each step, the time of the sample actually used, so
its largest value is the target's last sample.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tools.prometheus_models import QueryResult
from tools.types import Series

# a live target's latest sample can lag the window end by a step and a scrape interval; allow several of them
MIN_GRACE_S = 120.0
GRACE_INTERVALS = 3


@dataclass(frozen=True)
class Liveness:
    last_sample: datetime
    interval_s: float | None
    stopped: bool


def liveness_query(selector: str) -> str:
    """PromQL giving, at each step, the time (epoch seconds) of the newest sample of ``selector``."""
    return f"max(timestamp({selector}))"


def liveness(result: QueryResult, window_end: datetime) -> Liveness | None:
    """The target's last sample and whether it stopped before ``window_end``; None when it has no sample at all."""
    stamps = sorted({p.value for s in result.series for p in s.points if math.isfinite(p.value)})
    if not stamps:
        return None
    gaps = [b - a for a, b in itertools.pairwise(stamps) if b > a]
    interval = statistics.median(gaps) if gaps else None
    grace = max(MIN_GRACE_S, GRACE_INTERVALS * (interval or 0.0) + (result.step_s or 0.0))
    last = stamps[-1]
    return Liveness(datetime.fromtimestamp(last, UTC), interval, window_end.timestamp() - last > grace)


def until(series: Series, end: datetime) -> Series:
    """``series`` without the points computed after ``end`` (the last real sample of its target)."""
    cut = end.timestamp()
    return replace(series, points=[p for p in series.points if p.t <= cut])
