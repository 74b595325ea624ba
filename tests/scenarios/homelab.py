"""Every scenario in one homelab: one Loki, one Proxmox cluster, one PBS, one Grafana, one report store.

Scenario worlds use distinct hosts, vmids, node and datastore names, so they fit side by side in one set of fakes —
what a worker serving a real homelab sees, where every alert is triaged with the same long-lived clients. The
throughput benchmark runs an arq worker over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reports.models import Alert
from reports.store import ReportStore, open_store
from tests.fakes.grafana import FakeGrafana
from tests.fakes.loki import FakeLoki
from tests.fakes.pbs import FakePbs
from tests.fakes.proxmox import FakeProxmox
from tests.scenarios.model import Scenario
from tests.scenarios.runner import load_topology
from tests.scenarios.world import (
    Anchor,
    Delays,
    DelayTransport,
    fill_grafana,
    fill_history,
    fill_loki,
    fill_pbs,
    fill_proxmox,
    make_alert,
    write_topology,
)
from tools.grafana import GrafanaClient
from tools.loki import LokiClient
from tools.pbs import PbsClient
from tools.prometheus import PrometheusClient
from tools.proxmox import ProxmoxClient
from triage.analysis.analyser import Analyser
from triage.deps import Deps


@dataclass
class Homelab:
    alerts: list[Alert]
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
    topology_path: Path | None = None

    def deps(self, analyser: Analyser) -> Deps:
        return Deps(
            analyser=analyser,
            prometheus=self.prometheus,
            logs=self.loki,
            grafana=self.grafana,
            proxmox=self.proxmox,
            pbs=self.pbs,
            store=self.store,
            topology=load_topology(self.topology_path),
        )

    def requests(self) -> dict[str, int]:
        clients = {
            "prometheus": self.prometheus,
            "loki": self.loki,
            "grafana": self.grafana,
            "proxmox": self.proxmox,
            "pbs": self.pbs,
        }
        return {name: client.stats.requests for name, client in clients.items()}

    async def aclose(self) -> None:
        for client in (self.prometheus, self.loki, self.grafana, self.proxmox, self.pbs):
            await client.aclose()
        await self.store.close()


async def build_homelab(
    scenarios: list[Scenario],
    placed: dict[str, Anchor],
    *,
    prometheus_url: str,
    workdir: Path,
    delays: Delays | None = None,
) -> Homelab:
    """One set of fakes holding every scenario (none of them down), and each scenario's alert."""
    delays = delays or Delays()
    workdir.mkdir(parents=True, exist_ok=True)
    loki_fake = FakeLoki(delay_s=delays.loki_s)
    proxmox_fake = FakeProxmox(delay_s=delays.proxmox_s)
    pbs_fake = FakePbs(delay_s=delays.pbs_s)
    grafana_fake = FakeGrafana(delay_s=delays.grafana_s)
    store = open_store(f"sqlite:///{workdir / 'reports.db'}")
    await store.init()
    alerts: list[Alert] = []
    for scenario in scenarios:
        anchor = placed[scenario.name]
        fill_loki(loki_fake, scenario, anchor.t0)
        fill_proxmox(proxmox_fake, scenario, anchor)
        fill_pbs(pbs_fake, scenario, anchor.t0)
        fill_grafana(grafana_fake, scenario, anchor.t0)
        alert = make_alert(scenario, anchor.t0)
        await fill_history(store, scenario, alert)
        alerts.append(alert)
    prometheus = PrometheusClient(prometheus_url, transport=DelayTransport(delays.prometheus_s), backoff_s=0.0)
    topology = write_topology([s.topology for s in scenarios if s.topology is not None], workdir)
    return Homelab(
        alerts=alerts,
        loki_fake=loki_fake,
        proxmox_fake=proxmox_fake,
        pbs_fake=pbs_fake,
        grafana_fake=grafana_fake,
        prometheus=prometheus,
        loki=loki_fake.client(),
        grafana=grafana_fake.client(),
        proxmox=proxmox_fake.client(),
        pbs=pbs_fake.client(),
        store=store,
        topology_path=topology,
    )
