"""Building blocks for triage-engine tests: an alert, a world of fakes wired into ``Deps``, a check context.

world = EngineWorld()
world.proxmox.add_node("pve1")
ctx = world.context(make_alert({"instance": "10.0.0.12:9100"}))
evidence = (await guest_status.run(ctx)).evidence
await world.aclose()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reports.models import Alert, AlertStatus
from tests.fakes.grafana import FakeGrafana
from tests.fakes.loki import FakeLoki
from tests.fakes.pbs import FakePbs
from tests.fakes.proxmox import FakeProxmox
from tools.grafana import GrafanaClient
from tools.loki import LokiClient
from tools.pbs import PbsClient
from tools.prometheus import PrometheusClient
from tools.proxmox import ProxmoxClient
from triage.analysis.analyser import Analyser
from triage.analysis.budget import MemoryTokenBudget
from triage.deps import Deps
from triage.pipeline.checks.check_context import CheckContext
from triage.pipeline.plan import make_plan
from triage.settings import LlmSettings, TriageSettings


def make_alert(
    labels: dict[str, str],
    *,
    starts_at: datetime,
    annotations: dict[str, str] | None = None,
    alertname: str = "HostHighCpu",
    **extra: Any,
) -> Alert:
    return Alert(
        fingerprint=extra.pop("fingerprint", "fp-engine"),
        alertname=alertname,
        status=AlertStatus.firing,
        labels={"alertname": alertname, **labels},
        annotations=annotations or {},
        starts_at=starts_at,
        **extra,
    )


@dataclass
class EngineWorld:
    """Fakes for every source; ``deps()`` wires clients for the sources named in ``sources`` (default: all)."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    proxmox: FakeProxmox = field(default_factory=FakeProxmox)
    pbs: FakePbs = field(default_factory=FakePbs)
    grafana: FakeGrafana = field(default_factory=FakeGrafana)
    loki: FakeLoki = field(default_factory=FakeLoki)
    prometheus_url: str | None = None
    prometheus_transport: Any = None
    llm: LlmSettings | None = None
    settings: TriageSettings = field(default_factory=TriageSettings)
    _clients: list[Any] = field(default_factory=list)

    def ago(self, minutes: float) -> datetime:
        return self.now - timedelta(minutes=minutes)

    def epoch_ago(self, minutes: float) -> int:
        return int(self.ago(minutes).timestamp())

    def deps(self, *sources: str, store: Any = None, runbooks: Any = None) -> Deps:
        wanted = set(sources or ("prometheus", "loki", "grafana", "proxmox", "pbs"))
        clients: dict[str, Any] = {}
        if "proxmox" in wanted:
            clients["proxmox"] = self._keep(self.proxmox.client())
        if "pbs" in wanted:
            clients["pbs"] = self._keep(self.pbs.client())
        if "grafana" in wanted:
            clients["grafana"] = self._keep(self.grafana.client())
        if "loki" in wanted:
            clients["logs"] = self._keep(self.loki.client())
        if "prometheus" in wanted and (self.prometheus_url or self.prometheus_transport):
            clients["prometheus"] = self._keep(
                PrometheusClient(
                    self.prometheus_url or "http://prometheus.test",
                    transport=self.prometheus_transport,
                    backoff_s=0.0,
                    timeout_s=5.0,
                )
            )
        analyser = Analyser(self.llm or LlmSettings(), MemoryTokenBudget())
        return Deps(analyser=analyser, store=store, runbooks=runbooks, **clients)

    def _keep(self, client: ProxmoxClient | PbsClient | GrafanaClient | LokiClient | PrometheusClient) -> Any:
        self._clients.append(client)
        return client

    def context(self, alert: Alert, deps: Deps | None = None) -> CheckContext:
        plan = make_plan(alert, self.settings, now=self.now)
        return CheckContext(alert=alert, plan=plan, deps=deps or self.deps(), now=self.now, settings=self.settings)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
