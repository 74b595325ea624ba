"""Alert signal check: the alert's own query over the window — when it crossed, its worst value, its trend — and,
for a Grafana rule that could not be evaluated, why.

The query is the one that fired: ``g0.expr`` of a Prometheus generator URL, or the first data-source query of the
Grafana rule (found by the rule UID). The series matching the alert's labels is picked (the one with the most
labels in common), and compared before vs after the start. The worst value follows the rule's comparison (see
:mod:`triage.pipeline.checks._condition`): the peak of a "greater than" rule, the low point of a "less than" one. A rule
whose query is not PromQL (Flux, SQL, LogQL) is not sent to Prometheus: a note says so. Grafana's
``DatasourceError``/``DatasourceNoData`` alerts get the rule's health and last error (kind ``datasource``), which is
usually the whole explanation.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timedelta

from reports.models import Evidence
from tools.errors import SourceError
from tools.grafana import AlertRule
from tools.numbers import duration_s
from tools.prometheus import PrometheusClient
from tools.types import Point, Series
from triage.evidence_facts import facts_data
from triage.pipeline.checks._breakdown import Part, breakdown_query, distinguishing, dominant, measured_side, movers
from triage.pipeline.checks._condition import (
    Condition,
    crossed_at,
    describe_worst,
    grafana_condition,
    promql_condition,
    worst_point,
)
from triage.pipeline.checks._rules import (
    PROMQL,
    first_query,
    is_datasource_alert,
    language_name,
    query_language,
    rule_health,
)
from triage.pipeline.checks._stats import ONSET_SIGMA, Shift, departure, shift, trend
from triage.pipeline.checks.check_context import CheckContext, CheckFailed, describe_error, evidence_id
from triage.pipeline.checks.result import CheckResult
from triage.pipeline.checks.spec import CheckSpec
from triage.pipeline.ranking import saturate

NAME = "alert_signal"
RECENT_MIN = 5
Z_HALF = 3.0
# a query that only returns samples while its condition holds (``x > 0.9``) has no baseline: its presence is it
CONDITION_ONLY_SCORE = 0.3
NOTE_SCORE = 0.05
SIGNAL_WEIGHT = 0.6
BREAKDOWN_RECENT_MIN = 15
DOMINANT_SCORE = 0.6


def best_series(series: list[Series], labels: dict[str, str], condition: Condition | None = None) -> Series | None:
    """The series sharing most label values with the alert (ties: the worst value the way the rule fires)."""
    if not series:
        return None
    rule = condition or Condition("above")

    def key(item: Series) -> tuple[int, float]:
        common = sum(1 for k, v in item.labels.items() if labels.get(k) == v)
        worst = max((rule.badness(v) for v in item.values if math.isfinite(v)), default=float("-inf"))
        return common, worst

    return max(series, key=key)


async def _rule(ctx: CheckContext) -> AlertRule | None:
    grafana = ctx.deps.grafana
    if grafana is None or not ctx.plan.rule_uid:
        return None
    if ctx.plan.expr and not is_datasource_alert(ctx.alert):
        return None  # the generator URL already gave the query
    return await ctx.rule()


def _skipped(ctx: CheckContext, rule: AlertRule, language: str, query_text: str) -> Evidence:
    query = first_query(rule)
    source = query.datasource_uid if query is not None else "unknown"
    ref_id = query.ref_id if query is not None else "?"
    return Evidence(
        id=evidence_id("sig", "skipped", rule.uid),
        source="grafana",
        kind="note",
        title=f"The rule's query {ref_id} is {language_name(language)} (data source {source}), not PromQL: "
        "its signal is not re-run",
        detail="only PromQL queries are evaluated against Prometheus; " + query_text[:200],
        score=NOTE_SCORE,
        at=ctx.alert.starts_at,
        ref=query_text[:300] or None,
    )


def _rule_query(ctx: CheckContext, rule: AlertRule) -> tuple[str | None, Evidence | None]:
    """The rule's PromQL, or a note saying why the rule's query is not run against Prometheus."""
    query = first_query(rule)
    if query is None:
        return None, None
    language = query_language(query)
    if language == PROMQL and query.expr:
        return query.expr, None
    text = query.expr or str(query.model.get("query") or query.model.get("rawSql") or "")
    return None, _skipped(ctx, rule, language, text)


def rule_condition(promql: str, rule: AlertRule | None) -> Condition | None:
    """How the alert fires: the comparison in its PromQL, else the Grafana rule's threshold on that query."""
    found = promql_condition(promql)
    if found is not None or rule is None:
        return found
    query = first_query(rule)
    return grafana_condition(rule, query.ref_id) if query is not None else None


async def _health(ctx: CheckContext, rule: AlertRule | None) -> list[Evidence]:
    grafana = ctx.deps.grafana
    name = ctx.plan.rule_name or (rule.title if rule is not None else None)
    if grafana is None or not name or not is_datasource_alert(ctx.alert):
        return []
    return await rule_health(ctx.alert, grafana, name, rule)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _onset(points: list[Point], measured: Shift, condition: Condition | None) -> datetime | None:
    """First point beyond the baseline's usual range the way the rule fires (the way the level moved otherwise)."""
    if condition is None or condition.kind not in ("above", "below"):
        return measured.onset
    sign = 1.0 if condition.kind == "above" else -1.0
    if (measured.z >= 0) == (sign > 0):
        return measured.onset
    limit = measured.baseline_mean + sign * ONSET_SIGMA * measured.baseline_std
    return next((p.at for p in points if math.isfinite(p.value) and sign * (p.value - limit) > 0), None)


async def _signal(
    ctx: CheckContext,
    prometheus: PrometheusClient,
    promql: str,
    condition: Condition | None,
    pending_s: float | None = None,
) -> list[Evidence]:
    # ``x > 0.8`` returns samples only while it holds: its measure ``x`` shows the baseline and when it began moving
    measure = measured_side(promql)
    result = await prometheus.query_range(measure or promql, ctx.plan.window_start, ctx.plan.window_end)
    if measure is not None and not result.series:
        result = await prometheus.query_range(promql, ctx.plan.window_start, ctx.plan.window_end)
    series = best_series(result.series, ctx.alert.labels, condition)
    if series is None or not series.values:
        return [
            Evidence(
                id=evidence_id("sig", "nodata", promql),
                source="prometheus",
                kind="alert_signal",
                title="The alert's query returns no data in the window (missing target or exporter?)",
                detail=promql[:300],
                score=0.5,
                at=ctx.alert.starts_at,
                ref=promql,
            )
        ]
    # the labels that tell the alert's series from the query's others (which mount, which disk)
    keys = distinguishing(result.series) if len(result.series) > 1 else []
    shown = [f"{k}={series.labels[k]}" for k in keys if k in series.labels][:4]
    which = f" ({', '.join(shown)})" if shown else ""
    split = ctx.alert.starts_at - timedelta(minutes=RECENT_MIN)
    measured = shift(series, split)
    slope = trend(series)
    direction = "rising" if slope > 0 else "falling" if slope < 0 else "flat"
    first = series.points[0]
    recent = [p for p in series.points if p.t >= split.timestamp()] if measured is not None else series.points
    worst = worst_point(recent, condition) or worst_point(series.points, condition) or first
    crossed = crossed_at(series.points, condition, worst)
    if measured is None:
        title = f"Alert query{which} true since {first.at:%H:%M} UTC, {describe_worst(worst.value, condition)}"
        score, at, detail = CONDITION_ONLY_SCORE, first.at, f"trend {direction} ({_fmt(slope)}/h)"
        onset, rising = first.at, True
    else:
        title = (
            f"Alert query{which} went from {_fmt(measured.baseline_mean)} to {_fmt(measured.recent_mean)} "
            f"({measured.z:+.1f}σ), {describe_worst(worst.value, condition)}"
        )
        # the signal says the alert is real and when it began; as a cause it only restates the alert
        score = saturate(abs(measured.z), Z_HALF) * SIGNAL_WEIGHT
        at = crossed or _onset(series.points, measured, condition) or ctx.alert.starts_at
        rising = (
            condition.kind != "below"
            if condition is not None and condition.kind in ("above", "below")
            else measured.z >= 0
        )
        began = departure(series, rising=rising)
        onset = min(began, at) if began is not None else at
        crossing = "its threshold" if crossed is not None else "its usual range"
        detail = f"crossed {crossing} at {at:%H:%M} UTC; trend {direction} ({_fmt(slope)}/h)"
        if onset < at:
            detail += f"; began moving at {onset:%H:%M} UTC"
    signal = Evidence(
        id=evidence_id("sig", "query", promql),
        source="prometheus",
        kind="alert_signal",
        title=title,
        detail=detail,
        at=at,
        score=score,
        ref=promql,
        series=[(p.t, p.value) for p in series.points][-240:],
        data={
            "trend_per_h": slope,
            "labels": dict(list(series.labels.items())[:20]),
            "worst": worst.value,
            "worst_at": worst.at.isoformat(),
            "fires": condition.kind if condition is not None else None,
            "thresholds": list(condition.thresholds) if condition is not None else [],
            **facts_data(
                # when the rule's expression began moving: ranking measures proximity from it
                onset=onset.timestamp(),
                # how long the condition had to hold before the rule fired (its ``for``), when known
                pending_s=pending_s,
            ),
        },
    )
    if measured is None:
        return [signal]
    return [signal, *await _breakdown(ctx, prometheus, promql, rising, at)]


async def _breakdown(
    ctx: CheckContext, prometheus: PrometheusClient, promql: str, rising: bool, at: datetime
) -> list[Evidence]:
    """The series of the query's aggregated input that carry most of its change (which client, disk, database),
    or, when none moved, the one that holds most of it."""
    query = breakdown_query(promql)
    if query is None or query.replace(" ", "") == promql.replace(" ", ""):
        return []
    plan = ctx.plan
    baseline_start = plan.previous_start
    try:
        result = await prometheus.query_range(query, baseline_start, plan.window_end)
    except SourceError as exc:
        ctx.note_failure(f"{NAME}:breakdown", exc)
        return []
    recent_from = ctx.alert.starts_at - timedelta(minutes=BREAKDOWN_RECENT_MIN)
    parts = [p for p in movers(result.series, plan.window_start, recent_from, rising=rising) if p.labels]
    if parts:
        return [_part(ctx, query, part, at) for part in parts]
    found = dominant(result.series) if rising else None
    if found is None:
        return []
    labels, value, total, share = found
    which = ", ".join(f"{k}={v}" for k, v in labels.items())
    return [
        Evidence(
            id=evidence_id("sig", "part", query, which),
            source="prometheus",
            kind="breakdown",
            title=f"Alert query by {which}: {_fmt(value)} of {_fmt(total)} ({share:.0%} of the total)",
            detail=f"the rule's aggregated input, series by series, at the end of the window: {query[:200]}",
            at=at,
            score=DOMINANT_SCORE * share,
            ref=query,
            data={"labels": labels, "share": round(share, 3)},
        )
    ]


def _part(ctx: CheckContext, query: str, part: Part, at: datetime) -> Evidence:
    which = ", ".join(f"{k}={v}" for k, v in part.labels.items())
    measured = part.measured
    direction = "rose" if measured.recent_mean >= measured.baseline_mean else "fell"
    return Evidence(
        id=evidence_id("sig", "part", query, which),
        source="prometheus",
        kind="breakdown",
        title=f"Alert query by {which}: {direction} from {_fmt(measured.baseline_mean)} to "
        f"{_fmt(measured.recent_mean)} ({measured.z:+.1f}σ), {part.share:.0%} of the change",
        detail=f"the rule's aggregated input, series by series: {query[:200]}",
        at=measured.onset or at,
        score=saturate(abs(measured.z), Z_HALF) * (0.6 + 0.4 * part.share),
        ref=query,
        data={"labels": part.labels, "share": round(part.share, 3), "z": round(measured.z, 2)},
    )


async def run(ctx: CheckContext) -> CheckResult:
    """The alert's own query over the window (onset, worst value, size of the change, trend), and for a Grafana rule
    that could not be evaluated, its health and last error."""
    started = time.perf_counter()
    try:
        rule = await _rule(ctx)
    except Exception as exc:
        if ctx.plan.expr is None and not ctx.plan.rule_name:
            raise
        ctx.note_failure(f"{NAME}:grafana", exc, (time.perf_counter() - started) * 1000)
        rule = None
    promql, note = ctx.plan.expr, None
    if promql is None and rule is not None:
        promql, note = _rule_query(ctx, rule)
    prometheus = ctx.deps.prometheus
    pending_s = await _pending_s(ctx, rule)
    parts = {
        "grafana": _health(ctx, rule),
        "prometheus": _signal(ctx, prometheus, promql, rule_condition(promql, rule), pending_s)
        if prometheus is not None and promql
        else _none(),
    }
    results = await asyncio.gather(*parts.values(), return_exceptions=True)
    evidence = [note] if note is not None else []
    failures: list[BaseException] = []
    for name, result in zip(parts, results, strict=True):
        if isinstance(result, Exception):
            failures.append(result)
            ctx.note_failure(f"{NAME}:{name}", result)
        elif isinstance(result, BaseException):
            raise result
        else:
            evidence.extend(result)
    if failures and not evidence:
        ctx.partial_failures.pop(f"{NAME}:grafana", None)
        ctx.partial_failures.pop(f"{NAME}:prometheus", None)
        if len(failures) == 1:
            raise failures[0]
        raise CheckFailed("; ".join(describe_error(f) for f in failures))
    return CheckResult(tuple(evidence))


async def _pending_s(ctx: CheckContext, rule: AlertRule | None) -> float | None:
    """How long the rule's condition must hold before it fires (a Grafana rule's ``for``), when the rule is known."""
    if rule is None:
        try:
            rule = await ctx.rule()  # shared with the other checks: no second request; None without a rule UID
        except SourceError:
            return None
    return duration_s(rule.for_) if rule is not None else None


async def _none() -> list[Evidence]:
    return []


CHECK = CheckSpec(NAME, run, sources=("prometheus", "grafana"))
