"""Typed results of the Prometheus client (re-exported by :mod:`tools.prometheus`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from tools.types import Series

ResultType = Literal["vector", "matrix", "scalar", "string"]


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The answer to an instant or range query.

    ``series`` holds at most the client's ``max_series``; ``total_series`` is how many the query returned, and
    ``truncated`` says that some were dropped. A scalar is one series without labels; a string is in ``text``.
    """

    query: str
    result_type: ResultType
    series: list[Series]
    total_series: int
    warnings: list[str] = field(default_factory=list)
    step_s: float | None = None
    text: str | None = None

    @property
    def truncated(self) -> bool:
        """Whether series were dropped to keep within the series budget."""
        return self.total_series > len(self.series)


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """An alert instance of an alerting rule, as Prometheus evaluates it now."""

    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    active_at: datetime | None
    value: float | None


@dataclass(frozen=True, slots=True)
class Rule:
    """An alerting or recording rule with its evaluation health."""

    name: str
    type: Literal["alerting", "recording"]
    query: str
    health: str
    last_error: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    state: str | None = None
    duration_s: float = 0.0
    alerts: list[ActiveAlert] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """A rule group from one rule file."""

    name: str
    file: str
    interval_s: float
    rules: list[Rule]


@dataclass(frozen=True, slots=True)
class MetricMetadata:
    """What a metric is, as its exporter declares it (``# TYPE``, ``# HELP``, ``# UNIT``)."""

    metric: str
    type: str
    help: str
    unit: str
