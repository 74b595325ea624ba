"""Saturation and alert-signal checks against a real Prometheus loaded with backfilled series."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from tests.support.engine import EngineWorld, make_alert
from tests.support.prometheus import PrometheusWorld, SyntheticSeries
from tools.errors import SourceError
from triage.pipeline.checks import alert_signal, saturation

pytestmark = pytest.mark.slow

HOURS = 2
SHIFT_MIN = 12  # db1 got busy this many minutes before "now"
GIB = 1 << 30
GONE_MIN = 4  # gone1 stopped reporting this many minutes before "now"


def _cpu_idle(instance: str, start: datetime, end: datetime, busy_from_s: float | None) -> SyntheticSeries:
    def idle_seconds(t: float) -> float:
        base = 0.9 * t + 5 * math.sin(t / 100)  # about 10 % busy, with a little wobble
        if busy_from_s is None or t <= busy_from_s:
            return base
        return 0.9 * busy_from_s + 5 * math.sin(busy_from_s / 100) + 0.1 * (t - busy_from_s)  # 90 % busy

    return SyntheticSeries.from_fn(
        "node_cpu_seconds_total", {"instance": instance, "mode": "idle", "cpu": "0"}, start, end, fn=idle_seconds
    )


def _cpu_waiting(instance: str, start: datetime, end: datetime, from_s: float) -> list[SyntheticSeries]:
    """10 % busy throughout; from ``from_s`` on, 80 % of the time idle waiting on disks (iowait) instead of idle."""

    def seconds(before: float, after: float) -> Callable[[float], float]:
        return lambda t: before * t if t <= from_s else before * from_s + after * (t - from_s)

    labels = {"instance": instance, "cpu": "0"}
    return [
        SyntheticSeries.from_fn("node_cpu_seconds_total", {**labels, "mode": "idle"}, start, end, fn=seconds(0.9, 0.1)),
        SyntheticSeries.from_fn("node_cpu_seconds_total", {**labels, "mode": "iowait"}, start, end, fn=seconds(0, 0.8)),
        SyntheticSeries.from_fn("node_cpu_seconds_total", {**labels, "mode": "user"}, start, end, fn=seconds(0.1, 0.1)),
    ]


@pytest.fixture(scope="module")
def metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, datetime]]:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=HOURS)
    span = HOURS * 3600
    series = [
        _cpu_idle("web1:9100", start, now, None),
        _cpu_idle("db1:9100", start, now, span - SHIFT_MIN * 60),
        _cpu_idle("gone1:9100", start, now - timedelta(minutes=GONE_MIN), None),
        *_cpu_waiting("io1:9100", start, now, span - SHIFT_MIN * 60),
        SyntheticSeries.constant("node_memory_MemTotal_bytes", {"instance": "db1:9100"}, 8 * GIB, start, now),
        SyntheticSeries.from_fn(
            "node_memory_MemAvailable_bytes",
            {"instance": "db1:9100"},
            start,
            now,
            fn=lambda t: 6 * GIB + 1e6 * math.sin(t),
        ),
        SyntheticSeries.constant("pve_memory_size_bytes", {"id": "qemu/105"}, 4 * GIB, start, now),
        SyntheticSeries.from_fn(
            "pve_memory_usage_bytes",
            {"id": "qemu/105"},
            start,
            now,
            fn=lambda t: (
                GIB + 1e6 * math.sin(t / 50) if t < span - 1200 else GIB + (t - span + 1200) / 1200 * 2.9 * GIB
            ),
        ),
    ]
    with PrometheusWorld(tmp_path_factory.mktemp("prom"), series=series) as world:
        yield world.url, now


@pytest.fixture
async def world(metrics: tuple[str, datetime]) -> AsyncIterator[EngineWorld]:
    url, now = metrics
    w = EngineWorld(now=now, prometheus_url=url)
    yield w
    await w.aclose()


async def test_healthy_host_shows_no_meaningful_shift(world: EngineWorld) -> None:
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)), world.deps("prometheus"))
    items = (await saturation.run(ctx)).evidence
    assert items, "the CPU series exists, so the check reports on it"
    assert all(e.score < 0.3 for e in items), [(e.title, e.score) for e in items]


async def test_cpu_that_jumped_before_the_alert_is_a_large_shift_with_its_onset(world: EngineWorld) -> None:
    ctx = world.context(make_alert({"instance": "db1:9100"}, starts_at=world.ago(5)), world.deps("prometheus"))
    items = (await saturation.run(ctx)).evidence
    cpu = next(e for e in items if e.data["metric"] == "cpu")
    assert cpu.score > 0.8
    assert cpu.title.startswith("CPU busy of db1:9100 rose from 10% to")
    assert cpu.at is not None and abs((cpu.at - world.ago(SHIFT_MIN)).total_seconds()) <= 6 * 60
    assert cpu.series and cpu.ref and 'instance="db1:9100"' in cpu.ref
    memory = next(e for e in items if e.data["metric"] == "memory")
    assert memory.score < 0.3


async def test_time_waiting_on_disks_is_iowait_not_a_busy_processor(world: EngineWorld) -> None:
    ctx = world.context(make_alert({"instance": "io1:9100"}, starts_at=world.ago(5)), world.deps("prometheus"))
    items = {e.data["metric"]: e for e in (await saturation.run(ctx)).evidence}
    assert items["iowait"].score > 0.8, items["iowait"].title
    assert items["cpu"].score < 0.3, items["cpu"].title


async def test_guest_memory_climbing_to_its_limit_is_found_through_pve_exporter(world: EngineWorld) -> None:
    ctx = world.context(make_alert({"vmid": "105"}, starts_at=world.ago(5)), world.deps("prometheus"))
    items = (await saturation.run(ctx)).evidence
    memory = next(e for e in items if e.data["metric"] == "pve_memory")
    assert memory.score > 0.8
    assert "memory of its limit (Proxmox) of guest 105 rose from 25%" in memory.title
    assert 'id="qemu/105"' in (memory.ref or "")


async def test_a_host_that_stopped_reporting_is_an_availability_finding_not_a_shift(world: EngineWorld) -> None:
    ctx = world.context(make_alert({"instance": "gone1:9100"}, starts_at=world.ago(2)), world.deps("prometheus"))
    items = (await saturation.run(ctx)).evidence
    (stopped,) = [e for e in items if e.kind == "availability"]
    assert stopped.title == f"gone1:9100 stopped reporting at {world.ago(GONE_MIN):%H:%M} UTC"
    assert stopped.at is not None and abs((stopped.at - world.ago(GONE_MIN)).total_seconds()) <= 30
    assert stopped.score >= 0.5
    shifts = [e for e in items if e.kind == "saturation"]
    assert all(abs(e.data["z"]) < 3 for e in shifts), [e.title for e in items]
    assert all(t <= stopped.at.timestamp() for e in shifts for t, _ in e.series or []), "charted past the last sample"


async def test_a_live_host_gets_no_availability_finding(world: EngineWorld) -> None:
    ctx = world.context(make_alert({"instance": "db1:9100"}, starts_at=world.ago(5)), world.deps("prometheus"))
    assert not [e for e in (await saturation.run(ctx)).evidence if e.kind == "availability"]


async def test_failing_prometheus_fails_the_saturation_check() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="unavailable")

    w = EngineWorld(prometheus_transport=httpx.MockTransport(down))
    try:
        ctx = w.context(make_alert({"instance": "db1:9100"}, starts_at=w.ago(5)), w.deps("prometheus"))
        with pytest.raises(SourceError):
            await saturation.run(ctx)
    finally:
        await w.aclose()


def generator(expr: str) -> str:
    return f"http://prometheus:9090/graph?g0.expr={quote(expr)}&g0.tab=1"


async def test_alert_signal_reports_the_size_of_the_change_and_when_it_crossed(world: EngineWorld) -> None:
    expr = '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle",instance="db1:9100"}[5m]))'
    alert = make_alert({"instance": "db1:9100"}, starts_at=world.ago(5), generator_url=generator(expr))
    items = (await alert_signal.run(world.context(alert, world.deps("prometheus")))).evidence
    signal = items[0]
    assert signal.kind == "alert_signal" and signal.ref == expr
    # a large change, weighed as context: the signal restates the alert
    assert signal.score > 0.8 * alert_signal.SIGNAL_WEIGHT
    assert signal.at is not None and signal.at < alert.starts_at
    assert "trend rising" in signal.detail
    assert all(e.kind == "breakdown" for e in items[1:])


async def test_alert_signal_of_a_less_than_rule_reports_the_low_point_not_the_highest_sample(
    world: EngineWorld,
) -> None:
    expr = 'avg by (instance) (rate(node_cpu_seconds_total{mode="idle",instance="db1:9100"}[5m])) < 0.5'
    alert = make_alert({"instance": "db1:9100"}, starts_at=world.ago(5), generator_url=generator(expr))
    (item,) = (await alert_signal.run(world.context(alert, world.deps("prometheus")))).evidence
    assert item.series
    lowest = min(v for _, v in item.series)
    assert lowest < 0.15 < max(v for _, v in item.series)
    assert item.title.endswith(f"fell to {lowest:.4g} (threshold 0.5)"), item.title
    assert item.data["worst"] == lowest and item.data["fires"] == "below"


async def test_alert_signal_of_a_steady_series_is_weak(world: EngineWorld) -> None:
    expr = '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle",instance="web1:9100"}[5m]))'
    alert = make_alert({"instance": "web1:9100"}, starts_at=world.ago(5), generator_url=generator(expr))
    items = (await alert_signal.run(world.context(alert, world.deps("prometheus")))).evidence
    assert items[0].score < 0.4


async def test_alert_signal_without_data_says_so(world: EngineWorld) -> None:
    expr = 'up{job="gone"} == 0'
    alert = make_alert({"job": "gone"}, starts_at=world.ago(5), generator_url=generator(expr))
    items = (await alert_signal.run(world.context(alert, world.deps("prometheus")))).evidence
    assert items[0].title.startswith("The alert's query returns no data")


async def test_alert_signal_reads_the_query_of_a_grafana_rule(world: EngineWorld) -> None:
    world.grafana.add_rule(
        "cpu-rule",
        "db1 CPU",
        expr='1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle",instance="db1:9100"}[5m]))',
    )
    alert = make_alert({"__alert_rule_uid__": "cpu-rule", "instance": "db1:9100"}, starts_at=world.ago(5))
    items = (await alert_signal.run(world.context(alert, world.deps("prometheus", "grafana")))).evidence
    assert items[0].kind == "alert_signal" and items[0].score > 0.8 * alert_signal.SIGNAL_WEIGHT


async def test_alert_signal_leaves_a_grafana_rule_on_loki_to_the_log_checks() -> None:
    def unexpected(request: httpx.Request) -> httpx.Response:
        raise AssertionError("a LogQL rule must not be sent to Prometheus")

    w = EngineWorld(prometheus_transport=httpx.MockTransport(unexpected))
    try:
        w.grafana.add_rule("log-rule", "errors", expr='sum(count_over_time({job="nginx"} |= "error" [5m])) > 10')
        alert = make_alert({"__alert_rule_uid__": "log-rule"}, starts_at=w.ago(5))
        items = (await alert_signal.run(w.context(alert, w.deps("prometheus", "grafana")))).evidence
        assert [(e.kind, e.title) for e in items] == [
            ("note", "The rule's query A is LogQL (data source prometheus), not PromQL: its signal is not re-run")
        ]
    finally:
        await w.aclose()


async def test_failing_prometheus_fails_the_alert_signal_check() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="unavailable")

    w = EngineWorld(prometheus_transport=httpx.MockTransport(down))
    try:
        alert = make_alert({"instance": "db1:9100"}, starts_at=w.ago(5), generator_url=generator("up == 0"))
        with pytest.raises(SourceError):
            await alert_signal.run(w.context(alert, w.deps("prometheus")))
    finally:
        await w.aclose()
