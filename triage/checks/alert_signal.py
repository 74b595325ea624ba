"""Alert signal check: the alert's own query over the window — when it crossed, its peak, its trend.

The query is the one that fired: ``g0.expr`` of a Prometheus generator URL, or the first data-source query of the
Grafana rule (found by the rule UID). The series matching the alert's labels is picked (the one with the most
labels in common), and compared before vs after the start.
"""

from __future__ import annotations

import re
from datetime import timedelta

from reports.models import Evidence
from tools.prometheus import PrometheusClient
from tools.types import Series
from triage.checks._stats import shift, trend
from triage.checks.context import CheckContext, evidence_id
from triage.ranking import saturate

NAME = "alert_signal"
SOURCES = ("prometheus",)
RECENT_MIN = 5
Z_HALF = 3.0
# a query that only returns samples while its condition holds (``x > 0.9``) has no baseline: its presence is it
CONDITION_ONLY_SCORE = 0.3
_LOGQL_RANGE = re.compile(r"_over_time\s*\(\s*\{")


def best_series(series: list[Series], labels: dict[str, str]) -> Series | None:
    """The series sharing most label values with the alert (ties: the highest peak)."""
    if not series:
        return None

    def key(item: Series) -> tuple[int, float]:
        common = sum(1 for k, v in item.labels.items() if labels.get(k) == v)
        return common, max(item.values, default=float("-inf"))

    return max(series, key=key)


async def _query(ctx: CheckContext) -> str | None:
    if ctx.plan.expr:
        return ctx.plan.expr
    grafana = ctx.deps.grafana
    if grafana is None or not ctx.plan.rule_uid:
        return None
    rule = await grafana.alert_rule(ctx.plan.rule_uid)
    if rule is None:
        return None
    for query in rule.data:
        if query.datasource_uid not in ("__expr__", "-100") and query.expr and not looks_like_logql(query.expr):
            return query.expr
    return None


def looks_like_logql(query: str) -> bool:
    """A Grafana rule may query Loki; LogQL starts with a stream selector or wraps one in a range aggregation."""
    text = query.strip()
    return text.startswith("{") or bool(_LOGQL_RANGE.search(text)) or any(op in text for op in ("|=", "|~", '!~ "'))


def _fmt(value: float) -> str:
    return f"{value:.4g}"


async def _signal(ctx: CheckContext, prometheus: PrometheusClient, promql: str) -> list[Evidence]:
    result = await prometheus.query_range(promql, ctx.plan.window_start, ctx.plan.window_end)
    series = best_series(result.series, ctx.alert.labels)
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
    measured = shift(series, ctx.alert.starts_at - timedelta(minutes=RECENT_MIN))
    slope = trend(series)
    direction = "rising" if slope > 0 else "falling" if slope < 0 else "flat"
    first = series.points[0]
    if measured is None:
        title = f"Alert query true since {first.at:%H:%M} UTC, peak {_fmt(max(series.values))}"
        score, at, detail = CONDITION_ONLY_SCORE, first.at, f"trend {direction} ({_fmt(slope)}/h)"
    else:
        title = (
            f"Alert query went from {_fmt(measured.baseline_mean)} to {_fmt(measured.recent_mean)} "
            f"({measured.z:+.1f}σ), peak {_fmt(measured.recent_peak)}"
        )
        score = saturate(abs(measured.z), Z_HALF)
        at = measured.onset or ctx.alert.starts_at
        detail = f"crossed its usual range at {at:%H:%M} UTC; trend {direction} ({_fmt(slope)}/h)"
    return [
        Evidence(
            id=evidence_id("sig", "query", promql),
            source="prometheus",
            kind="alert_signal",
            title=title,
            detail=detail,
            at=at,
            score=score,
            ref=promql,
            series=[(p.t, p.value) for p in series.points][-240:],
            data={"trend_per_h": slope, "labels": dict(list(series.labels.items())[:20])},
        )
    ]


async def run(ctx: CheckContext) -> list[Evidence]:
    """The alert's own query over the window: onset, peak, size of the change and trend."""
    prometheus = ctx.deps.prometheus
    if prometheus is None:
        return []
    promql = await _query(ctx)
    if not promql:
        return []
    return await _signal(ctx, prometheus, promql)
