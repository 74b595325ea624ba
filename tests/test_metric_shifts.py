"""Metric discovery against a real Prometheus: every series of the target and its node, beyond the standard ones,
ranked by how far its level moved — slow changes included, symptoms and exporters' self-metrics left out."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from tests.support.engine import EngineWorld, make_alert
from tests.support.prometheus import PrometheusWorld, SyntheticSeries
from tools.types import Point, Series
from triage.pipeline.checks import metric_shifts
from triage.pipeline.checks._stats import Shift
from triage.pipeline.checks.metric_shifts import describe, events_began, limit_lowered, rates, running_out, stem
from triage.settings import TriageSettings

pytestmark = pytest.mark.slow
HOURS = 3
INODES = 3_276_800.0


@pytest.fixture(scope="module")
def metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, datetime]]:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=HOURS)
    span = HOURS * 3600

    def inodes_free(t: float) -> float:
        # steady, then a slow fall over the last hour: a cleanup job stopped and tiny files pile up
        used = 0.6 if t < span - 3600 else 0.6 + 0.4 * min(1.0, (t - span + 3600) / 3300)
        return INODES * (1 - used) + 500 * math.sin(t / 60)

    def reads(t: float) -> float:
        # a counter: 40 MB/s, then 400 MB/s for the last 14 minutes (the node's pool resilvers)
        cut = span - 14 * 60
        return 40e6 * min(t, cut) + 400e6 * max(0.0, t - cut)

    mail = {"instance": "mail1:9100", "job": "node", "mountpoint": "/var", "device": "/dev/vdb1"}
    series = [
        SyntheticSeries.from_fn("node_filesystem_files_free", mail, start, now, fn=inodes_free),
        SyntheticSeries.constant("node_filesystem_files", mail, INODES, start, now),
        SyntheticSeries.from_fn(
            "node_memory_SwapFree_bytes",
            {"instance": "mail1:9100", "job": "node"},
            start,
            now,
            fn=lambda t: 4e9 + 1e6 * math.sin(t / 30),
        ),
        SyntheticSeries.from_fn(
            "go_goroutines",
            {"instance": "mail1:9100", "job": "node"},
            start,
            now,
            fn=lambda t: 10.0 if t < span - 600 else 90.0,
        ),
        SyntheticSeries.from_fn(
            "postfix_queue_length",
            {"instance": "mail1:9154", "job": "postfix"},
            start,
            now,
            fn=lambda t: 3.0 if t < span - 300 else 250.0,
        ),
        SyntheticSeries.from_fn(
            "node_disk_read_bytes_total",
            {"instance": "pve9:9100", "job": "node", "device": "sda"},
            start,
            now,
            fn=reads,
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


def _generator(expr: str) -> str:
    return f"http://prometheus:9090/graph?g0.expr={quote(expr)}"


async def test_a_slow_fall_in_a_series_nobody_listed_is_found_and_named_in_plain_words(world: EngineWorld) -> None:
    expr = 'postfix_queue_length{instance="mail1:9154"} > 200'
    alert = make_alert({"instance": "mail1:9154"}, starts_at=world.ago(3), generator_url=_generator(expr))
    items = (await metric_shifts.run(world.context(alert, world.deps("prometheus")))).evidence
    titles = [e.title for e in items]
    inodes = next(e for e in items if "node_filesystem_files_free" in e.title)
    assert inodes.title.startswith("inodes: node_filesystem_files_free{device=/dev/vdb1, mountpoint=/var} fell")
    assert inodes.data["persisting"] is True and inodes.score > 0.5
    # the free inodes are all but gone: the resource ran out, which outweighs a measure that only moved
    assert inodes.title.endswith("of it gone") and inodes.data["running_out"] > 0.95 and inodes.score >= 0.75
    # flat series, the exporter's own goroutines and the alert's own measure are not findings
    assert not [t for t in titles if "SwapFree" in t or "go_goroutines" in t or "postfix_queue_length" in t]


async def test_the_nodes_series_are_searched_for_a_guest_on_it(world: EngineWorld) -> None:
    world.proxmox.add_node("pve9")
    world.proxmox.add_guest(610, "mail1", node="pve9")
    alert = make_alert({"instance": "mail1:9100"}, starts_at=world.ago(3))
    items = (await metric_shifts.run(world.context(alert, world.deps("prometheus", "proxmox")))).evidence
    reads = next(e for e in items if "node_disk_read_bytes_total" in e.title)
    assert reads.title.endswith("(on node pve9)") and "rate rose" in reads.title
    assert reads.data["place"] == "node"


async def test_a_bound_that_leaves_series_out_is_said(world: EngineWorld) -> None:
    world.settings = TriageSettings(series_max=10, metric_names_max=1)
    alert = make_alert({"instance": "mail1:9100"}, starts_at=world.ago(3))
    items = (await metric_shifts.run(world.context(alert, world.deps("prometheus")))).evidence
    notes = [e for e in items if e.kind == "note"]
    assert notes and "TRIAGE_METRIC_NAMES_MAX=1" in notes[0].title


def test_a_counter_becomes_a_rate_and_survives_a_reset() -> None:
    counter = Series({"__name__": "x_total"}, [Point(0, 100), Point(10, 200), Point(20, 50), Point(30, 150)])
    assert [p.value for p in rates(counter).points] == [10.0, 5.0, 10.0]


def test_findings_are_described_by_the_labels_that_tell_them_apart() -> None:
    labels = {
        "__name__": "smartctl_device_attribute",
        "instance": "s:9633",
        "device": "sdc",
        "attribute_name": "Pending",
    }
    assert describe("smartctl_device_attribute", labels, False) == (
        "SMART disk health: smartctl_device_attribute{attribute_name=Pending, device=sdc}"
    )
    assert stem("node_pressure_memory_waiting_seconds_total") == stem("node_pressure_memory_stalled_seconds_total")


def _fell_to(last: float) -> tuple[Series, Shift]:
    series = Series({}, [Point(0, 4e9), Point(60, 2e9), Point(120, last)])
    return series, Shift(4e9, 1e8, 2e9, 4e9, -20.0, None, None)


def test_a_gauge_of_what_is_left_runs_out_when_three_quarters_of_it_are_gone() -> None:
    assert running_out("node_memory_SwapFree_bytes", *_fell_to(4e8), counter=False) == pytest.approx(0.9)
    assert running_out("node_filesystem_avail_bytes", *_fell_to(0.0), counter=False) == 1.0
    assert running_out("node_filesystem_avail_bytes", *_fell_to(2e9), counter=False) is None  # half is left
    # Linux fills free memory with page cache: MemFree near zero is normal
    assert running_out("node_memory_MemFree_bytes", *_fell_to(1e8), counter=False) is None
    assert running_out("node_memory_Active_bytes", *_fell_to(1e8), counter=False) is None  # not a "left" gauge
    assert running_out("node_filesystem_free_total", *_fell_to(1e8), counter=True) is None
    series, _ = _fell_to(1e8)
    rose = Shift(4e9, 1e8, 6e9, 7e9, 20.0, None, None)
    assert running_out("node_memory_SwapFree_bytes", series, rose, counter=False) is None


def test_a_configured_limit_lowered_to_half_or_less_is_a_limit_lowered() -> None:
    assert limit_lowered("redis_memory_max_bytes", *_fell_to(1e9), counter=False) == pytest.approx(0.75)
    assert limit_lowered("container_spec_memory_limit_bytes", *_fell_to(2e9), counter=False) == pytest.approx(0.5)
    assert limit_lowered("pg_settings_max_connections", *_fell_to(1e9), counter=False) == pytest.approx(0.75)
    assert limit_lowered("node_filefd_maximum", *_fell_to(1e9), counter=False) == pytest.approx(0.75)
    assert limit_lowered("redis_memory_max_bytes", *_fell_to(3e9), counter=False) is None  # three quarters kept
    # an observed maximum falling is something that ended, not a limit
    assert limit_lowered("pg_stat_activity_max_tx_duration", *_fell_to(1e8), counter=False) is None
    assert limit_lowered("redis_memory_used_bytes", *_fell_to(1e8), counter=False) is None
    assert limit_lowered("node_limit_hits_total", *_fell_to(1e8), counter=True) is None
    series, _ = _fell_to(1e8)
    raised = Shift(4e9, 1e8, 6e9, 7e9, 20.0, None, None)
    assert limit_lowered("redis_memory_max_bytes", series, raised, counter=False) is None


def test_a_counter_of_events_that_counted_none_before_has_events_that_began() -> None:
    began = Shift(0.0, 1e-6, 1.3, 1.5, 1e6, None, None)
    assert events_began("node_cpu_package_throttles_total", began, counter=True)
    assert events_began("node_network_receive_errs_total", began, counter=True)
    # an amount (time stalled, bytes moved) that rose from nothing is a measure that moved
    assert not events_began("node_pressure_memory_stalled_seconds_total", began, counter=True)
    assert not events_began("node_network_transmit_bytes_total", began, counter=True)
    # events that happened before too, fewer now, or a gauge
    assert not events_began(
        "node_cpu_package_throttles_total", Shift(0.2, 0.05, 1.3, 1.5, 22.0, None, None), counter=True
    )
    assert not events_began(
        "node_cpu_package_throttles_total", Shift(0.0, 1e-6, 0.0, 0.0, -1.0, None, None), counter=True
    )
    assert not events_began("node_throttled", began, counter=False)
