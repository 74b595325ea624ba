"""Per-alert load on the data sources: how many HTTP requests and bytes each client spends on one typical alert.

A "typical alert" is a Grafana-managed host CPU alert on a Proxmox node (``HostHighCpuLoad`` on ``pve1:9100``).
Each source has a *plan*: the calls the triage worker makes for such an alert — Prometheus: the rule, the alert's
own signal, saturation of the host; Loki: error lines and their rate now and in the previous window, restarts;
Grafana: the rule, annotations in the window, and delivery of the report (annotation created, then extended when
the alert resolves); Proxmox VE: the guest behind the alert, guest and node status, tasks in the window and in the
backup look-back; PBS: tasks in both windows and datastore usage. The plans run against a real Prometheus loaded
with three hours of node-exporter-like series, the Loki fake holding three hours of logs, and the Grafana, PVE and
PBS fakes holding the reference homelab (:mod:`infra_world`: 3 nodes, 80 guests, three days of tasks). A second
table shows what finding the guest behind an ``instance`` label costs Proxmox VE, by the form of the label.

    .venv/bin/python bench/source_load.py [--json] [--max-points N]

To add a source, write ``async def plan(client, alert) -> None`` making the calls a triage makes, and register it
in :data:`PLANS` via :func:`register` (see ``prometheus_plan`` and ``loki_plan``); :func:`run` builds the clients.
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

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.infra_world import DASHBOARD_UID, build, guest_ip  # noqa: E402
from reports.delivery import deliver, deliver_resolve  # noqa: E402
from reports.models import Alert, AlertStatus  # noqa: E402
from tests.fakes.loki import FakeLoki  # noqa: E402
from tests.support.prometheus import PrometheusWorld, SyntheticSeries  # noqa: E402
from tests.support.sample_reports import sample_report  # noqa: E402
from tools.grafana import GrafanaClient  # noqa: E402
from tools.http import SourceClient  # noqa: E402
from tools.loki import LokiClient  # noqa: E402
from tools.pbs import PbsClient  # noqa: E402
from tools.prometheus import PrometheusClient  # noqa: E402
from tools.proxmox import ProxmoxClient  # noqa: E402
from triage.settings import ApiSettings  # noqa: E402

# as the backups check: a job that started this long before the window can still be running at the alert
BACKUP_LOOKBACK = timedelta(hours=12)
from tools.selectors import Matcher, line_filter, logql_query, logql_selector, selector  # noqa: E402
from tools.types import DEFAULT_MAX_POINTS  # noqa: E402


@dataclass(frozen=True)
class BenchAlert:
    """The alert the plans triage: its name, labels and start."""

    alertname: str
    labels: dict[str, str]
    starts_at: datetime
    rule_uid: str = "host-high-cpu"
    dashboard_uid: str | None = DASHBOARD_UID
    panel_id: int | None = 4

    def window(self) -> tuple[datetime, datetime]:
        """The triage window: an hour before the start to ten minutes after it."""
        return self.starts_at - timedelta(hours=1), self.starts_at + timedelta(minutes=10)

    def epoch_window(self) -> tuple[int, int]:
        """:meth:`window` in epoch seconds, as the Proxmox APIs take it."""
        start, end = self.window()
        return int(start.timestamp()), int(end.timestamp())


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
    start, end = alert.window()
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


@dataclass(frozen=True)
class _Api:
    api: ApiSettings


LINKS = _Api(ApiSettings(api_token=SecretStr("bench-token"), public_url="https://triage.lan"))


async def grafana_plan(client: GrafanaClient, alert: BenchAlert) -> None:
    """The rule's query (alert signal), annotations in the window (change timeline), then delivery of a report of
    typical size: looked up by its tag, created on the alert's panel, extended when the alert resolves."""
    start, end = alert.window()
    await client.alert_rule(alert.rule_uid)
    await client.find_annotations(from_ms=int(start.timestamp() * 1000), to_ms=int(end.timestamp() * 1000), limit=100)
    fired = Alert(
        fingerprint="bench0000000001",
        alertname=alert.alertname,
        status=AlertStatus.firing,
        labels={"alertname": alert.alertname, **alert.labels},
        starts_at=alert.starts_at,
        dashboard_uid=alert.dashboard_uid,
        panel_id=alert.panel_id,
    )
    delivered = await deliver(sample_report(alert=fired), client, LINKS, now=end)
    await deliver_resolve(delivered, client, LINKS, ends_at=end, now=end + timedelta(minutes=5))


async def proxmox_plan(client: ProxmoxClient, alert: BenchAlert) -> None:
    """The guest behind ``instance`` and the cluster's nodes, the status of the guest and of its node (or of the
    node the alert names), tasks in the window (change timeline) and in the backup look-back (vzdump jobs)."""
    since, until = alert.epoch_window()
    instance = alert.labels["instance"]
    match, nodes = await asyncio.gather(client.find_guest(instance), client.nodes())
    online = {n.node for n in nodes if n.node and n.status == "online"}
    node = match.guest.node if match else instance.split(":")[0]
    calls: list[Awaitable[object]] = [
        client.tasks(since_s=since, until_s=until, limit=200),
        client.tasks(since_s=since - int(BACKUP_LOOKBACK.total_seconds()), limit=500),
    ]
    if node in online:
        calls.append(client.node_status(node))
    if match is not None and match.guest.node in online and match.guest.vmid is not None:
        calls.append(client.guest_status(match.guest.node, match.guest.vmid, match.guest.kind))
    await asyncio.gather(*calls)


async def pbs_plan(client: PbsClient, alert: BenchAlert) -> None:
    """Tasks in the window (change timeline), tasks in the backup look-back and datastore usage (backups)."""
    since, until = alert.epoch_window()
    await asyncio.gather(
        client.tasks(since_s=since, until_s=until, limit=200),
        client.tasks(since_s=since - int(BACKUP_LOOKBACK.total_seconds()), limit=500),
        client.datastores(),
    )


register("prometheus", prometheus_plan)
register("loki", loki_plan)
register("grafana", grafana_plan)
register("proxmox", proxmox_plan)
register("pbs", pbs_plan)


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
                fn=lambda t: t * 0.9 if t < spike_from else spike_from * 0.9 + (t - spike_from) * 0.05,
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


@dataclass
class LookupLoad:
    """What finding the guest behind one ``instance`` label cost Proxmox VE."""

    instance: str
    found: str
    requests: int
    bytes_received: int


# one instance label per way the client can recognise a guest, and one it cannot
LOOKUPS = [
    ("svc7:9100", "name"),
    (f"{guest_ip(9)}:9100", "container address"),
    (f"{guest_ip(8)}:9100", "VM address, guest agent"),
    (f"{guest_ip(30)}:9100", "VM address, no agent, config"),
    (f"{guest_ip(64)}:9100", "address past the look-up budget"),
    ("10.9.9.9:9100", "unknown address"),
]


async def guest_lookups(now: datetime) -> list[LookupLoad]:
    """Resolve each of :data:`LOOKUPS` on a fresh client, then the last known address again on the same client."""
    world = build(now, rule_uid=BenchAlert.rule_uid)
    rows: list[LookupLoad] = []

    async def lookup(client: ProxmoxClient, instance: str, label: str) -> None:
        client.stats.reset()
        match = await client.find_guest(instance)
        found = f"{label}: {match.guest.vmid} by {match.matched_by}" if match else f"{label}: no guest"
        rows.append(LookupLoad(instance, found, client.stats.requests, client.stats.bytes_received))

    for instance, label in LOOKUPS:
        async with world.proxmox.client() as client:
            await lookup(client, instance, label)
    async with world.proxmox.client() as client:
        instance = LOOKUPS[3][0]
        await client.find_guest(instance)
        await lookup(client, instance, "same address again (cached)")
    return rows


def print_table(loads: list[SourceLoad]) -> None:
    print(f"{'source':<12}{'requests':>9}{'retries':>9}{'sent B':>10}{'received B':>12}  paths")
    for load in loads:
        paths = ", ".join(f"{p}×{n}" for p, n in sorted(load.by_path.items()))
        print(
            f"{load.source:<12}{load.requests:>9}{load.retries:>9}{load.bytes_sent:>10}{load.bytes_received:>12}  {paths}"
        )
    total = sum(load.requests for load in loads), sum(load.bytes_sent + load.bytes_received for load in loads)
    print(f"total: {total[0]} requests, {total[1]} bytes")


def print_lookups(rows: list[LookupLoad]) -> None:
    print(f"{'instance':<16}{'requests':>9}{'received B':>12}  found")
    for row in rows:
        print(f"{row.instance:<16}{row.requests:>9}{row.bytes_received:>12}  {row.found}")


async def run(workdir: Path, max_points: int, *, now: datetime | None = None) -> list[SourceLoad]:
    """Build the worlds at ``now`` (default: the current second) and measure the typical alert on every source."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=3)
    alert = BenchAlert("HostHighCpuLoad", {"instance": "pve1:9100", "severity": "warning"}, now - timedelta(minutes=10))
    loki = loki_world("pve1", start, now)
    infra = build(now, rule_uid=alert.rule_uid)
    with PrometheusWorld(workdir, node_series("pve1:9100", start, now), rules=RULES) as world:
        async with AsyncExitStack() as stack:
            clients: dict[str, SourceClient] = {
                "prometheus": await stack.enter_async_context(PrometheusClient(world.url, max_points=max_points)),
                "loki": await stack.enter_async_context(loki.client(max_points=max_points)),
                "grafana": await stack.enter_async_context(infra.grafana.client()),
                "proxmox": await stack.enter_async_context(infra.proxmox.client()),
                "pbs": await stack.enter_async_context(infra.pbs.client()),
            }
            return await measure(clients, alert)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--max-points", type=int, default=DEFAULT_MAX_POINTS, help="point budget per series")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="source-load-") as workdir:
        loads = asyncio.run(run(Path(workdir), args.max_points, now=now))
    lookups = asyncio.run(guest_lookups(now))
    if args.json:
        print(
            json.dumps({"alert": [asdict(x) for x in loads], "guest_lookups": [asdict(x) for x in lookups]}, indent=2)
        )
    else:
        print_table(loads)
        print()
        print_lookups(lookups)


if __name__ == "__main__":
    main()
