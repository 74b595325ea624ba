"""Grafana rules in the alert-signal check: DatasourceError/NoData explained by the rule's health and last error,
and rule queries that are not PromQL kept away from Prometheus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.engine import EngineWorld, make_alert
from tools.grafana import AlertRule, RuleQuery
from triage.pipeline.checks import alert_signal
from triage.pipeline.checks._condition import Condition, Kind, grafana_condition, promql_condition
from triage.pipeline.checks._rules import query_language

REFUSED = (
    '[sse.dataQueryError] failed to execute query [A]: Post "http://influxdb:8086/api/v2/query": '
    "dial tcp 10.0.13.40:8086: connect: connection refused"
)
FLUX = 'from(bucket: "ups") |> range(start: -5m) |> filter(fn: (r) => r._field == "battery_runtime")'
DATASOURCE_ERROR = {
    "rulename": "UPS battery runtime low",
    "datasource_uid": "influx-ups",
    "ref_id": "A",
    "grafana_folder": "Infrastructure",
}


class PrometheusLog:
    """A Prometheus that answers every range query with one flat series and remembers the queries."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        self.queries.append(form.get("query", ""))
        start, end = float(form["start"]), float(form["end"])
        values = [[start + i * 60, "1"] for i in range(int((end - start) // 60) + 1)]
        result = [{"metric": {"instance": "db1:9100"}, "values": values}]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": result}})


def generator(expr: str) -> str:
    return f"http://prometheus:9090/graph?g0.expr={quote(expr)}&g0.tab=1"


@pytest.fixture
def prometheus() -> PrometheusLog:
    return PrometheusLog()


@pytest.fixture
async def world(prometheus: PrometheusLog) -> AsyncIterator[EngineWorld]:
    w = EngineWorld(prometheus_transport=httpx.MockTransport(prometheus))
    yield w
    await w.aclose()


def _query(model: dict[str, Any], datasource_uid: str = "ds") -> RuleQuery:
    return RuleQuery.model_validate({"refId": "A", "datasourceUid": datasource_uid, "model": model})


def test_a_rule_query_language_comes_from_its_data_source_type_or_else_its_text() -> None:
    assert query_language(_query({"expr": "rate(http_requests_total[5m]) > 1"})) == "promql"
    assert query_language(_query({"expr": 'sum(count_over_time({job="nginx"} |= "error" [5m]))'})) == "logql"
    assert query_language(_query({"query": FLUX})) == "flux"
    assert query_language(_query({"rawSql": "SELECT now() AS time, count(*) FROM orders"})) == "sql"
    assert query_language(_query({"expr": "SELECT mean(value) FROM cpu WHERE time > now() - 5m"})) == "sql"
    influxql = {"query": "SELECT mean(value) FROM cpu", "datasource": {"type": "influxdb", "uid": "i"}}
    assert query_language(_query(influxql)) == "influxql"
    assert query_language(_query({"expr": "up", "datasource": {"type": "loki", "uid": "l"}})) == "logql"
    assert query_language(_query({"type": "threshold", "expression": "A"}, "__expr__")) == "expression"


def test_a_datasource_error_alert_plans_the_alert_signal_check_from_its_rulename(world: EngineWorld) -> None:
    ctx = world.context(make_alert(DATASOURCE_ERROR, starts_at=world.ago(2), alertname="DatasourceError"))
    assert ctx.plan.rule_name == "UPS battery runtime low"
    assert alert_signal.NAME in ctx.plan.checks


async def test_a_datasource_error_puts_the_rules_last_error_first_and_never_sends_flux_to_prometheus(
    world: EngineWorld, prometheus: PrometheusLog
) -> None:
    world.grafana.add_rule(
        "ups-runtime", "UPS battery runtime low", expr=FLUX, state="error", health="error", last_error=REFUSED
    )
    labels = {**DATASOURCE_ERROR, "__alert_rule_uid__": "ups-runtime"}
    alert = make_alert(labels, starts_at=world.ago(2), alertname="DatasourceError", annotations={"Error": REFUSED})
    items = (await alert_signal.run(world.context(alert))).evidence
    assert prometheus.queries == []
    first = max(items, key=lambda e: e.score)
    assert first.kind == "datasource" and first.source == "grafana"
    assert first.title.startswith(
        "Grafana cannot evaluate rule 'UPS battery runtime low' (query A on data source influx-ups): [sse.dataQueryError]"
    )
    assert "connection refused" in first.title and first.score >= 0.9
    (note,) = [e for e in items if e.kind == "note"]
    assert "is Flux" in note.title and "not PromQL" in note.title and note.score < 0.1


async def test_a_datasource_error_found_by_rulename_alone_still_gets_the_rules_health(
    world: EngineWorld, prometheus: PrometheusLog
) -> None:
    world.grafana.add_rule("ups-runtime", "UPS battery runtime low", expr=FLUX, health="error", last_error=REFUSED)
    world.grafana.add_rule("other", "UPS battery runtime low", folder_uid="lab", folder_title="Lab", health="ok")
    items = (
        await alert_signal.run(
            world.context(make_alert(DATASOURCE_ERROR, starts_at=world.ago(2), alertname="DatasourceError"))
        )
    ).evidence
    assert [e.kind for e in items] == ["datasource"]
    assert "connection refused" in items[0].title
    assert prometheus.queries == []


async def test_a_nodata_alert_says_the_rule_gets_no_data(world: EngineWorld) -> None:
    world.grafana.add_rule(
        "backups-age", "Backup too old", expr="time() - backup_last_success > 86400", health="nodata"
    )
    alert = make_alert(
        {"rulename": "Backup too old", "datasource_uid": "prometheus", "ref_id": "A"},
        starts_at=world.ago(2),
        alertname="DatasourceNoData",
    )
    items = (await alert_signal.run(world.context(alert, world.deps("grafana")))).evidence
    assert [e.title for e in items] == [
        "Grafana rule 'Backup too old' gets no data from its query A on data source prometheus"
    ]
    assert items[0].score >= 0.8


async def test_a_rule_healthy_again_falls_back_to_the_alerts_error_annotation(world: EngineWorld) -> None:
    world.grafana.add_rule("ups-runtime", "UPS battery runtime low", expr=FLUX, health="ok")
    alert = make_alert(
        DATASOURCE_ERROR, starts_at=world.ago(2), alertname="DatasourceError", annotations={"Error": REFUSED}
    )
    items = (await alert_signal.run(world.context(alert, world.deps("grafana")))).evidence
    (item,) = items
    assert item.kind == "datasource" and "connection refused" in item.title
    assert "from the alert's Error annotation" in item.detail


async def test_a_promql_rule_still_runs_its_query_against_prometheus(
    world: EngineWorld, prometheus: PrometheusLog
) -> None:
    world.grafana.add_rule("cpu-high", "HighCPU", expr='avg(rate(node_cpu_seconds_total{mode!="idle"}[5m])) > 0.9')
    alert = make_alert({"__alert_rule_uid__": "cpu-high", "instance": "db1:9100"}, starts_at=world.ago(5))
    items = (await alert_signal.run(world.context(alert))).evidence
    # the comparison's measure first (it has samples before the condition held), then the aggregation's input
    assert prometheus.queries[:2] == [
        'avg(rate(node_cpu_seconds_total{mode!="idle"}[5m]))',
        'rate(node_cpu_seconds_total{mode!="idle"}[5m])',
    ]
    assert [e.kind for e in items][:1] == ["alert_signal"]


async def test_a_sql_rule_gets_a_note_instead_of_a_failed_prometheus_query(
    world: EngineWorld, prometheus: PrometheusLog
) -> None:
    rule = world.grafana.add_rule("orders", "Orders stalled")
    rule["data"][0]["model"] = {"rawSql": "SELECT now() AS time, count(*) FROM orders", "refId": "A"}
    items = (
        await alert_signal.run(world.context(make_alert({"__alert_rule_uid__": "orders"}, starts_at=world.ago(5))))
    ).evidence
    assert prometheus.queries == []
    assert [e.kind for e in items] == ["note"]
    assert items[0].title.startswith("The rule's query A is SQL")


async def test_credentials_in_a_rules_last_error_do_not_reach_the_evidence(world: EngineWorld) -> None:
    leaky = 'Post "http://grafana:s3cr3tpass@influxdb:8086/api/v2/query": dial tcp: connect: connection refused'
    world.grafana.add_rule("ups-runtime", "UPS battery runtime low", expr=FLUX, health="error", last_error=leaky)
    alert = make_alert(DATASOURCE_ERROR, starts_at=world.ago(2), alertname="DatasourceError")
    (item,) = (await alert_signal.run(world.context(alert, world.deps("grafana")))).evidence
    assert "s3cr3tpass" not in item.title and "connection refused" in item.title


@pytest.mark.parametrize(
    ("expr", "fires", "thresholds"),
    [
        ("node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < 0.2", "below", (0.2,)),
        ("x <= 0.2", "below", (0.2,)),
        ("x >= 0.9", "above", (0.9,)),
        ("0.2 > x", "below", (0.2,)),
        ("(x < 0.2)", "below", (0.2,)),
        ('rate(x{path=~"<a|b>"}[5m]) > 3', "above", (3.0,)),
        ("x < 0.2 and on(instance) up == 1", "below", (0.2,)),
        ("x < 0.2 or y < 0.1", "below", ()),
        ("x > y", "above", ()),
        ("time() - backup_last_success > 86400", "above", (86400.0,)),
    ],
)
def test_the_comparison_at_the_top_of_a_promql_expression_says_which_way_the_rule_fires(
    expr: str, fires: Kind, thresholds: tuple[float, ...]
) -> None:
    assert promql_condition(expr) == Condition(fires, thresholds)


@pytest.mark.parametrize(
    "expr",
    [
        "1 - avg(x)",
        "sum by (a) (x > 1) / y",
        "x > bool 0.5",
        'up{job="gone"} == 0',
        "x > 0.9 or y < 0.1",
        "x unless y > 3",
    ],
)
def test_a_promql_expression_without_a_top_level_ordering_comparison_has_no_direction(expr: str) -> None:
    assert promql_condition(expr) is None


def _with_condition(rule: dict[str, Any], model: dict[str, Any]) -> AlertRule:
    rule["data"][1]["model"] = {"refId": "B", **model}
    return AlertRule.model_validate(rule)


@pytest.mark.parametrize(
    ("evaluator", "expected"),
    [
        ({"type": "lt", "params": [0.2]}, Condition("below", (0.2,))),
        ({"type": "gt", "params": [90]}, Condition("above", (90.0,))),
        ({"type": "outside_range", "params": [0.8, 0.2]}, Condition("outside", (0.2, 0.8))),
        ({"type": "within_range", "params": [10, 20]}, Condition("within", (10.0, 20.0))),
    ],
)
def test_a_grafana_threshold_or_classic_condition_on_the_query_says_which_way_the_rule_fires(
    world: EngineWorld, evaluator: dict[str, Any], expected: Condition
) -> None:
    threshold = {"type": "threshold", "expression": "A", "conditions": [{"evaluator": evaluator}]}
    classic = {
        "type": "classic_conditions",
        "conditions": [
            {
                "evaluator": evaluator,
                "query": {"params": ["A"]},
                "reducer": {"type": "last"},
                "operator": {"type": "and"},
            }
        ],
    }
    for model in (threshold, classic):
        rule = _with_condition(world.grafana.add_rule("r", "rule", expr="x"), model)
        assert grafana_condition(rule, "A") == expected, model


def test_a_threshold_behind_a_math_expression_gives_no_direction(world: EngineWorld) -> None:
    rule = world.grafana.add_rule("r", "rule", expr="x")
    rule["data"][1]["model"] = {"refId": "B", "type": "math", "expression": "$A * -1"}
    rule["data"].append(
        {
            "refId": "C",
            "datasourceUid": "__expr__",
            "model": {
                "refId": "C",
                "type": "threshold",
                "expression": "B",
                "conditions": [{"evaluator": {"type": "gt", "params": [0]}}],
            },
        }
    )
    rule["condition"] = "C"
    assert grafana_condition(AlertRule.model_validate(rule), "A") is None


class Falling:
    """A Prometheus whose one series sits at 0.8 and drops to 0.03 at ``drop`` (epoch seconds), then recovers a
    little; ``filtered`` returns only the samples under 0.2, as ``expr < 0.2`` does."""

    def __init__(self, drop: float, *, filtered: bool = False) -> None:
        self.drop = drop
        self.filtered = filtered

    def value(self, t: float) -> float:
        if t < self.drop:
            return 0.8
        return 0.03 if t < self.drop + 180 else 0.1813

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        start, end = float(form["start"]), float(form["end"])
        points = [(start + i * 60, self.value(start + i * 60)) for i in range(int((end - start) // 60) + 1)]
        values = [[t, str(v)] for t, v in points if not self.filtered or v < 0.2]
        result = [{"metric": {"instance": "db1:9100"}, "values": values}]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": result}})


def falling_world(drop_min: float, *, filtered: bool = False) -> EngineWorld:
    now = datetime.now(UTC).replace(microsecond=0)
    drop = (now - timedelta(minutes=drop_min)).timestamp()
    return EngineWorld(now=now, prometheus_transport=httpx.MockTransport(Falling(drop, filtered=filtered)))


async def test_a_less_than_rule_reports_how_low_its_value_fell_and_when_it_crossed() -> None:
    world = falling_world(8, filtered=True)
    try:
        expr = 'node_memory_MemAvailable_bytes{instance="db1:9100"} / node_memory_MemTotal_bytes < 0.2'
        alert = make_alert({"instance": "db1:9100"}, starts_at=world.ago(6), generator_url=generator(expr))
        (item,) = (await alert_signal.run(world.context(alert, world.deps("prometheus")))).evidence
        assert "fell to 0.03 (threshold 0.2)" in item.title, item.title
        assert "0.1813" not in item.title
        assert item.data["worst"] == 0.03 and item.data["fires"] == "below"
    finally:
        await world.aclose()


async def test_a_grafana_lt_threshold_reports_the_low_point_and_when_the_query_fell_under_it() -> None:
    world = falling_world(7)
    try:
        rule = world.grafana.add_rule(
            "mem-low", "Memory low", expr='node_memory_MemAvailable_bytes{instance="db1:9100"}'
        )
        rule["data"][1]["model"]["conditions"] = [{"evaluator": {"type": "lt", "params": [0.2]}}]
        alert = make_alert({"__alert_rule_uid__": "mem-low", "instance": "db1:9100"}, starts_at=world.ago(4))
        (item,) = (await alert_signal.run(world.context(alert, world.deps("prometheus", "grafana")))).evidence
        assert item.title.endswith("fell to 0.03 (threshold 0.2)"), item.title
        assert item.at is not None and abs((item.at - world.ago(7)).total_seconds()) <= 60
        assert item.detail.startswith(f"crossed its threshold at {item.at:%H:%M} UTC")
    finally:
        await world.aclose()


async def test_a_greater_than_rule_still_reports_its_peak(world: EngineWorld) -> None:
    expr = 'avg(rate(node_cpu_seconds_total{mode!="idle"}[5m])) > 0.9'
    alert = make_alert({"instance": "db1:9100"}, starts_at=world.ago(5), generator_url=generator(expr))
    (item,) = (await alert_signal.run(world.context(alert, world.deps("prometheus")))).evidence
    assert "peaked at 1 (threshold 0.9)" in item.title, item.title
