"""Log error check: error-level lines of the alert's service/host around ``starts_at``, grouped into templates.

A template is a line with numbers, ids, hex, addresses, timestamps and quoted strings masked. Templates seen in the
window but not in the window of equal length before it are *new* — the strongest log signal of a fresh failure;
known templates count by how much more often they occur than before.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime

from reports.models import Evidence
from tools.loki import LokiClient
from tools.selectors import line_filter
from triage.checks._logs import Group, clip, group_lines, stream_selectors
from triage.checks.context import CheckContext, evidence_id
from triage.ranking import saturate

NAME = "log_errors"
SOURCES = ("loki",)
ERROR_PATTERN = (
    r"(?i)(\berror\b|\berr\b|level=(error|err|fatal|crit)|\bfatal\b|\bpanic\b|exception|traceback|critical"
    r"|\bfailed\b|failure|refused|timed? ?out|segfault|out of memory)"
)
LINE_LIMIT = 1000
TITLE_CHARS = 160
# lines are discrete events: a pattern logged within this long before the start is taken as still going on
ACTIVE_SLACK_S = 120
MAX_ITEMS = 5


async def _lines(loki: LokiClient, selectors: list[str], start: datetime, end: datetime) -> list[Group]:
    results = await asyncio.gather(
        *(loki.query_range(f"{s} {line_filter('|~', ERROR_PATTERN)}", start, end, limit=LINE_LIMIT) for s in selectors)
    )
    entries = [entry for result in results for entry in result.entries]
    return list(group_lines(entries).values())


def _score(group: Group, before: Group | None) -> float:
    if before is None:
        return 0.4 + 0.55 * saturate(group.count, 5)
    growth = (group.count - before.count) / math.sqrt(before.count + 1)
    return 0.8 * saturate(max(0.0, growth), 4)


async def run(ctx: CheckContext) -> list[Evidence]:
    """Error-level log templates in the window; new ones (absent from the previous window) rank highest."""
    loki = ctx.deps.loki
    if loki is None:
        return []
    plan = ctx.plan
    length = plan.window_end - plan.window_start
    previous_start = plan.window_start - length
    selectors = await stream_selectors(loki, plan, previous_start, plan.window_end, ctx.guest_name())
    if not selectors:
        return []
    current, previous = await asyncio.gather(
        _lines(loki, selectors, plan.window_start, plan.window_end),
        _lines(loki, selectors, previous_start, plan.window_start),
    )
    known = {g.template: g for g in previous}
    evidence: list[Evidence] = []
    for group in current:
        before = known.get(group.template)
        score = _score(group, before)
        first, last = group.first, group.last
        assert first is not None and last is not None
        status = "new pattern" if before is None else f"{before.count} in the previous window"
        evidence.append(
            Evidence(
                id=evidence_id("log", group.template),
                source="loki",
                kind="log_pattern",
                # the example line, not the masked template, reads as what happened; grouping used the template
                title=f"{group.count}× {clip(group.sample, TITLE_CHARS)} ({status})",
                detail=f"first {first.at:%H:%M:%S}, last {last.at:%H:%M:%S}; pattern: {group.template}",
                at=first.at,
                score=min(1.0, score),
                ref=" or ".join(selectors),
                data={
                    "count": group.count,
                    "new": before is None,
                    "template": group.template,
                    # a pattern still logging at the alert's start is as close to it as evidence gets
                    "active_from": first.at.timestamp(),
                    "active_until": last.at.timestamp() + ACTIVE_SLACK_S,
                },
            )
        )
    evidence.sort(key=lambda e: (e.score, e.data["count"]), reverse=True)
    return evidence[:MAX_ITEMS]
