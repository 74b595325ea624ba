"""The Prometheus client against a real Prometheus loaded with backfilled series and rules (and respx for faults)."""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from tests.support.prometheus import PrometheusWorld, SyntheticSeries
from tools import errors
from tools.prometheus import PrometheusClient, choose_step
from tools.selectors import Matcher, selector

NOW = datetime.now(UTC).replace(microsecond=0)
START = NOW - timedelta(hours=3)
HOSTILE = ['"} or vector(1) #', '|= "x"', "two\nlines", "back\\slash", "ünï ✓", ".*", "a|b"]
RULES = [
    {
        "name": "node",
        "rules": [
            {
                "alert": "HighLoad",
                "expr": "node_load1 > 5",
                "for": "0s",
                "labels": {"severity": "warning"},
                "annotations": {"summary": "load is {{ $value }}"},
            },
            {"record": "job:node_load1:max", "expr": "max by (job) (node_load1)"},
        ],
    }
]


def load(offset_s: float) -> float:
    return offset_s / 100


def world_series() -> list[SyntheticSeries]:
    series = [
        SyntheticSeries.from_fn(
            "node_load1", {"instance": "pve1:9100", "job": "node"}, START, NOW - timedelta(seconds=30), fn=load
        ),
        SyntheticSeries.constant("node_load1", {"instance": "pve2:9100", "job": "node"}, 0.5, START, NOW),
        SyntheticSeries.from_fn("sre_requests_total", {"code": "500"}, START, NOW, fn=lambda t: t / 15 * 10, step_s=15),
    ]
    series += [
        SyntheticSeries.constant("sre_hostile", {"value": v}, float(i), NOW - timedelta(hours=1), NOW)
        for i, v in enumerate(HOSTILE)
    ]
    return series


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusWorld]:
    # NOW is fixed when the module is imported, which in a full run can be minutes before this fixture starts: a
    # lookback longer than the run keeps the last samples visible to the live rule evaluation.
    with PrometheusWorld(
        Path(tmp_path_factory.mktemp("prometheus")), world_series(), rules=RULES, scrape_self=True, lookback_delta="2h"
    ) as running:
        yield running


@pytest.fixture
async def client(world: PrometheusWorld) -> AsyncIterator[PrometheusClient]:
    async with PrometheusClient(world.url, timeout_s=5, backoff_s=0) as opened:
        yield opened


async def test_instant_query_returns_the_backfilled_value(client: PrometheusClient) -> None:
    at = START + timedelta(seconds=600)
    result = await client.query(selector("node_load1", {"instance": "pve1:9100"}), at=at)
    assert result.result_type == "vector"
    [series] = result.series
    assert series.labels == {"__name__": "node_load1", "instance": "pve1:9100", "job": "node"}
    assert series.points[0].value == pytest.approx(6.0)
    assert series.points[0].t == pytest.approx(at.timestamp())


async def test_range_query_follows_the_series_within_the_point_budget(client: PrometheusClient) -> None:
    end = START + timedelta(hours=1)
    result = await client.query_range(selector("node_load1", {"instance": "pve1:9100"}), START, end)
    assert result.result_type == "matrix"
    assert result.step_s == 10
    points = result.series[0].points
    assert len(points) == 361
    for point in points:
        # the last sample at or before each step (samples every 15 s)
        offset = point.t - START.timestamp()
        assert point.value == pytest.approx(load(offset // 15 * 15))


async def test_long_range_gets_a_coarser_step_and_stays_within_the_budget(client: PrometheusClient) -> None:
    result = await client.query_range("node_load1", START, NOW, max_points=100)
    assert result.step_s == 120
    assert all(len(s.points) <= 100 for s in result.series)
    assert len(result.series) == 2


async def test_an_explicit_step_too_fine_for_the_budget_is_raised(client: PrometheusClient) -> None:
    result = await client.query_range("node_load1", START, NOW, step_s=1)
    assert result.step_s is not None and result.step_s >= (NOW - START).total_seconds() / 499
    assert all(len(s.points) <= client.max_points for s in result.series)


async def test_a_range_beyond_the_limit_is_refused_without_asking_prometheus(world: PrometheusWorld) -> None:
    async with PrometheusClient(world.url, max_range_s=3600) as client:
        with pytest.raises(errors.SourceQueryError, match="exceeds the limit"):
            await client.query_range("up", NOW - timedelta(hours=2), NOW)
        with pytest.raises(errors.SourceQueryError, match="ends before it starts"):
            await client.query_range("up", NOW, NOW - timedelta(minutes=1))
        assert client.stats.requests == 0


async def test_counter_rate_is_computed_by_prometheus(client: PrometheusClient) -> None:
    result = await client.query_range(
        "rate(sre_requests_total[1m])", NOW - timedelta(minutes=30), NOW - timedelta(minutes=5)
    )
    assert result.series[0].values
    assert all(v == pytest.approx(10 / 15) for v in result.series[0].values)


async def test_series_beyond_the_budget_are_counted_not_kept(world: PrometheusWorld) -> None:
    async with PrometheusClient(world.url, max_series=1) as client:
        result = await client.query("node_load1", at=NOW - timedelta(minutes=1))
    assert len(result.series) == 1
    assert result.total_series == 2
    assert result.truncated


async def test_scalar_and_string_results(client: PrometheusClient) -> None:
    scalar = await client.query("scalar(vector(3))")
    assert scalar.result_type == "scalar"
    assert scalar.series[0].points[0].value == 3
    text = await client.query('"hello"')
    assert (text.result_type, text.text) == ("string", "hello")


async def test_bad_promql_is_a_query_error_that_is_not_retried(client: PrometheusClient) -> None:
    with pytest.raises(errors.SourceQueryError, match="bad_data") as caught:
        await client.query("sum(node_load1")
    assert "/api/v1/query" in str(caught.value)
    assert client.stats.retries == 0


@pytest.mark.parametrize("value", HOSTILE)
async def test_hostile_label_values_select_exactly_their_series(client: PrometheusClient, value: str) -> None:
    exact = await client.query(selector("sre_hostile", {"value": value}))
    regex = await client.query(selector("sre_hostile", matchers=[Matcher.literal_regex("value", value)]))
    for result in (exact, regex):
        assert [s.labels["value"] for s in result.series] == [value]
        assert result.series[0].points[0].value == HOSTILE.index(value)


async def test_series_and_label_lookups(client: PrometheusClient) -> None:
    match = [selector("node_load1", {"job": "node"})]
    series = await client.series(match, START, NOW)
    assert sorted(s["instance"] for s in series) == ["pve1:9100", "pve2:9100"]
    assert await client.label_values("instance", match, START, NOW) == ["pve1:9100", "pve2:9100"]
    assert {"instance", "job", "__name__"} <= set(await client.label_names(match, START, NOW))
    assert len(await client.series(match, START, NOW, limit=1)) == 1


async def test_label_values_refuses_a_name_that_would_change_the_path(client: PrometheusClient) -> None:
    with pytest.raises(ValueError, match="not a valid label name"):
        await client.label_values("../../admin/tsdb")


async def test_rules_report_the_firing_alert_and_the_recording_rule(client: PrometheusClient) -> None:
    [group] = await client.rules()
    assert group.name == "node"
    assert group.interval_s == 1
    alerting, recording = group.rules
    assert (alerting.name, alerting.type, alerting.health, alerting.state) == ("HighLoad", "alerting", "ok", "firing")
    assert alerting.query == "node_load1 > 5"
    assert alerting.labels == {"severity": "warning"}
    [alert] = alerting.alerts
    assert alert.labels["instance"] == "pve1:9100"
    assert alert.state == "firing"
    assert alert.active_at is not None and alert.active_at.tzinfo is not None
    assert alert.value is not None and alert.value > 5
    assert alert.annotations["summary"].startswith("load is ")
    assert (recording.name, recording.type) == ("job:node_load1:max", "recording")


async def test_rules_filter_by_type_and_find_one_by_alertname(client: PrometheusClient) -> None:
    [group] = await client.rules("record")
    assert [r.type for r in group.rules] == ["recording"]
    rule = await client.alerting_rule("HighLoad")
    assert rule is not None and rule.type == "alerting"
    assert await client.alerting_rule("NoSuchAlert") is None


async def test_metadata_describes_scraped_metrics(client: PrometheusClient) -> None:
    deadline = time.monotonic() + 15
    while True:
        found = await client.metadata("prometheus_build_info")
        if found or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert found
    assert found[0].type == "gauge"
    assert "build" in found[0].help.lower()


@given(
    span_s=st.floats(min_value=1, max_value=10 * 365 * 86400),
    budget=st.integers(min_value=2, max_value=11_000),
)
def test_choose_step_never_exceeds_the_point_budget(span_s: float, budget: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    step = choose_step(start, start + timedelta(seconds=span_s), max_points=budget)
    assert math.floor(span_s / step) + 1 <= budget


# --- wire-level behaviour and faults (respx) -------------------------------------------------------------------

BASE = "http://prometheus.test"


@respx.mock(base_url=BASE)
async def test_queries_are_posted_with_a_server_side_timeout_and_bearer_token(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("/api/v1/query").respond(
        200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
    )
    client = PrometheusClient(BASE, token="prom-token-abcdef", timeout_s=10)
    await client.query("up")
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer prom-token-abcdef"
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form == {"query": "up", "timeout": "9000ms"}


@respx.mock(base_url=BASE)
async def test_basic_auth_is_sent_when_no_token_is_given(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get("/api/v1/labels").respond(200, json={"status": "success", "data": []})
    await PrometheusClient(BASE, username="grafana", password="pw-123456").label_names()
    expected = base64.b64encode(b"grafana:pw-123456").decode()
    assert route.calls.last.request.headers["authorization"] == f"Basic {expected}"


@respx.mock(base_url=BASE)
async def test_unavailable_is_retried_but_a_query_timeout_is_not(respx_mock: respx.MockRouter) -> None:
    unavailable = {"status": "error", "errorType": "unavailable", "error": "TSDB not ready"}
    ok = {"status": "success", "data": {"resultType": "vector", "result": []}}
    route = respx_mock.post("/api/v1/query")
    route.side_effect = [httpx.Response(503, json=unavailable), httpx.Response(200, json=ok)]
    client = PrometheusClient(BASE, backoff_s=0)
    assert (await client.query("up")).series == []
    assert client.stats.retries == 1

    timeout = {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}
    route.side_effect = None
    route.return_value = httpx.Response(503, json=timeout)
    with pytest.raises(errors.SourceQueryError, match="timeout: query timed out"):
        await client.query("up")
    assert client.stats.retries == 1


@respx.mock(base_url=BASE)
async def test_status_error_in_a_200_answer_is_a_query_error(respx_mock: respx.MockRouter) -> None:
    respx_mock.post("/api/v1/query").respond(200, json={"status": "error", "errorType": "execution", "error": "boom"})
    with pytest.raises(errors.SourceQueryError, match="execution: boom"):
        await PrometheusClient(BASE).query("up")


@pytest.mark.parametrize(
    "body",
    [
        {"status": "success", "data": {"result": []}},
        {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": ["x", "1"]}]}},
        {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"a": 1}, "values": []}]}},
        {"data": []},
        [],
    ],
)
@respx.mock(base_url=BASE)
async def test_answers_of_the_wrong_shape_are_malformed(body: object, respx_mock: respx.MockRouter) -> None:
    respx_mock.post("/api/v1/query").respond(200, json=body)
    with pytest.raises(errors.SourceMalformedResponse):
        await PrometheusClient(BASE).query("up")


async def test_a_world_dated_years_back_is_queryable(tmp_path: Path) -> None:
    # scenario suites pin their data to fixed dates; retention and block loading must keep it
    at = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    old = SyntheticSeries.constant("sre_old", {"job": "x"}, 42, at - timedelta(hours=1), at)
    with PrometheusWorld(tmp_path, [old]) as world:
        async with PrometheusClient(world.url) as client:
            result = await client.query_range("sre_old", at - timedelta(minutes=30), at)
    assert result.series[0].values == [42.0] * len(result.series[0].points)
    assert len(result.series[0].points) == 361
