"""Which way a rule fires: its value above a threshold, below it, outside or inside a range.

The worst value of an alert's query is its maximum only for a "greater than" rule; for ``free_ratio < 0.2`` it is
the minimum. The direction comes from the comparison at the top level of the PromQL expression (``<``, ``<=``,
``>``, ``>=``; ``and``/``unless`` keep their left side, ``or`` counts when both sides agree), or else from the
Grafana rule's threshold or classic-condition evaluator (``gt``, ``lt``, ``within_range``, ``outside_range``) that
reads the queried series.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from tools.grafana import AlertRule, RuleQuery
from tools.types import Point
from triage.pipeline.checks._rules import EXPRESSION_UIDS

Kind = Literal["above", "below", "outside", "within"]

_COMPARISONS = {">": "above", ">=": "above", "<": "below", "<=": "below"}
_FLIPPED: dict[str, Kind] = {"above": "below", "below": "above"}
_SET_OPERATORS = frozenset({"and", "or", "unless"})
_EVALUATORS: dict[str, Kind] = {
    "gt": "above",
    "gte": "above",
    "ge": "above",
    "lt": "below",
    "lte": "below",
    "le": "below",
    "within_range": "within",
    "within_range_included": "within",
    "outside_range": "outside",
    "outside_range_included": "outside",
}
# expressions that pass their input's direction through unchanged (a math expression may invert it)
_PASS_THROUGH = frozenset({"reduce", "resample", "threshold", "classic_conditions"})
_OPEN, _CLOSE = "([{", ")]}"
_QUOTES = "\"'`"
_WORD_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:"
_WORD_CHARS = _WORD_START + "0123456789"
_NUMBER_CHARS = _WORD_CHARS + "."
_BOOL = re.compile(r"bool\b", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    """When the rule fires: ``kind`` and its thresholds (one for above/below, low and high for a range; none when
    the comparison is against another series)."""

    kind: Kind
    thresholds: tuple[float, ...] = ()

    def holds(self, value: float) -> bool | None:
        """Whether ``value`` meets the condition; None when there is no threshold to compare with."""
        if not math.isfinite(value):
            return None
        if self.kind == "above" and len(self.thresholds) == 1:
            return value > self.thresholds[0]
        if self.kind == "below" and len(self.thresholds) == 1:
            return value < self.thresholds[0]
        if len(self.thresholds) == 2:
            low, high = self.thresholds
            return low < value < high if self.kind == "within" else value < low or value > high
        return None

    def badness(self, value: float) -> float:
        """Larger is worse: how far ``value`` went the way the rule fires."""
        if self.kind == "below":
            return -value
        if self.kind in ("outside", "within") and len(self.thresholds) == 2:
            low, high = self.thresholds
            beyond = max(low - value, value - high)
            return beyond if self.kind == "outside" else -beyond
        return value


def worst_point(points: Sequence[Point], condition: Condition | None) -> Point | None:
    """The point furthest the way the rule fires (the highest one when the direction is unknown)."""
    finite = [p for p in points if math.isfinite(p.value)]
    if not finite:
        return None
    rule = condition or Condition("above")
    return max(finite, key=lambda p: rule.badness(p.value))


def crossed_at(points: Sequence[Point], condition: Condition | None, worst: Point) -> datetime | None:
    """Start of the run of points meeting the threshold that holds the worst point; None without a threshold or
    when the worst point does not meet it."""
    if condition is None or not condition.holds(worst.value):
        return None
    index = next((i for i, p in enumerate(points) if p is worst), None)
    if index is None:
        return None
    while index > 0 and condition.holds(points[index - 1].value):
        index -= 1
    return points[index].at


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def describe_worst(value: float, condition: Condition | None) -> str:
    """``peaked at 0.97 (threshold 0.9)``, ``fell to 0.03 (threshold 0.2)``, ``peaked at 0.95 (outside 0.2–0.8)``."""
    shown = _fmt(value)
    if condition is None or condition.kind == "above":
        limit = f" (threshold {_fmt(condition.thresholds[0])})" if condition and condition.thresholds else ""
        return f"peaked at {shown}{limit}"
    if condition.kind == "below":
        return f"fell to {shown}" + (f" (threshold {_fmt(condition.thresholds[0])})" if condition.thresholds else "")
    if len(condition.thresholds) != 2:
        return f"reached {shown}"
    low, high = condition.thresholds
    span = f"{_fmt(low)}–{_fmt(high)}"
    if condition.kind == "within":
        return f"reached {shown} ({'inside' if condition.holds(value) else 'fires inside'} {span})"
    if value > high:
        return f"peaked at {shown} (outside {span})"
    if value < low:
        return f"fell to {shown} (outside {span})"
    return f"reached {shown} (fires outside {span})"


# --- PromQL ------------------------------------------------------------------------------------------------------


def _skip_string(expr: str, start: int) -> int:
    """Index just past the string literal opening at ``start`` (backticks are raw, the others take escapes)."""
    quote, i = expr[start], start + 1
    while i < len(expr):
        if expr[i] == "\\" and quote != "`":
            i += 2
            continue
        if expr[i] == quote:
            return i + 1
        i += 1
    return i


def _operators(expr: str) -> list[tuple[int, str]]:
    """Positions of the comparison and set operators outside brackets, strings and comments."""
    found: list[tuple[int, str]] = []
    depth, i = 0, 0
    while i < len(expr):
        char = expr[i]
        if char in _QUOTES:
            i = _skip_string(expr, i)
            continue
        if char == "#":
            end = expr.find("\n", i)
            i = len(expr) if end < 0 else end
            continue
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0 and char in "<>=!":
            pair = expr[i : i + 2]
            if pair in ("==", "!=", ">=", "<="):
                found.append((i, pair))
                i += 2
                continue
            if char in "<>":
                found.append((i, char))
        elif char in _WORD_START or char.isdigit():
            chars = _WORD_CHARS if char in _WORD_START else _NUMBER_CHARS
            end = i
            while end < len(expr) and expr[end] in chars:
                end += 1
            word = expr[i:end]
            if depth == 0 and word.lower() in _SET_OPERATORS:
                found.append((i, word.lower()))
            i = end
            continue
        i += 1
    return found


def _unwrap(expr: str) -> str:
    """``(x < 1)`` → ``x < 1``: parentheses around the whole expression do not change it."""
    text = expr.strip()
    while text.startswith("(") and text.endswith(")"):
        depth, i = 0, 0
        while i < len(text):
            if text[i] in _QUOTES:
                i = _skip_string(text, i)
                continue
            depth += 1 if text[i] in _OPEN else -1 if text[i] in _CLOSE else 0
            if depth == 0:
                break
            i += 1
        if i != len(text) - 1:
            return text
        text = text[1:-1].strip()
    return text


def _number(text: str) -> float | None:
    value = _unwrap(text)
    try:
        return float(int(value, 16)) if value.lower().startswith(("0x", "-0x", "+0x")) else float(value)
    except ValueError:
        return None


def _comparison(expr: str) -> Condition | None:
    """The condition of an expression without top-level set operators."""
    text = _unwrap(expr)
    operators = _operators(text)
    if not operators:
        return None
    # comparisons are left-associative: the last one at the top level is applied last and filters the result
    at, op = operators[-1]
    if op not in _COMPARISONS:
        return None
    left, right = text[:at], text[at + len(op) :].lstrip()
    if _BOOL.match(right):
        return None  # ``x > bool 1`` returns 0/1, not the compared value
    kind: Kind = "above" if _COMPARISONS[op] == "above" else "below"
    threshold = _number(right)
    if threshold is not None:
        return Condition(kind, (threshold,))
    threshold = _number(left)
    if threshold is not None:  # ``0.2 > x``: the series is on the right
        return Condition(_FLIPPED[kind], (threshold,))
    return Condition(kind)


def _split(expr: str, operators: list[tuple[int, str]], names: frozenset[str]) -> list[str]:
    parts, start = [], 0
    for at, op in operators:
        if op in names:
            parts.append(expr[start:at])
            start = at + len(op)
    parts.append(expr[start:])
    return parts


def promql_condition(expr: str) -> Condition | None:
    """The direction (and threshold) of the comparison at the top level of a PromQL expression, if any."""
    text = _unwrap(expr)
    operators = _operators(text)
    # ``or`` binds loosest, then ``and``/``unless``, whose result is their left side's series
    alternatives = [
        _split(part, _operators(part), frozenset({"and", "unless"}))[0]
        for part in _split(text, operators, frozenset({"or"}))
    ]
    conditions = [_comparison(part) for part in alternatives]
    first = conditions[0]
    if first is None or any(c is None or c.kind != first.kind for c in conditions):
        return None
    if all(c == first for c in conditions):
        return first
    return Condition(first.kind)


# --- Grafana -----------------------------------------------------------------------------------------------------


def _input_ref(query: RuleQuery) -> str:
    value = query.model.get("expression")
    return value.strip().lstrip("$") if isinstance(value, str) else ""


def _reads(queries: dict[str, RuleQuery], expression: RuleQuery, ref_id: str) -> bool:
    """Whether ``expression`` evaluates the query ``ref_id`` through expressions that keep its direction."""
    seen: set[str] = set()
    current: RuleQuery | None = expression
    while current is not None and current.ref_id not in seen:
        seen.add(current.ref_id)
        if current.model.get("type") not in _PASS_THROUGH:
            return False
        source = _input_ref(current)
        if source == ref_id:
            return True
        current = queries.get(source)
        if current is not None and current.datasource_uid not in EXPRESSION_UIDS:
            return False
    return False


def _evaluator(condition: Any) -> Condition | None:
    evaluator = condition.get("evaluator") if isinstance(condition, dict) else None
    if not isinstance(evaluator, dict):
        return None
    kind = _EVALUATORS.get(str(evaluator.get("type", "")).lower())
    if kind is None:
        return None
    params = evaluator.get("params")
    values = [float(p) for p in params if isinstance(p, int | float)] if isinstance(params, list) else []
    if kind in ("within", "outside"):
        return Condition(kind, tuple(sorted(values[:2]))) if len(values) >= 2 else None
    return Condition(kind, tuple(values[:1]))


def _classic_ref(condition: Any) -> str:
    query = condition.get("query") if isinstance(condition, dict) else None
    params = query.get("params") if isinstance(query, dict) else None
    return str(params[0]).lstrip("$") if isinstance(params, list) and params else ""


def grafana_condition(rule: AlertRule, ref_id: str) -> Condition | None:
    """The direction of the rule's threshold or classic condition on its query ``ref_id`` (the rule's condition
    expression first)."""
    queries = {q.ref_id: q for q in rule.data}
    expressions = sorted(
        (q for q in rule.data if q.datasource_uid in EXPRESSION_UIDS), key=lambda q: q.ref_id != rule.condition
    )
    for expression in expressions:
        conditions = expression.model.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            continue
        kind = expression.model.get("type")
        if kind == "threshold" and _reads(queries, expression, ref_id):
            found = _evaluator(conditions[0])
        elif kind == "classic_conditions":
            found = next(
                (
                    c
                    for c in map(_evaluator, (x for x in conditions if _reads_classic(queries, x, ref_id)))
                    if c is not None
                ),
                None,
            )
        else:
            continue
        if found is not None:
            return found
    return None


def _reads_classic(queries: dict[str, RuleQuery], condition: Any, ref_id: str) -> bool:
    source = _classic_ref(condition)
    if source == ref_id:
        return True
    query = queries.get(source)
    return query is not None and query.datasource_uid in EXPRESSION_UIDS and _reads(queries, query, ref_id)
