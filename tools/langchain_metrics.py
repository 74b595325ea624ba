"""Read-only LangChain tools over Prometheus, Loki and Grafana (see :func:`tools.langchain_tools.build_tools`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from langchain_core.tools import BaseTool
from pydantic import Field, field_validator

from tools.grafana import GrafanaClient
from tools.langchain_base import Clock, ToolArgs, WindowArgs, make_tool
from tools.loki import LokiClient
from tools.prometheus import PrometheusClient, QueryResult
from tools.render import clip, duration, fit, labels, number, when
from tools.types import Series

QUERY_CHARS = 4000


class PromQueryArgs(ToolArgs):
    """Arguments of prometheus_query."""

    query: str = Field(min_length=1, max_length=QUERY_CHARS, description="PromQL expression to evaluate.")
    at: datetime | None = Field(None, description="Evaluation time as ISO 8601; default now. UTC if no zone.")

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class PromRangeArgs(WindowArgs):
    """Arguments of prometheus_range_summary."""

    query: str = Field(min_length=1, max_length=QUERY_CHARS, description="PromQL expression to evaluate over time.")


class RuleFilterArgs(ToolArgs):
    """Arguments of the alert-rule listings."""

    name_contains: str | None = Field(
        None, max_length=200, description="Only rules whose name contains this (case-insensitive)."
    )
    state: Literal["any", "firing", "pending", "inactive"] = Field("any", description="Only rules in this state.")


class LabelValuesArgs(WindowArgs):
    """Arguments of prometheus_label_values."""

    label: str = Field(min_length=1, max_length=200, description="Label name, e.g. `instance` or `job`.")
    match: str | None = Field(
        None, max_length=QUERY_CHARS, description='Optional series selector to restrict the values, e.g. {job="node"}.'
    )
    limit: int = Field(100, ge=1, le=1000, description="Most values to return.")


class LokiQueryArgs(WindowArgs):
    """Arguments of loki_query."""

    query: str = Field(
        min_length=1,
        max_length=QUERY_CHARS,
        description='LogQL: a log query like {job="nginx"} |= "error", or a metric query like '
        'sum by (host) (count_over_time({job="nginx"} |= "error" [5m])).',
    )
    limit: int = Field(50, ge=1, le=500, description="Most log lines to return (newest first).")


class AnnotationArgs(WindowArgs):
    """Arguments of grafana_annotations."""

    lookback_minutes: int = Field(1440, ge=1, le=7 * 24 * 60, description="How far back from `end`, in minutes.")
    tags: list[str] = Field(
        default_factory=list, max_length=10, description="Only annotations carrying all these tags."
    )
    dashboard_uid: str | None = Field(None, max_length=200, description="Only annotations of this dashboard.")
    limit: int = Field(30, ge=1, le=200, description="Most annotations to return (newest first).")


class DashboardArgs(ToolArgs):
    """Arguments of grafana_dashboard."""

    uid: str = Field(min_length=1, max_length=200, description="Dashboard UID (the part after /d/ in its URL).")

    @field_validator("uid")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


def _summary(series: Series) -> str:
    values = series.values
    if not values:
        return f"{labels(series.labels)} no finite samples"
    first, last = values[0], values[-1]
    avg = sum(values) / len(values)
    return (
        f"{labels(series.labels)} first={number(first)} last={number(last)} min={number(min(values))} "
        f"avg={number(avg)} max={number(max(values))} points={len(series.points)}"
    )


def _result_header(kind: str, result: QueryResult) -> str:
    header = f"prometheus {kind} ({result.result_type}): {len(result.series)} series"
    if result.truncated:
        header += f" of {result.total_series} (series limit reached)"
    if result.step_s:
        header += f", step {number(result.step_s)}s"
    if result.warnings:
        header += "; warnings: " + clip("; ".join(result.warnings), 300)
    return header


def prometheus_tools(client: PrometheusClient, *, budget: int, clock: Clock) -> list[BaseTool]:
    """``prometheus_query``, ``prometheus_range_summary``, ``prometheus_alert_rules``, ``prometheus_label_values``."""

    async def query(args: PromQueryArgs) -> str:
        result = await client.query(args.query, args.at)
        if result.result_type == "string":
            return f"prometheus instant query (string): {clip(result.text or '')}"
        lines = [f"{labels(s.labels)} {number(s.last.value)} @ {when(s.last.t)}" for s in result.series if s.last]
        narrow = "add label matchers, or aggregate with sum by (label) / topk(10, ...)"
        return fit(_result_header("instant query", result), lines, budget_chars=budget, narrow=narrow)

    async def range_summary(args: PromRangeArgs) -> str:
        start, end = args.window(clock)
        result = await client.query_range(args.query, start, end)
        header = _result_header("range", result) + f", {when(start)} to {when(end)}"
        narrow = "add label matchers, aggregate with sum by (label), or use topk(10, ...)"
        return fit(header, [_summary(s) for s in result.series], budget_chars=budget, narrow=narrow)

    async def alert_rules(args: RuleFilterArgs) -> str:
        lines: list[str] = []
        for group in await client.rules("alert"):
            for rule in group.rules:
                if args.name_contains and args.name_contains.lower() not in rule.name.lower():
                    continue
                if args.state != "any" and rule.state != args.state:
                    continue
                lines.append(
                    f"{rule.name} [{rule.state}] health={rule.health} group={group.name} for={duration(rule.duration_s)} "
                    f"query={clip(rule.query, 200)}"
                    + (f" last_error={clip(rule.last_error, 150)}" if rule.last_error else "")
                )
                lines += [
                    f"  - {a.state} since {when(a.active_at)} value={number(a.value)} {labels(a.labels)}"
                    for a in rule.alerts[:5]
                ]
        return fit(
            f"prometheus alerting rules: {sum(1 for x in lines if not x.startswith('  '))}",
            lines,
            budget_chars=budget,
            narrow="filter with name_contains or state",
        )

    async def label_values(args: LabelValuesArgs) -> str:
        start, end = args.window(clock)
        match = [args.match] if args.match else []
        values = await client.label_values(args.label, match, start, end, limit=args.limit)
        header = f"prometheus values of label {args.label}: {len(values)}" + (
            " (limit reached)" if len(values) >= args.limit else ""
        )
        return fit(header, [clip(v, 200) for v in values], budget_chars=budget, narrow="pass a `match` selector")

    return [
        make_tool(
            "prometheus_query",
            "Evaluate a PromQL instant query on Prometheus and list each resulting series with its labels and value. "
            "Use for current values (is the target up, how full is the disk now). Read-only.",
            PromQueryArgs,
            query,
        ),
        make_tool(
            "prometheus_range_summary",
            "Evaluate a PromQL expression over a time window and summarise each series as first/last/min/avg/max, "
            "so you can see spikes and trends without raw samples. Read-only.",
            PromRangeArgs,
            range_summary,
        ),
        make_tool(
            "prometheus_alert_rules",
            "List Prometheus alerting rules with state (firing/pending/inactive), health, query and active alerts.",
            RuleFilterArgs,
            alert_rules,
        ),
        make_tool(
            "prometheus_label_values",
            "List the values of one Prometheus label (e.g. every `instance` of a job) to find the right series.",
            LabelValuesArgs,
            label_values,
        ),
    ]


def loki_tools(client: LokiClient, *, budget: int, clock: Clock) -> list[BaseTool]:
    """``loki_query``: log lines (newest first, grouped by stream) or a metric query summary."""

    async def query(args: LokiQueryArgs) -> str:
        start, end = args.window(clock)
        result = await client.query_range(args.query, start, end, limit=args.limit)
        span = f"{when(start)} to {when(end)}"
        if result.result_type == "matrix":
            narrow = "aggregate with sum by (label) or add stream matchers"
            return fit(
                f"loki metric query: {len(result.series)} series, {span}",
                [_summary(s) for s in result.series],
                budget_chars=budget,
                narrow=narrow,
            )
        keys = {tuple(sorted(s.labels.items())): i + 1 for i, s in enumerate(result.streams)}
        streams = [f"[{i}] {labels(dict(k))}" for k, i in keys.items()]
        entries = [
            f"[{keys[tuple(sorted(e.labels.items()))]}] {when(e.at)} {clip(e.line, 300)}" for e in result.entries
        ]
        header = f"loki: {len(entries)} line(s) from {len(streams)} stream(s), newest first, {span}"
        if result.limit_reached:
            header += f"; limit {result.limit} reached, older lines in the window not shown"
        narrow = 'add line filters (|= "error"), more stream matchers, or a shorter lookback_minutes'
        return fit(header, [*streams, *entries], budget_chars=budget, narrow=narrow)

    return [
        make_tool(
            "loki_query",
            "Run a LogQL query on Loki over a time window. Log queries return matching lines newest first with "
            "their stream labels; metric queries (count_over_time, rate) return per-series summaries. Read-only.",
            LokiQueryArgs,
            query,
        )
    ]


def grafana_tools(client: GrafanaClient, *, budget: int, clock: Clock) -> list[BaseTool]:
    """``grafana_alert_rules``, ``grafana_annotations``, ``grafana_dashboard`` (all read-only)."""

    async def alert_rules(args: RuleFilterArgs) -> str:
        lines: list[str] = []
        count = 0
        for rule in await client.rule_states():
            state = rule.state.lower()
            if args.name_contains and args.name_contains.lower() not in rule.name.lower():
                continue
            if args.state != "any" and state != args.state:
                continue
            count += 1
            line = (
                f"{rule.name} [{state}] health={rule.health} folder={rule.folder} group={rule.group} "
                f"for={duration(rule.duration_s)} labels={labels(rule.labels)} query={clip(rule.query, 200)}"
            )
            if rule.last_error:
                line += f" last_error={clip(rule.last_error, 150)}"
            lines.append(line)
            lines += [
                f"  - {a.state} since {when(a.active_at)} value={clip(a.value, 40)} {labels(a.labels)}"
                for a in rule.alerts[:5]
            ]
        return fit(
            f"grafana alert rules: {count}", lines, budget_chars=budget, narrow="filter with name_contains or state"
        )

    async def annotations(args: AnnotationArgs) -> str:
        start, end = args.window(clock)
        found = await client.find_annotations(
            tags=args.tags or None,
            from_ms=int(start.timestamp() * 1000),
            to_ms=int(end.timestamp() * 1000),
            dashboard_uid=args.dashboard_uid,
            limit=args.limit,
        )
        lines = []
        for a in found:
            span = when(a.time_ms / 1000)
            if a.time_end_ms and a.time_end_ms != a.time_ms:
                span += f" to {when(a.time_end_ms / 1000)}"
            where = (
                f" dashboard={a.dashboard_uid}" + (f"/panel {a.panel_id}" if a.panel_id else "")
                if a.dashboard_uid
                else ""
            )
            lines.append(f"#{a.id} {span} tags=[{clip(', '.join(a.tags), 150)}]{where} {clip(a.text, 300)}")
        header = f"grafana annotations: {len(found)}, {when(start)} to {when(end)}"
        return fit(
            header, lines, budget_chars=budget, narrow="pass tags, a dashboard_uid or a shorter lookback_minutes"
        )

    async def dashboard(args: DashboardArgs) -> str:
        found = await client.dashboard(args.uid)
        if found is None:
            return f"grafana: no dashboard with uid {clip(args.uid, 100)!r}"
        header = f"dashboard {clip(found.title, 150)} uid={found.uid} folder={found.folder_title} url={found.url}"
        lines = [
            f"panel {p.id} {clip(p.title, 100)} ({p.type}): " + " | ".join(clip(q, 200) for q in p.queries)
            for p in found.panels
        ]
        return fit(header, lines, budget_chars=budget, narrow="ask about one panel's query with prometheus_query")

    return [
        make_tool(
            "grafana_alert_rules",
            "List Grafana-managed alert rules with their state (firing/pending/inactive), health, labels, query, "
            "last evaluation error and active alert instances.",
            RuleFilterArgs,
            alert_rules,
        ),
        make_tool(
            "grafana_annotations",
            "List Grafana annotations (deploys, maintenance notes, earlier triage reports) in a time window, "
            "optionally by tags or dashboard. Read-only.",
            AnnotationArgs,
            annotations,
        ),
        make_tool(
            "grafana_dashboard",
            "Show a Grafana dashboard's panels and the queries behind them, by dashboard UID.",
            DashboardArgs,
            dashboard,
        ),
    ]
