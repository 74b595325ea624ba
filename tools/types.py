"""Result types shared by several clients: time series (Prometheus and Loki metric queries) and time helpers."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tools.errors import SourceMalformedResponse, SourceQueryError

# Points per series a range query may return: enough for a readable graph and a trend, small on the wire.
DEFAULT_MAX_POINTS = 500


@dataclass(frozen=True, slots=True)
class Point:
    """One sample: ``t`` in Unix seconds, ``value`` as a float (NaN and ±Inf kept as such)."""

    t: float
    value: float

    @property
    def at(self) -> datetime:
        """The sample time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.t, UTC)


@dataclass(frozen=True, slots=True)
class Series:
    """One labelled series. An instant-vector element has one point, a range-query series several."""

    labels: dict[str, str]
    points: list[Point] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The metric name (``__name__``), or an empty string when the query dropped it."""
        return self.labels.get("__name__", "")

    @property
    def values(self) -> list[float]:
        """The finite sample values, in time order (NaN and ±Inf left out)."""
        return [p.value for p in self.points if math.isfinite(p.value)]

    @property
    def last(self) -> Point | None:
        """The most recent point, if any."""
        return self.points[-1] if self.points else None


def to_unix(at: datetime) -> float:
    """Unix seconds of an aware datetime; a naive datetime is refused, since guessing its zone shifts evidence."""
    if at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return at.timestamp()


def check_span(start: datetime, end: datetime, *, max_range_s: float, source: str, url: str) -> None:
    """Refuse with SourceQueryError a range that ends before it starts or spans more than ``max_range_s``."""
    span_s = to_unix(end) - to_unix(start)
    if span_s <= 0:
        raise SourceQueryError("the range ends before it starts", source=source, url=url)
    if span_s > max_range_s:
        raise SourceQueryError(
            f"range of {span_s / 3600:.1f}h exceeds the limit of {max_range_s / 3600:.1f}h; narrow the window",
            source=source,
            url=url,
        )


def parse_point(raw: Any, *, source: str, url: str) -> Point:
    """Parse a ``[<unix seconds>, "<value>"]`` pair, the sample format of Prometheus and Loki matrix results."""
    try:
        t, value = raw
        return Point(float(t), float(value))
    except (TypeError, ValueError) as exc:
        raise SourceMalformedResponse(f"bad sample {str(raw)[:60]!r}", source=source, url=url) from exc


def parse_labels(raw: Any, *, source: str, url: str) -> dict[str, str]:
    """Check that ``raw`` is a flat string-to-string label set and return it."""
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise SourceMalformedResponse(f"bad label set {str(raw)[:60]!r}", source=source, url=url)
    return raw


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_rfc3339(raw: str | None) -> datetime | None:
    """Parse an RFC 3339 timestamp as Go writes it (``Z`` suffix, up to nanoseconds); Go's zero time → None."""
    if not raw or raw.startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", raw.replace("Z", "+00:00")))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# Steps a person would pick for a graph; a chosen step is the smallest of these that keeps within the budget.
_NICE_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def choose_step(
    start: datetime, end: datetime, *, max_points: int = DEFAULT_MAX_POINTS, min_step_s: float = 1
) -> float:
    """The smallest readable step (1s, 2s, 5s … 1h … 1d) so that ``[start, end]`` yields at most ``max_points``."""
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    span_s = max(0.0, to_unix(end) - to_unix(start))
    needed = max(min_step_s, span_s / (max_points - 1))
    for step in _NICE_STEPS_S:
        if step >= needed:
            return float(step)
    return float(math.ceil(needed / 86400) * 86400)
