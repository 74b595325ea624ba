"""The log pattern check through Loki's patterns API, for one place: changes judged from complete pattern counts.

Per selector of the place, Loki's pattern ingester answers the patterns of the window before and the window with
their line counts per step (:meth:`triage.log_source.LogSource.patterns`); no line is shipped for that. Patterns are then
judged as the mined templates are (:mod:`triage.pipeline.checks._mining`): new, surged, or began during the window before and
going on. Only the patterns that become findings are read, a few lines each, so their titles show a real line and
their times are exact.

What the counts cannot tell is a new variant of a known message (``pool tank state DEGRADED`` where only ``ONLINE``
was logged): Loki folds the state word into ``<_>``. The lines of the quiet patterns that have a placeholder and
occur in both windows (at most :data:`PROBE_MAX_LINES` lines, :data:`PROBE_PATTERNS` patterns) are therefore read and
mined, and their templates that the window before never logged are reported as new variants.

:func:`pattern_changes` answers None when the patterns API failed or knows no pattern at the place: the caller then
mines the place's lines as without it.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import UTC, datetime

from tools.errors import SourceError
from tools.loki import LogEntry
from triage.log_source import LogSource
from triage.pipeline.checks._log_selectors import clip, template
from triage.pipeline.checks._mining import Change, Template, began, compare, judge, new_variant, prior
from triage.pipeline.checks._patterns import PatternCounts, line_filters, matcher, merge_counts
from triage.pipeline.plan_model import Plan

# the counts' resolution: the two windows in this many steps, never finer than the ingester's 10 s buckets
STEP_POINTS = 120
MIN_STEP_S = 10.0
# lines read to find a pattern's first (or last) real line; the literal filters may also match other patterns
EXAMPLE_LINES = 20
PROBE_MAX_LINES = 200
PROBE_PATTERNS = 4


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _spans(plan: Plan) -> tuple[float, float]:
    """The seconds of the window before and of the window."""
    baseline_s = max(1.0, (plan.window_start - plan.previous_start).total_seconds())
    return baseline_s, max(1.0, (plan.window_end - plan.window_start).total_seconds())


async def pattern_changes(
    loki: LogSource, selectors: list[str], plan: Plan, *, lines_max: int, wanted: int
) -> list[Change] | None:
    """At most ``wanted`` changes of the place whose streams ``selectors`` select (best first, with the new
    variants found in the lines of quiet patterns), or None when the patterns API cannot answer for it."""
    start, window_start, end = plan.previous_start, plan.window_start, plan.window_end
    step_s = max(MIN_STEP_S, math.ceil((end - start).total_seconds() / STEP_POINTS))
    try:
        answers = await asyncio.gather(*(loki.patterns(s, start, end, step_s=step_s) for s in selectors))
    except SourceError:
        return None
    counts = merge_counts(list(zip(selectors, answers, strict=True)), window_start.timestamp())
    if not any(c.count or c.before for c in counts):
        return None
    judged = _judge(counts, plan)
    judged.sort(key=lambda j: (j[2] * prior(j[0].pattern), j[0].count), reverse=True)
    found = await asyncio.gather(
        *(_example(loki, c, status, novelty, plan, step_s) for c, status, novelty in judged[:wanted])
    )
    variants = await _probe(loki, counts, plan, lines_max)
    changes = _by_template([c for c in found if c is not None] + variants)
    changes.sort(key=lambda c: (c.score, c.template.count), reverse=True)
    return changes[:wanted]


def _by_template(changes: list[Change]) -> list[Change]:
    """One change per template, as mining has them: patterns whose lines mask to one template (``msg="Found new
    image"`` and ``msg="Creating /app"`` are both ``msg=<str>``) are one finding told by its earliest line."""
    groups: dict[str, list[Change]] = {}
    for change in changes:
        groups.setdefault(change.template.key, []).append(change)
    out = []
    for group in groups.values():
        group.sort(key=lambda c: c.template.first.ts_ns if c.template.first else 0)
        base = group[0]
        if len(group) > 1:
            lasts = [c.template.last for c in group if c.template.last is not None]
            item = replace(
                base.template,
                count=sum(c.template.count for c in group),
                before=sum(c.template.before for c in group),
                last=max(lasts, key=lambda e: e.ts_ns) if lasts else base.template.last,
            )
            base = replace(
                base, template=item, novelty=max(c.novelty for c in group), prior=max(c.prior for c in group)
            )
        out.append(base)
    return out


def _judge(counts: list[PatternCounts], plan: Plan) -> list[tuple[PatternCounts, str, float]]:
    """The patterns that changed, with their status and novelty (before the wording prior)."""
    baseline_s, current_s = _spans(plan)
    ratio = current_s / baseline_s
    earliest = min((c.first_before_s for c in counts if c.first_before_s is not None), default=None)
    # a message is quiet before it began only while the streams logged something else: measure from their first line
    logging_from_ns = None if earliest is None else int(max(plan.previous_start.timestamp(), earliest) * 1e9)
    out = []
    for c in counts:
        if not c.count or not line_filters(c.pattern):
            continue
        variants = 1 if c.before else 0
        first_before_ns = None if c.first_before_s is None else c.first_before_s * 1_000_000_000
        result = judge(c.count, c.before, c.count, c.before, variants, ratio) or began(
            first_before_ns, c.count, logging_from_ns, baseline_s
        )
        if result is not None:
            out.append((c, *result))
    return out


async def _lines(
    loki: LogSource, c: PatternCounts, start: datetime, end: datetime, limit: int, *, forward: bool
) -> list[LogEntry]:
    """The pattern's lines in ``[start, end]`` (oldest first when ``forward``), from every selector that had it."""
    filters = " ".join(line_filters(c.pattern))
    results = await asyncio.gather(
        *(
            loki.query_range(f"{s} {filters}", start, end, limit=limit, direction="forward" if forward else "backward")
            for s in c.selectors
        )
    )
    entries = sorted((e for r in results for e in r.entries), key=lambda e: e.ts_ns, reverse=not forward)
    shaped = matcher(c.pattern)
    return [e for e in entries if shaped.search(e.line)] or entries


async def _example(
    loki: LogSource, c: PatternCounts, status: str, novelty: float, plan: Plan, step_s: float
) -> Change | None:
    """The change with the pattern's first real line (of the window, or of the window before for a slow burn)
    and its last one in the window."""
    burning = status.startswith("began")
    lower = plan.previous_start if burning else plan.window_start
    first_s = c.first_before_s if burning else c.first_s
    start = lower if first_s is None else max(lower, _at(first_s - step_s))
    firsts, lasts = await asyncio.gather(
        _lines(loki, c, start, plan.window_end, EXAMPLE_LINES, forward=True),
        _lines(loki, c, plan.window_start, plan.window_end, EXAMPLE_LINES, forward=False),
    )
    if not firsts:
        return None
    first = firsts[0]
    item = Template(
        key=template(first.line) or c.pattern,
        cluster=0,
        count=c.count,
        before=c.before,
        first=first,
        last=lasts[0] if lasts else first,
        sample=clip(first.line),
        first_before=first if burning else None,
    )
    return Change(item, status, novelty, prior(first.line), c.pattern)


async def _probe(loki: LogSource, counts: list[PatternCounts], plan: Plan, lines_max: int) -> list[Change]:
    """New variants in the lines of the quiet patterns that have a placeholder and occur in both windows."""
    quiet = [
        c
        for c in counts
        if c.has_placeholder
        and c.before
        and c.count
        and c.before + c.count <= PROBE_MAX_LINES
        and line_filters(c.pattern)
    ]
    quiet.sort(key=lambda c: (-prior(c.pattern), c.before + c.count))
    chosen = quiet[:PROBE_PATTERNS]
    limit = min(lines_max, 2 * PROBE_MAX_LINES)
    read = await asyncio.gather(
        *(_lines(loki, c, plan.previous_start, plan.window_end, limit, forward=False) for c in chosen)
    )
    baseline_s, current_s = _spans(plan)
    split_ns = int(plan.window_start.timestamp() * 1e9)
    out: list[Change] = []
    for c, entries in zip(chosen, read, strict=True):
        now = [e for e in entries if e.ts_ns >= split_ns]
        before = [e for e in entries if e.ts_ns < split_ns]
        for change in compare(now, before, current_span_s=current_s, baseline_span_s=baseline_s):
            if change.template.before:
                continue
            status, novelty = new_variant(change.template.count)
            out.append(replace(change, status=status, novelty=novelty, cluster_template=c.pattern))
    return out
