"""The alert's own query, broken down by its labels: which series (client, database, mount …) moved most.

A rule usually aggregates (``sum(rate(x[5m])) > 100``), so its single series hides where the change is. The
breakdown query is the input of the rule's first aggregation (left side first), which keeps every label; each of its
series is compared with its level in the window before, and the series that carry most of the change in the
direction the rule fires are named with the labels that tell them apart. When nothing moved (the aggregate was already
high), the series holding most of the total is named instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import promql_parser

from tools.types import Series
from triage.pipeline.checks._stats import Shift, level_change

MAX_SERIES = 200
MIN_SHARE = 0.2
# a part must carry this many times its even share of the change (1/n of n parts)
CONCENTRATED = 1.5
MIN_Z = 3.0
MAX_ITEMS = 2
DOMINANT_SHARE = 0.5
# labels every series of one target shares, which say nothing about which part moved
_COMMON = frozenset({"__name__", "job", "instance"})


def breakdown_query(promql: str) -> str | None:
    """The input of the first aggregation in ``promql`` (left side first), or None when nothing aggregates."""
    try:
        tree = promql_parser.parse(promql)
    except Exception:  # the parser raises its own error types for queries it cannot read
        return None
    found = _first_aggregation(tree)
    return str(found.expr) if found is not None else None


def query_metrics(promql: str | None) -> frozenset[str]:
    """Metric names the query selects (its symptoms: other checks need not report them again)."""
    if not promql:
        return frozenset()
    try:
        tree = promql_parser.parse(promql)
    except Exception:  # the parser raises its own error types for queries it cannot read
        return frozenset()
    names: set[str] = set()

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(str(node.name))
        return True

    promql_parser.walk(tree, pre_visit=visit)
    return frozenset(names)


_COMPARISONS = frozenset({">", ">=", "<", "<=", "==", "!="})


def measured_side(promql: str) -> str | None:
    """The left side of the query's top-level comparison (``rate(x[5m])`` of ``rate(x[5m]) > 0.8``): the measure the
    rule compares, which returns samples before the condition held too. None when the query compares nothing at its
    top level (or with ``bool``, which already returns every sample)."""
    try:
        tree = promql_parser.parse(promql)
    except Exception:  # the parser raises its own error types for queries it cannot read
        return None
    while isinstance(tree, promql_parser.ParenExpr):
        tree = tree.expr
    if not isinstance(tree, promql_parser.BinaryExpr) or str(tree.op) not in _COMPARISONS:
        return None
    if tree.modifier is not None and tree.modifier.return_bool:
        return None
    if isinstance(tree.rhs, promql_parser.NumberLiteral):
        return str(tree.lhs)
    return None


def _first_aggregation(node: object) -> promql_parser.AggregateExpr | None:
    if isinstance(node, promql_parser.AggregateExpr):
        return node
    children: list[object] = []
    if isinstance(node, promql_parser.BinaryExpr):
        children = [node.lhs, node.rhs]
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        children = [node.expr]
    elif isinstance(node, promql_parser.Call):
        children = list(node.args)
    for child in children:
        found = _first_aggregation(child)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Part:
    """One series of the breakdown: the labels that set it apart, its shift and its share of the total change."""

    labels: dict[str, str]
    measured: Shift
    share: float


def distinguishing(series: list[Series]) -> list[str]:
    """Label names whose values differ between ``series`` (the ones that say which part is which)."""
    names = {k for s in series for k in s.labels} - _COMMON
    return sorted(n for n in names if len({s.labels.get(n) for s in series}) > 1)


def movers(series: list[Series], baseline_until: datetime, recent_from: datetime, *, rising: bool) -> list[Part]:
    """The series carrying most of the change in the rule's direction (``rising``: it fires above a threshold),
    the level from ``recent_from`` on against the level before ``baseline_until``."""
    measured = [
        (s, m)
        for s in series[:MAX_SERIES]
        if (m := level_change(s, baseline_until, recent_from, min_recent=2)) is not None
    ]
    if len(measured) < 2:
        return []
    sign = 1.0 if rising else -1.0
    deltas = [max(0.0, sign * (m.recent_mean - m.baseline_mean)) for _, m in measured]
    total = sum(deltas)
    if total <= 0:
        return []
    keys = distinguishing([s for s, _ in measured])
    parts = [
        Part({k: s.labels[k] for k in keys if k in s.labels}, m, delta / total)
        for (s, m), delta in zip(measured, deltas, strict=True)
        # a part only says something when the change is concentrated in it, not spread evenly (every CPU)
        if delta > 0 and delta / total >= max(MIN_SHARE, CONCENTRATED / len(measured)) and sign * m.z >= MIN_Z
    ]
    parts.sort(key=lambda p: p.share, reverse=True)
    return parts[:MAX_ITEMS]


def dominant(series: list[Series]) -> tuple[dict[str, str], float, float, float] | None:
    """The series holding most of the total at the latest time (labels, its value, the total, its share), when one
    holds more than :data:`DOMINANT_SHARE` of it: which part the aggregate is made of even when nothing moved."""
    latest = [(s, s.points[-1].value) for s in series[:MAX_SERIES] if s.points and s.points[-1].value > 0]
    if len(latest) < 2:
        return None
    total = sum(v for _, v in latest if math.isfinite(v))
    top, value = max(latest, key=lambda item: item[1])
    if total <= 0 or not math.isfinite(value) or value / total <= DOMINANT_SHARE:
        return None
    keys = distinguishing([s for s, _ in latest])
    labels = {k: top.labels[k] for k in keys if k in top.labels}
    return (labels, value, total, value / total) if labels else None
