"""Loki's detected patterns as counts per window, and the LogQL that finds a pattern's real lines.

A pattern from Loki's pattern ingester is a line with its varying tokens replaced by ``<_>``
(``<_> level=error msg="disk <_> failed"``). Its samples are line counts per step over the window before and the
window, so whether it is new, surged or began during the window before can be judged from complete counts
(:func:`triage.pipeline.checks._mining.judge`), however many lines the windows hold.

To show a real line, the pattern's literal words become ``|=`` line filters, each quoted with
:func:`tools.selectors.line_filter`, and the lines that come back are checked against the pattern with a regex of
its literal words in order. LogQL's pattern match filter (``|> "…"``) is not used: it reads any ``<word>`` in the
pattern as a named capture and rejects the query, and pattern text is whatever the logs said.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tools.loki_patterns import PatternSeries
from tools.selectors import line_filter

PLACEHOLDER = "<_>"
# the longest literal words of a pattern that become line filters: enough to single it out, few enough to stay cheap
MAX_FILTERS = 4
MAX_FILTER_CHARS = 200
_WORDS = re.compile(r"\S+")


@dataclass
class PatternCounts:
    """One pattern's lines in the window before and in the window, merged over levels and selectors."""

    pattern: str
    selectors: list[str] = field(default_factory=list)
    before: int = 0
    count: int = 0
    # the earliest step with lines in the window before, and in the window (unix seconds)
    first_before_s: int | None = None
    first_s: int | None = None

    @property
    def has_placeholder(self) -> bool:
        return PLACEHOLDER in self.pattern


def merge_counts(answers: Sequence[tuple[str, list[PatternSeries]]], window_start_s: float) -> list[PatternCounts]:
    """The patterns of every ``(selector, answer)`` summed by pattern text, split at ``window_start_s``."""
    merged: dict[str, PatternCounts] = {}
    for selector, series in answers:
        for item in series:
            counts = merged.setdefault(item.pattern, PatternCounts(item.pattern))
            if selector not in counts.selectors:
                counts.selectors.append(selector)
            for ts, n in item.samples:
                if n <= 0:
                    continue
                if ts < window_start_s:
                    counts.before += n
                    counts.first_before_s = ts if counts.first_before_s is None else min(counts.first_before_s, ts)
                else:
                    counts.count += n
                    counts.first_s = ts if counts.first_s is None else min(counts.first_s, ts)
    return list(merged.values())


def literal_words(pattern: str) -> list[str]:
    """The pattern's literal words (whitespace-separated, placeholders removed), in order."""
    words: list[str] = []
    for part in pattern.split(PLACEHOLDER):
        words.extend(w[:MAX_FILTER_CHARS] for w in _WORDS.findall(part))
    return words


def line_filters(pattern: str) -> list[str]:
    """``|= "…"`` filters on the pattern's longest literal words (in the pattern's order), quoted; empty when the
    pattern has no literal word."""
    words = list(dict.fromkeys(literal_words(pattern)))
    longest = set(sorted(words, key=len, reverse=True)[:MAX_FILTERS])
    return [line_filter("|=", w) for w in words if w in longest]


def matcher(pattern: str) -> re.Pattern[str]:
    """A regex that finds the pattern's literal words in order in a line (what the placeholders stand for, and the
    spacing, are not checked: Loki's tokenizer may have normalised them)."""
    return re.compile(".*?".join(re.escape(w) for w in literal_words(pattern)), re.DOTALL)
