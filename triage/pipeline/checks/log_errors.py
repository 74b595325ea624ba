"""Log pattern check: what the logs of the alert's target and its neighbours started saying around the alert.

For each place of the neighbourhood (the target's service and host streams, the guest's Proxmox node, the storage
server behind a mount, the backup server, declared dependencies) every line of the window and of the window of equal
length before it is read (up to ``TRIAGE_LOG_LINES_MAX`` per query, newest first) and compared by template (see
:mod:`triage.pipeline.checks._mining`): templates that are new, new variants of a known message or surged are findings,
whatever their level. Error and change words only nudge the score. A line that announces a change (a reload, an
upgrade, an OOM kill …) is reported with that change's kind, so it reads as part of the change timeline.

Findings on a neighbour are weighted by its distance and say where they were found ("on node atlas").

When Loki answers its patterns API (``LOKI_PATTERNS``), a place is judged from the pattern counts of both windows
instead and only the lines of its findings are read (:mod:`triage.pipeline.checks._pattern_place`); a place the API cannot
answer for is mined as above.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

from reports.models import Evidence
from tools.errors import SourceError
from tools.loki import LogEntry
from tools.selectors import logql_selector
from triage.evidence_facts import facts, facts_data
from triage.log_source import LogSource
from triage.pipeline.checks._families import as_symptom
from triage.pipeline.checks._log_selectors import HOST_LOG_LABELS, any_of, change_kind, choose_selectors
from triage.pipeline.checks._mining import Change, compare
from triage.pipeline.checks._neighbourhood import Place
from triage.pipeline.checks._pattern_place import pattern_changes
from triage.pipeline.checks._restating import restates
from triage.pipeline.checks._rules import LOGQL
from triage.pipeline.checks.check_context import CheckContext, evidence_id
from triage.pipeline.checks.result import NO_EVIDENCE, CheckResult
from triage.pipeline.checks.spec import CheckSpec
from triage.sources import sources_in

NAME = "log_errors"
TITLE_CHARS = 300
# lines are discrete events: a pattern logged within this long before the start is taken as still going on
ACTIVE_SLACK_S = 120
PER_PLACE = 5
# shorter names match too much text to say a line is about the target
MIN_NAME_CHARS = 3


def place_selectors(available: set[str], ctx: CheckContext, place: Place, guest_name: str | None) -> list[str]:
    """The LogQL selectors of one place: the alert's own service and host streams for the target, the host label
    carrying one of the place's names elsewhere."""
    if place.role == "target":
        return choose_selectors(available, ctx.plan, guest_name, extra_hosts=place.names)
    labels = [n for n in HOST_LOG_LABELS if n in available]
    if not labels or not place.names:
        return []
    return [logql_selector(matchers=[any_of(labels[0], list(place.names), with_port=labels[0] == "instance")])]


async def _read(
    loki: LogSource, selectors: list[str], start: datetime, end: datetime, limit: int
) -> tuple[list[LogEntry], float]:
    """Every line of ``selectors`` in ``[start, end]`` (newest first, ``limit`` per selector) and the seconds the
    lines cover (less than the window when a limit cut it)."""
    results = await asyncio.gather(*(loki.query_range(s, start, end, limit=limit) for s in selectors))
    entries = [e for r in results for e in r.entries]
    covered_from = start
    for result in results:
        if len(result.entries) >= limit and result.entries:
            oldest = min(e.at for e in result.entries)
            covered_from = max(covered_from, oldest)
    return entries, max(1.0, (end - covered_from).total_seconds())


def _title(change: Change, kind: str) -> str:
    item = change.template
    count = f" ({item.count}×)" if item.count > 1 else ""
    if kind != "log_pattern":
        return f"{kind}: {item.sample[:TITLE_CHARS]}{count}" + (
            f" ({change.status})" if change.status != "new pattern" else ""
        )
    return f"{item.count}× {item.sample[:TITLE_CHARS]} ({change.status})"


def mentions(line: str, names: tuple[str, ...]) -> bool:
    """Whether ``line`` names one of ``names`` as a whole word (a guest's name, vmid or address on its node)."""
    return any(re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", line, re.IGNORECASE) for name in names if name)


def _evidence(
    ctx: CheckContext,
    place: Place,
    change: Change,
    ref: str,
    sampled: bool,
    target: tuple[str, ...] = (),
    logql: str | None = None,
    others: tuple[Place, ...] = (),
) -> Evidence:
    item = change.template
    first, last = item.first, item.last
    assert first is not None and last is not None
    began = (
        item.first_before
        if item.first_before is not None and item.before and change.status.startswith("began")
        else None
    )
    if began is not None:
        first = began
    kind_name = change_kind(item.sample) or "log_pattern"
    span = (
        f"at {first.at:%H:%M:%S} UTC"
        if f"{first.at:%H:%M:%S}" == f"{last.at:%H:%M:%S}"
        else f"first {first.at:%H:%M:%S}, last {last.at:%H:%M:%S} UTC"
    )
    detail = f"{span}; pattern: {change.cluster_template[:200]}"
    if change.variants:
        detail += f"; {len(change.variants)} more variant(s), e.g. {change.variants[0][:200]}"
    if sampled:
        detail += "; the window has more lines than were read (TRIAGE_LOG_LINES_MAX)"
    # a neighbour's line that names the target (the node logging "update VM 460") is about the target
    about_target = place.role == "target" or bool(target and mentions(item.sample, target))
    found = Evidence(
        id=evidence_id("log", place.name, item.key),
        source="loki",
        kind=kind_name,
        title=place.describe(_title(change, kind_name)),
        detail=detail,
        at=first.at,
        score=change.score * (1.0 if about_target else place.weight),
        ref=ref,
        data={
            **facts_data(count=item.count),
            "before": item.before,
            **facts_data(new=item.before == 0),
            "template": item.key,
            **facts_data(
                place=place.role,
                where=place.name,
                about_target=about_target,
                # the other places a target's line names ("connect ECONNREFUSED 10.0.24.20:5432"): where it comes from
                points_at=_named_places(item.sample, others),
                # a message that began long before and goes on is a condition present at the alert
                persisting=began is not None,
                # a pattern still logging at the alert's start is as close to it as evidence gets
                active_from=first.at.timestamp(),
                active_until=last.at.timestamp() + ACTIVE_SLACK_S,
            ),
        },
    )
    if about_target and restates(item.sample, logql):
        return as_symptom(found, "what the alert itself counts")
    return found


def _named_places(line: str, places: tuple[Place, ...]) -> list[str]:
    return [p.name for p in places if mentions(line, tuple(n for n in p.names if len(n) >= MIN_NAME_CHARS))]


async def _place(
    ctx: CheckContext,
    loki: LogSource,
    available: set[str],
    place: Place,
    guest_name: str | None,
    target: tuple[str, ...] = (),
    logql: str | None = None,
    others: tuple[Place, ...] = (),
) -> list[Evidence]:
    selectors = place_selectors(available, ctx, place, guest_name)
    if not selectors:
        return []
    plan = ctx.plan
    limit = ctx.settings.log_lines_max
    ref = " or ".join(selectors)
    named = target if place.role != "target" else ()
    elsewhere = others if place.role == "target" else ()
    counted = await pattern_changes(loki, selectors, plan, lines_max=limit, wanted=PER_PLACE)
    if counted is not None:
        return [_evidence(ctx, place, c, ref, False, named, logql, elsewhere) for c in counted]
    previous_start = plan.previous_start
    (now, now_s), (before, before_s) = await asyncio.gather(
        _read(loki, selectors, plan.window_start, plan.window_end, limit),
        _read(loki, selectors, previous_start, plan.window_start, limit),
    )
    full_s = (plan.window_end - plan.window_start).total_seconds()
    sampled = now_s < full_s - 1
    changes = compare(
        now,
        before,
        current_span_s=now_s,
        baseline_span_s=before_s,
        baseline_from_ns=int(previous_start.timestamp() * 1e9),
    )
    return [_evidence(ctx, place, c, ref, sampled, named, logql, elsewhere) for c in changes[:PER_PLACE]]


async def _target_names(ctx: CheckContext, places: list[Place]) -> tuple[str, ...]:
    """What the target is called in its neighbours' logs: its names and addresses, and its vmid."""
    names = [n for p in places if p.role == "target" for n in p.names if len(n) >= MIN_NAME_CHARS]
    try:
        match = await ctx.guest()
    except SourceError:
        match = None  # the guest check reports the failed look-up
    vmid = match.guest.vmid if match is not None else ctx.plan.vmid
    if vmid is not None:
        names.append(str(vmid))
    return tuple(dict.fromkeys(names))


async def run(ctx: CheckContext) -> CheckResult:
    """New, new-variant and surged log templates of the target and its neighbours, any level."""
    loki = ctx.deps.logs
    if loki is None:
        return NO_EVIDENCE
    plan = ctx.plan
    previous_start = plan.previous_start
    labels, guest_name, places, logql = await asyncio.gather(
        loki.labels(previous_start, plan.window_end), ctx.guest_name(), ctx.places(), ctx.rule_query(LOGQL)
    )
    available = set(labels)
    target = await _target_names(ctx, places)
    others = tuple(p for p in places if p.role != "target")
    evidence = await ctx.search_places(
        NAME, places, lambda place: _place(ctx, loki, available, place, guest_name, target, logql, others)
    )
    evidence.sort(key=lambda e: (e.score, facts(e).count or 0), reverse=True)
    return CheckResult(tuple(evidence[: ctx.settings.log_patterns_max]))


CHECK = CheckSpec(NAME, run, sources=sources_in("logs"))
