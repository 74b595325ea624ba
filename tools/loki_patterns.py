"""Loki's patterns API (``GET /loki/api/v1/patterns``, Loki 3's pattern ingester): its answer and its availability.

The pattern ingester clusters every pushed line with Drain and keeps, per stream selector, each pattern (the line
with its varying tokens replaced by ``<_>``) and its line counts per step. The answer is::

    {"status": "success", "data": [{"pattern": "<_> level=error msg=<_>", "level": "error",
                                    "samples": [[1733356800, 12], [1733356810, 3]]}]}

``samples`` are ``[unix seconds, count]`` pairs (integers). ``level`` is written since Loki 3.6 (patterns are kept
per detected level there, so one pattern may come once per level); earlier 3.x versions send only ``pattern`` and
``samples``. A Loki without the pattern ingester (``pattern_ingester.enabled: false``, the default, or Loki 2)
answers 404; a selector the querier cannot use is a 400.

Whether a Loki serves patterns is remembered per process (:class:`Availability`): once it answered 404, 400, 405 or
timed out, it is not asked again for :data:`UNAVAILABLE_FOR_S` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tools.errors import SourceError, SourceMalformedResponse

PatternsMode = Literal["auto", "on", "off"]
PATTERNS_MODES: tuple[PatternsMode, ...] = ("auto", "on", "off")
UNAVAILABLE_FOR_S = 600.0
# statuses that say "this Loki has no patterns API" (or cannot answer this form of query), not "try again"
UNAVAILABLE_STATUSES = frozenset({400, 404, 405, 501})


@dataclass(frozen=True, slots=True)
class PatternSeries:
    """One detected pattern with its line counts: ``samples`` are ``(unix seconds, lines)`` in time order."""

    pattern: str
    samples: tuple[tuple[int, int], ...]
    level: str | None = None

    @property
    def total(self) -> int:
        """All lines of the pattern in the answer's range."""
        return sum(count for _, count in self.samples)


class PatternsUnavailable(SourceError):
    """This Loki does not answer the patterns API (disabled, too old, refused the query, timed out, or turned off)."""


def parse_patterns(data: Any, *, source: str, url: str) -> list[PatternSeries]:
    """The ``data`` list of a patterns answer; ``null`` or missing means no patterns."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise SourceMalformedResponse("patterns result is not a list", source=source, url=url)
    out = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("pattern"), str):
            raise SourceMalformedResponse("pattern without a pattern string", source=source, url=url)
        raw = item.get("samples") or []
        if not isinstance(raw, list):
            raise SourceMalformedResponse("pattern samples are not a list", source=source, url=url)
        samples = []
        for pair in raw:
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            ):
                raise SourceMalformedResponse(f"bad pattern sample {str(pair)[:40]!r}", source=source, url=url)
            samples.append((pair[0], pair[1]))
        level = item.get("level")
        out.append(
            PatternSeries(item["pattern"], tuple(sorted(samples)), level if isinstance(level, str) and level else None)
        )
    return out


class Availability:
    """Which Lokis (by base URL and tenant) did not answer the patterns API lately, per process.

    ``clock`` is monotonic seconds; :meth:`forget` clears the memory (a restart does the same).
    """

    def __init__(self, *, ttl_s: float = UNAVAILABLE_FOR_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._until: dict[str, float] = {}

    def available(self, key: str) -> bool:
        until = self._until.get(key)
        if until is None:
            return True
        if self.clock() >= until:
            del self._until[key]
            return True
        return False

    def mark_unavailable(self, key: str) -> None:
        self._until[key] = self.clock() + self.ttl_s

    def forget(self) -> None:
        self._until.clear()


AVAILABILITY = Availability()
