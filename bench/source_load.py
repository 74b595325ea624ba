"""Per-alert load on the data sources: how many HTTP requests and bytes each client spends on one typical alert.

A "typical alert" is a host CPU alert on a Proxmox node (``HostHighCpuLoad`` on ``pve1:9100``). Each source has a
*plan*: the calls the triage worker makes for such an alert (alert rule, the alert's own signal, saturation of the
host, error lines and their rate now and in the previous window, the change timeline). The plans run against a
real Prometheus loaded with three hours of node-exporter-like series and against the Loki fake holding three hours
of logs, and the clients' request counters are printed.

    .venv/bin/python bench/source_load.py [--json] [--max-points N]

To add a source, write ``async def plan(client, alert) -> None`` making the calls a triage makes, and register it
with its client factory in :data:`PLANS` via :func:`register` (see ``prometheus_plan`` and ``loki_plan``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.loki import FakeLoki  # noqa: E402
from tests.support.prometheus import PrometheusWorld, SyntheticSeries  # noqa: E402
from tools.http import SourceClient  # noqa: E402
from tools.loki import LokiClient  # noqa: E402
from tools.prometheus import PrometheusClient  # noqa: E402
from tools.selectors import Matcher, line_filter, logql_query, logql_selector, selector  # noqa: E402
from tools.types import DEFAULT_MAX_POINTS  # noqa: E402


@dataclass(frozen=True)
class BenchAlert:
    """The alert the plans triage: its name, labels and start."""

    alertname: str
    labels: dict[str, str]
    starts_at: datetime


@dataclass
class SourceLoad:
    """What one client sent and received while running its plan."""

    source: str
    requests: int
    retries: int
    bytes_sent: int
    bytes_received: int
    by_path: dict[str, int] = field(default_factory=dict)


Plan = Callable[[Any, BenchAlert], Awaitable[None]]
PLANS: dict[str, Plan] = {}


def register(source: str, plan: Plan) -> None:
    """Add (or replace) the plan of ``source``; :func:`measure` runs it on the client given under that name."""
    PLANS[source] = plan


async def prometheus_plan(client: PrometheusClient, alert: BenchAlert) -> None:
    """Alert rule, the alert's own signal, and CPU/memory/disk/network of the host, one hour before to now."""
    instance = alert.labels["instance"]
    start, end = alert.starts_at - timedelta(hours=1), alert.starts_at + timedelta(minutes=10)
    rule = await client.alerting_rule(alert.alertname)
    if rule is not None:
        await client.query_range(rule.query, start, end)
    host = {"instance": instance}
    idle = selector("node_cpu_seconds_total", host, [Matcher("mode", "idle")])
    queries = [
        f"1 - avg(rate({idle}[5m]))",
        f"1 - {selector('node_memory_MemAvailable_bytes', host)} / {selector('node_memory_MemTotal_bytes', host)}",
        f"1 - {selector('node_filesystem_avail_bytes', host)} / {selector('node_filesystem_size_bytes', host)}",
        f"rate({selector('node_network_receive_bytes_total', host)}[5m])",
    ]
    await asyncio.gather(*(client.query_range(q, start, end) for q in queries))
    await client.query(selector("up", host), at=alert.starts_at)


async def loki_plan(client: LokiClient, alert: BenchAlert) -> None:
    """Error lines near the start, error rate now vs. the previous window, and restart/OOM lines (change timeline)."""
    host = {"host": alert.labels["instance"].split(":")[0]}
    start, end = alert.starts_at - timedelta(minutes=30), alert.starts_at + timedelta(minutes=10)
    errors = line_filter("|~", "(?i)(error|fatal|panic)")
    await client.query_range(logql_query(host, errors), start, end, limit=200)
    rate = f"sum(count_over_time({logql_selector(host)} {errors} [1m]))"
    previous = (start - timedelta(hours=1), end - timedelta(hours=1))
    await asyncio.gather(client.query_range(rate, start, end), client.query_range(rate, *previous))
    changes = line_filter("|~", "(?i)(started|stopped|restart|oom|killed|upgrade)")
    await client.query_range(logql_query(host, changes), start, end, limit=100)


register("prometheus", prometheus_plan)
register("loki", loki_plan)


async def measure(clients: dict[str, SourceClient], alert: BenchAlert) -> list[SourceLoad]:
    """Run the plan of every given client (concurrently, as the worker does) and return each client's load."""
    for client in clients.values():
        client.stats.reset()
    await asyncio.gather(*(PLANS[name](client, alert) for name, client in clients.items()))
    return [
        SourceLoad(
            name,
            c.stats.requests,
            c.stats.retries,
            c.stats.bytes_sent,
            c.stats.bytes_received,
            dict(c.stats.by_path),
        )
        for name, c in clients.items()
    ]


def node_series(instance: str, start: datetime, end: datetime) -> list[SyntheticSeries]:
    """Three hours of node-exporter-like series for one host, with a CPU spike in the last 15 minutes."""
    spike_from = (end - start).total_seconds() - 900
    labels = {"instance": instance, "job": "node"}
    series = [SyntheticSeries.constant("up", labels, 1, start, end)]
    for cpu in range(4):
        busy = {"cpu": str(cpu), **labels}
        series.append(
            SyntheticSeries.from_fn(
                "node_cpu_seconds_total",
                {**busy, "mode": "idle"},
                start,
                end,
                fn=lambda t, s=spike_from: t * 0.9 if t < s else s * 0.9 + (t - s) * 0.05,
            )
        )
        series.append(
            SyntheticSeries.from_fn(
                "node_cpu_seconds_total", {**busy, "mode": "user"}, start, end, fn=lambda t: t * 0.1
            )
        )
    series += [
        SyntheticSeries.constant("node_memory_MemTotal_bytes", labels, 64e9, start, end),
        SyntheticSeries.from_fn("node_memory_MemAvailable_bytes", labels, start, end, fn=lambda t: 30e9 - t * 1e5),
        SyntheticSeries.constant("node_filesystem_size_bytes", {**labels, "mountpoint": "/"}, 100e9, start, end),
        SyntheticSeries.constant("node_filesystem_avail_bytes", {**labels, "mountpoint": "/"}, 40e9, start, end),
        SyntheticSeries.from_fn(
            "node_network_receive_bytes_total", {**labels, "device": "vmbr0"}, start, end, fn=lambda t: t * 2e6
        ),
        SyntheticSeries.from_fn(
            "node_load1", labels, start, end, fn=lambda t: 1 + 6 * (1 + math.sin(t / 600)) * (t > spike_from)
        ),
    ]
    return series


RULES = [
    {
        "name": "node",
        "rules": [
            {
                "alert": "HostHighCpuLoad",
                "expr": '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) > 0.8',
                "for": "0s",
                "labels": {"severity": "warning"},
            }
        ],
    }
]


def loki_world(host: str, start: datetime, end: datetime) -> FakeLoki:
    """Three hours of logs on three streams of the host: one line every 10 s, some errors, one restart."""
    loki = FakeLoki()
    streams = [{"host": host, "job": "systemd"}, {"host": host, "job": "pveproxy"}, {"host": host, "job": "kernel"}]
    at, i = start, 0
    while at <= end:
        stream = streams[i % 3]
        line = f'level=info msg="request handled" path=/api2/json/nodes/{host}/status duration_ms={i % 97}'
        if i % 17 == 0:
            line = f'level=error msg="upstream timed out" attempt={i % 5}'
        loki.push(stream, line, at=at)
        at, i = at + timedelta(seconds=10), i + 1
    loki.push(streams[0], "Stopped pve-cluster.service; Started pve-cluster.service", at=end - timedelta(minutes=12))
    return loki


def print_table(loads: list[SourceLoad]) -> None:
    print(f"{'source':<12}{'requests':>9}{'retries':>9}{'sent B':>10}{'received B':>12}  paths")
    for load in loads:
        paths = ", ".join(f"{p}×{n}" for p, n in sorted(load.by_path.items()))
        print(
            f"{load.source:<12}{load.requests:>9}{load.retries:>9}{load.bytes_sent:>10}{load.bytes_received:>12}  {paths}"
        )
    total = sum(load.requests for load in loads), sum(load.bytes_sent + load.bytes_received for load in loads)
    print(f"total: {total[0]} requests, {total[1]} bytes")


async def run(workdir: Path, max_points: int) -> list[SourceLoad]:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=3)
    alert = BenchAlert("HostHighCpuLoad", {"instance": "pve1:9100", "severity": "warning"}, now - timedelta(minutes=10))
    loki = loki_world("pve1", start, now)
    with PrometheusWorld(workdir, node_series("pve1:9100", start, now), rules=RULES) as world:
        async with AsyncExitStack() as stack:
            clients: dict[str, SourceClient] = {
                "prometheus": await stack.enter_async_context(PrometheusClient(world.url, max_points=max_points)),
                "loki": await stack.enter_async_context(loki.client(max_points=max_points)),
            }
            return await measure(clients, alert)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--max-points", type=int, default=DEFAULT_MAX_POINTS, help="point budget per series")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="source-load-") as workdir:
        loads = asyncio.run(run(Path(workdir), args.max_points))
    if args.json:
        print(json.dumps([asdict(load) for load in loads], indent=2))
    else:
        print_table(loads)


if __name__ == "__main__":
    main()
