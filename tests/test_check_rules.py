"""Grafana rules in the alert-signal check: DatasourceError/NoData explained by the rule's health and last error,
and rule queries that are not PromQL kept away from Prometheus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.engine import EngineWorld, make_alert
from tools.grafana import RuleQuery
from triage.checks import alert_signal
from triage.checks._rules import query_language
from triage.plan import CHECK_ALERT_SIGNAL

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
    assert CHECK_ALERT_SIGNAL in ctx.plan.checks


async def test_a_datasource_error_puts_the_rules_last_error_first_and_never_sends_flux_to_prometheus(
    world: EngineWorld, prometheus: PrometheusLog
) -> None:
    world.grafana.add_rule(
        "ups-runtime", "UPS battery runtime low", expr=FLUX, state="error", health="error", last_error=REFUSED
    )
    labels = {**DATASOURCE_ERROR, "__alert_rule_uid__": "ups-runtime"}
    alert = make_alert(labels, starts_at=world.ago(2), alertname="DatasourceError", annotations={"Error": REFUSED})
    items = await alert_signal.run(world.context(alert))
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
    items = await alert_signal.run(
        world.context(make_alert(DATASOURCE_ERROR, starts_at=world.ago(2), alertname="DatasourceError"))
    )
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
    items = await alert_signal.run(world.context(alert, world.deps("grafana")))
    assert [e.title for e in items] == [
        "Grafana rule 'Backup too old' gets no data from its query A on data source prometheus"
    ]
    assert items[0].score >= 0.8


async def test_a_rule_healthy_again_falls_back_to_the_alerts_error_annotation(world: EngineWorld) -> None:
    world.grafana.add_rule("ups-runtime", "UPS battery runtime low", expr=FLUX, health="ok")
    alert = make_alert(
        DATASOURCE_ERROR, starts_at=world.ago(2), alertname="DatasourceError", annotations={"Error": REFUSED}
    )
    items = await alert_signal.run(world.context(alert, world.deps("grafana")))
    (item,) = items
    assert item.kind == "datasource" and "connection refused" in item.title
    assert "from the alert's Error annotation" in item.detail


async def test_a_promql_rule_still_runs_its_query_against_prometheus(
    world: EngineWorld, prometheus: PrometheusLog
) -> None:
    world.grafana.add_rule("cpu-high", "HighCPU", expr='avg(rate(node_cpu_seconds_total{mode!="idle"}[5m])) > 0.9')
    alert = make_alert({"__alert_rule_uid__": "cpu-high", "instance": "db1:9100"}, starts_at=world.ago(5))
    items = await alert_signal.run(world.context(alert))
    assert prometheus.queries == ['avg(rate(node_cpu_seconds_total{mode!="idle"}[5m])) > 0.9']
    assert [e.kind for e in items] == ["alert_signal"]


async def test_a_sql_rule_gets_a_note_instead_of_a_failed_prometheus_query(
    world: EngineWorld, prometheus: PrometheusLog
) -> None:
    rule = world.grafana.add_rule("orders", "Orders stalled")
    rule["data"][0]["model"] = {"rawSql": "SELECT now() AS time, count(*) FROM orders", "refId": "A"}
    items = await alert_signal.run(world.context(make_alert({"__alert_rule_uid__": "orders"}, starts_at=world.ago(5))))
    assert prometheus.queries == []
    assert [e.kind for e in items] == ["note"]
    assert items[0].title.startswith("The rule's query A is SQL")


async def test_credentials_in_a_rules_last_error_do_not_reach_the_evidence(world: EngineWorld) -> None:
    leaky = 'Post "http://grafana:s3cr3tpass@influxdb:8086/api/v2/query": dial tcp: connect: connection refused'
    world.grafana.add_rule("ups-runtime", "UPS battery runtime low", expr=FLUX, health="error", last_error=leaky)
    alert = make_alert(DATASOURCE_ERROR, starts_at=world.ago(2), alertname="DatasourceError")
    (item,) = await alert_signal.run(world.context(alert, world.deps("grafana")))
    assert "s3cr3tpass" not in item.title and "connection refused" in item.title
