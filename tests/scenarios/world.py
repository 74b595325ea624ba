"""Build a scenario's world: fakes filled from its definition, clients wired to them, the alert, a report store.

Prometheus is real and shared by the whole suite (one ``promtool`` backfill of every scenario's series, see
:func:`suite_series`); the other sources are fakes private to each world. :class:`Delays` slows every source the
way a real network and real servers do, for the benchmarks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml

from reports.models import Alert, AlertStatus, Report, ReportStatus, labels_fingerprint
from reports.store import ReportStore, open_store
from tests.fakes.grafana import FakeGrafana
from tests.fakes.loki import FakeLoki
from tests.fakes.pbs import FakePbs
from tests.fakes.proxmox import FakeProxmox
from tests.scenarios.model import Scenario, Storage
from tests.scenarios.series import scenario_series
from tests.support.procs import free_port
from tests.support.prometheus import SyntheticSeries
from tools.grafana import GrafanaClient
from tools.loki import LokiClient
from tools.loki_patterns import Availability
from tools.pbs import PbsClient
from tools.prometheus import PrometheusClient
from tools.proxmox import ProxmoxClient

GB = 1 << 30
TB = 1 << 40
# how long after the alert started the triage runs (Grafana's notification and the queue take about this long)
TRIAGE_LAG_S = 40.0
# scenarios are anchored one after another, a few minutes apart, so their series never share a time either
ANCHOR_SPACING_MIN = 3.0
SERIES_BEFORE_MIN = 130.0
SOURCES = ("prometheus", "loki", "grafana", "proxmox", "pbs")
DEFAULT_PBS_HOST = "pbs"
TOPOLOGY_NAME = "topology.yaml"
# what a fresh PVE install configures: the root filesystem's directory and the LVM-thin pool beside it
DEFAULT_STORAGES = (
    Storage("local", "dir", content="iso,vztmpl,backup", path="/var/lib/vz", total_gb=94, used_ratio=0.18),
    Storage("local-lvm", "lvmthin", vgname="pve", thinpool="data", total_gb=1800, used_ratio=0.34),
)


@dataclass(frozen=True)
class Delays:
    """Seconds each source takes per request (the fakes sleep; Prometheus goes through a delaying transport)."""

    prometheus_s: float = 0.0
    loki_s: float = 0.0
    grafana_s: float = 0.0
    proxmox_s: float = 0.0
    pbs_s: float = 0.0


REALISTIC = Delays(prometheus_s=0.05, loki_s=0.3, grafana_s=0.1, proxmox_s=0.1, pbs_s=0.1)


class DelayTransport(httpx.AsyncBaseTransport):
    """A transport that waits ``delay_s`` before passing each request on (a slower Prometheus, same answers)."""

    def __init__(self, delay_s: float, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.delay_s = delay_s
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass(frozen=True)
class Anchor:
    """Where a scenario sits in real time: its alert's ``startsAt`` and the moment the triage runs."""

    t0: datetime
    now: datetime


def anchors(scenarios: list[Scenario], suite_now: datetime) -> dict[str, Anchor]:
    """One anchor per scenario: each alert started a little earlier than the one after it, all before ``suite_now``."""
    out: dict[str, Anchor] = {}
    for index, scenario in enumerate(scenarios):
        now = suite_now - timedelta(minutes=ANCHOR_SPACING_MIN * (len(scenarios) - 1 - index))
        out[scenario.name] = Anchor(t0=now - timedelta(seconds=TRIAGE_LAG_S), now=now)
    return out


def suite_series(scenarios: list[Scenario], placed: dict[str, Anchor]) -> list[SyntheticSeries]:
    """Every scenario's series at its anchor, for one backfill. Fails when two scenarios share a series."""
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    out: list[SyntheticSeries] = []
    for scenario in scenarios:
        anchor = placed[scenario.name]
        start = anchor.t0 - timedelta(minutes=SERIES_BEFORE_MIN)
        for series in scenario_series(scenario, anchor.t0, start, anchor.now):
            key = (series.name, tuple(sorted(series.labels.items())))
            if key in seen:
                raise ValueError(f"scenarios {seen[key]} and {scenario.name} both define {series.name}{series.labels}")
            seen[key] = scenario.name
            out.append(series)
    return out


def make_alert(scenario: Scenario, t0: datetime, *, grafana_url: str = "http://grafana.lab.example") -> Alert:
    """The alert as the webhook would have normalised it."""
    spec = scenario.alert
    labels = {"alertname": spec.alertname, **spec.labels}
    generator_url = None
    if spec.generator_expr:
        generator_url = f"http://prometheus.lab.example:9090/graph?g0.expr={quote(spec.generator_expr)}&g0.tab=1"
    rule_uid = labels.pop("__alert_rule_uid__", None)
    if rule_uid:
        # Grafana strips internal labels from notifications; the rule is named by the generator URL
        generator_url = f"{grafana_url}/alerting/grafana/{rule_uid}/view?orgId=1"
    return Alert(
        fingerprint=spec.fingerprint or labels_fingerprint(labels),
        alertname=spec.alertname,
        status=AlertStatus.firing,
        labels=labels,
        annotations=dict(spec.annotations),
        starts_at=t0,
        generator_url=generator_url,
        source="grafana" if spec.source == "grafana" else "alertmanager",
        dashboard_uid=spec.dashboard_uid,
        panel_id=spec.panel_id,
    )


def _at(t0: datetime, minutes: float) -> datetime:
    return t0 + timedelta(minutes=minutes)


def _epoch(t0: datetime, minutes: float) -> int:
    return int(_at(t0, minutes).timestamp())


def fill_loki(loki: FakeLoki, scenario: Scenario, t0: datetime) -> None:
    for log in scenario.logs:
        for i in range(log.repeat):
            loki.push(log.labels, log.line, at=_at(t0, log.at_min) + timedelta(seconds=i * log.every_s))


def fill_proxmox(pve: FakeProxmox, scenario: Scenario, anchor: Anchor) -> None:
    for node in scenario.nodes:
        total = 64 * GB
        extra: dict[str, Any] = {"wait": node.iowait, "loadavg": node.loadavg}
        if node.booted_min is not None:
            extra["uptime"] = max(0, int((anchor.now - _at(anchor.t0, node.booted_min)).total_seconds()))
        pve.add_node(
            node.name, online=node.online, cpu=node.cpu, mem_used=int(node.mem_used * total), mem_total=total, **extra
        )
    for guest in scenario.guests:
        maxmem = int(guest.maxmem_gb * GB)
        uptime = max(0, int((anchor.now - _at(anchor.t0, guest.booted_min)).total_seconds()))
        pve.add_guest(
            guest.vmid,
            guest.name,
            node=guest.node,
            kind=guest.kind,
            status=guest.status,
            ips=guest.ips,
            static_ips=guest.ips,
            mem=int(guest.mem_used * maxmem),
            maxmem=maxmem,
            uptime=uptime,
            lock=guest.lock,
            qmpstatus=guest.qmpstatus,
            config={**guest.config, **guest.disks},
            pending=dict(guest.pending),
            pending_delete=list(guest.pending_delete),
        )
    for task in scenario.pve_tasks:
        pve.add_task(
            task.node,
            task.type,
            starttime=_epoch(anchor.t0, task.start_min),
            endtime=None if task.end_min is None else _epoch(anchor.t0, task.end_min),
            status=task.status,
            vmid=task.vmid,
            user=task.user,
            log=list(task.log),
        )
    defined = {s.name for s in scenario.storages}
    defaults = [s for s in DEFAULT_STORAGES if s.name not in defined]
    for storage in [*defaults, *scenario.storages]:
        fields = {
            k: v
            for k, v in (
                ("server", storage.server),
                ("export", storage.export),
                ("pool", storage.pool),
                ("datastore", storage.datastore),
                ("namespace", storage.namespace),
                ("path", storage.path),
                ("share", storage.share),
                ("portal", storage.portal),
                ("monhost", storage.monhost),
                ("vgname", storage.vgname),
                ("thinpool", storage.thinpool),
            )
            if v is not None
        }
        total = int(storage.total_gb * GB)
        pve.add_storage(
            storage.name,
            storage.type,
            content=storage.content,
            nodes=list(storage.nodes),
            shared=storage.shared,
            total=total,
            used=int(storage.used_ratio * total),
            active=storage.active,
            disable=storage.disable,
            **fields,
        )


def fill_pbs(pbs: FakePbs, scenario: Scenario, t0: datetime) -> None:
    for store in scenario.datastores:
        total = int(store.total_tb * TB)
        pbs.add_datastore(
            store.name,
            total=total,
            used=int(store.used_ratio * total),
            error=store.error,
            namespaces=list(store.namespaces),
        )
    # one fake may serve several scenarios (the homelab): each names its server in its own tasks' UPIDs
    pbs.node_name = scenario.pbs_host or DEFAULT_PBS_HOST
    for task in scenario.pbs_tasks:
        pbs.add_task(
            task.worker_type,
            task.worker_id,
            starttime=_epoch(t0, task.start_min),
            endtime=None if task.end_min is None else _epoch(t0, task.end_min),
            status=task.status,
            log=list(task.log),
        )


def fill_grafana(grafana: FakeGrafana, scenario: Scenario, t0: datetime) -> None:
    for rule in scenario.rules:
        grafana.add_rule(
            rule.uid,
            rule.title,
            expr=rule.expr,
            state=rule.state,
            health=rule.health,
            last_error=rule.last_error,
            labels=rule.labels,
            alerts=[{"labels": dict(scenario.alert.labels), "state": "Alerting", "activeAt": t0.isoformat()}],
            datasource_uid=rule.datasource,
            for_=rule.for_,
        )
    if scenario.alert.dashboard_uid:
        grafana.add_dashboard(scenario.alert.dashboard_uid, scenario.alert.alertname)
    for note in scenario.annotations:
        end = None if note.end_min is None else int(_at(t0, note.end_min).timestamp() * 1000)
        fields = {"timeEnd": end} if end is not None else {}
        grafana.add_annotation(note.text, note.tags, int(_at(t0, note.at_min).timestamp() * 1000), **fields)


def write_topology(topologies: list[dict[str, Any]], workdir: Path) -> Path | None:
    """Write the ``TOPOLOGY_FILE`` of one or more scenarios (their hosts merged) to ``workdir``; None when none has
    one. A host two scenarios both declare is refused: each world has its own hosts."""
    if not topologies:
        return None
    hosts: dict[str, Any] = {}
    for topology in topologies:
        for name, entry in (topology.get("hosts") or {}).items():
            if name in hosts:
                raise ValueError(f"two scenarios declare host {name!r} in their topology")
            hosts[name] = entry
    path = workdir / TOPOLOGY_NAME
    path.write_text(yaml.safe_dump({"hosts": hosts}, sort_keys=True), encoding="utf-8")
    return path


async def fill_history(store: ReportStore, scenario: Scenario, alert: Alert) -> None:
    for prior in scenario.history:
        started = alert.starts_at - timedelta(days=prior.days_ago)
        earlier = alert.model_copy(update={"starts_at": started, "status": AlertStatus.resolved})
        report = Report(
            id=earlier.occurrence_key,
            status=ReportStatus.resolved,
            alert=earlier,
            summary=prior.summary,
            created_at=started,
            updated_at=started,
            resolved_at=started + timedelta(minutes=2),
        )
        await store.save(report)


@dataclass
class World:
    """One scenario's sources, clients and alert, ready for a triage."""

    scenario: Scenario
    anchor: Anchor
    alert: Alert
    loki_fake: FakeLoki
    proxmox_fake: FakeProxmox
    pbs_fake: FakePbs
    grafana_fake: FakeGrafana
    prometheus: PrometheusClient
    loki: LokiClient
    grafana: GrafanaClient
    proxmox: ProxmoxClient
    pbs: PbsClient
    store: ReportStore
    clients: dict[str, PrometheusClient | LokiClient | GrafanaClient | ProxmoxClient | PbsClient] = field(
        default_factory=dict
    )
    topology_path: Path | None = None

    def requests(self) -> dict[str, int]:
        """Requests each data source received from the triage (retries included), from the clients' counters."""
        counts = {name: client.stats.requests for name, client in self.clients.items()}
        # a source that is down never answers, so its client counts nothing: count what the fake saw instead
        for name in self.scenario.down:
            fake = {"loki": self.loki_fake, "proxmox": self.proxmox_fake, "pbs": self.pbs_fake}.get(name)
            counts[name] = fake.request_count if fake is not None else counts.get(name, 0)
        return counts

    def bytes_received(self) -> dict[str, int]:
        """Response bytes each data source sent the triage, from the clients' counters."""
        return {name: client.stats.bytes_received for name, client in self.clients.items()}

    def reset_counters(self) -> None:
        for client in self.clients.values():
            client.stats.reset()
        for fake in (self.loki_fake, self.proxmox_fake, self.pbs_fake, self.grafana_fake):
            fake.requests.clear()

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        await self.store.close()


async def build_world(
    scenario: Scenario,
    anchor: Anchor,
    *,
    prometheus_url: str,
    workdir: Path,
    delays: Delays | None = None,
    loki_patterns: bool = False,
    loki_availability: Availability | None = None,
) -> World:
    """Fill the fakes from ``scenario`` at ``anchor`` and wire clients to them (and to the shared Prometheus).

    The fake Loki answers 404 on its patterns API unless ``loki_patterns`` (then it serves the patterns of its lines);
    ``loki_availability`` is the memory of that answer its client shares with other worlds, as jobs of one worker do.
    """
    delays = delays or Delays()
    workdir.mkdir(parents=True, exist_ok=True)
    alert = make_alert(scenario, anchor.t0)
    loki_fake = FakeLoki(delay_s=delays.loki_s, serve_patterns=loki_patterns)
    loki_fake.now = anchor.now
    fill_loki(loki_fake, scenario, anchor.t0)
    proxmox_fake = FakeProxmox(delay_s=delays.proxmox_s)
    fill_proxmox(proxmox_fake, scenario, anchor)
    pbs_fake = FakePbs(delay_s=delays.pbs_s)
    fill_pbs(pbs_fake, scenario, anchor.t0)
    grafana_fake = FakeGrafana(delay_s=delays.grafana_s)
    fill_grafana(grafana_fake, scenario, anchor.t0)
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    for name, fake in (("loki", loki_fake), ("proxmox", proxmox_fake), ("pbs", pbs_fake), ("grafana", grafana_fake)):
        if name in scenario.down:
            fake.fail_next(1_000_000, exception=refused)
    url = prometheus_url if "prometheus" not in scenario.down else f"http://127.0.0.1:{free_port()}"
    prometheus = PrometheusClient(url, transport=DelayTransport(delays.prometheus_s), backoff_s=0.0)
    store = open_store(f"sqlite:///{workdir / 'reports.db'}")
    await store.init()
    await fill_history(store, scenario, alert)
    topology = write_topology([scenario.topology] if scenario.topology is not None else [], workdir)
    world = World(
        scenario=scenario,
        anchor=anchor,
        alert=alert,
        loki_fake=loki_fake,
        proxmox_fake=proxmox_fake,
        pbs_fake=pbs_fake,
        grafana_fake=grafana_fake,
        prometheus=prometheus,
        loki=loki_fake.client(availability=loki_availability or Availability()),
        grafana=grafana_fake.client(),
        proxmox=proxmox_fake.client(),
        pbs=pbs_fake.client(),
        store=store,
        topology_path=topology,
    )
    world.clients = {
        "prometheus": world.prometheus,
        "loki": world.loki,
        "grafana": world.grafana,
        "proxmox": world.proxmox,
        "pbs": world.pbs,
    }
    return world
