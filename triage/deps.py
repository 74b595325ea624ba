"""The clients one triage may use. ``None`` means the source is not configured: its checks are skipped."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, cast

from reports.models import Alert, RunbookMatch
from reports.store import ReportStore
from tools.grafana import GrafanaClient
from tools.langchain_tools import build_tools
from tools.loki import LokiClient
from tools.pbs import PbsClient
from tools.prometheus import PrometheusClient
from tools.proxmox import ProxmoxClient
from triage.analysis.analyser import Analyser
from triage.analysis.budget import TokenBudget
from triage.pipeline.runbook_matches import RunbookMatcher
from triage.settings import Settings
from triage.topology import Topology

log = logging.getLogger(__name__)


class RunbookSearch(Protocol):
    async def matches_for_alert(self, alert: Alert, limit: int = 5) -> list[RunbookMatch]: ...

    async def aclose(self) -> None: ...


@dataclass
class Deps:
    analyser: Analyser
    prometheus: PrometheusClient | None = None
    loki: LokiClient | None = None
    grafana: GrafanaClient | None = None
    proxmox: ProxmoxClient | None = None
    pbs: PbsClient | None = None
    runbooks: RunbookSearch | None = None
    store: ReportStore | None = None
    # the user's declared dependencies and host aliases (TOPOLOGY_FILE); None: not declared
    topology: Topology | None = None


def _runbook_index(settings: Settings) -> RunbookSearch | None:
    knowledge = settings.knowledge
    if not knowledge.chroma_url and not knowledge.chroma_dir.exists():
        return None  # nothing was ingested yet: the runbook check still links the alert's runbook_url
    from triage.runbook_index import index_from_settings

    try:
        return RunbookMatcher(index_from_settings(knowledge), knowledge.runbooks_base_url)
    except Exception as exc:
        # a broken index must not stop triage; the report then shows no runbook matches
        log.warning("runbook index unavailable", extra={"error_type": type(exc).__name__})
        return None


def build_deps(
    settings: Settings,
    *,
    budget: TokenBudget | None,
    store: ReportStore | None = None,
    with_runbooks: bool = True,
) -> Deps:
    """Clients for every configured source, the analyser and (when ingested) the runbook index."""
    from triage.agent.wiring import open_source_clients

    clients = open_source_clients(settings)
    deps = Deps(
        analyser=Analyser(settings.llm, budget),
        prometheus=cast(PrometheusClient | None, clients.get("prometheus")),
        loki=cast(LokiClient | None, clients.get("loki")),
        grafana=cast(GrafanaClient | None, clients.get("grafana")),
        proxmox=cast(ProxmoxClient | None, clients.get("proxmox")),
        pbs=cast(PbsClient | None, clients.get("pbs")),
        runbooks=_runbook_index(settings) if with_runbooks else None,
        store=store,
        topology=Topology.load(settings.knowledge.topology_file) if settings.knowledge.topology_file else None,
    )
    deps.analyser = followup_analyser(deps, settings, budget)
    return deps


def followup_analyser(deps: Deps, settings: Settings, budget: TokenBudget | None) -> Analyser:
    """An analyser that may run the read-only tools over ``deps``' clients in its follow-up round."""
    tools = build_tools(
        prometheus=deps.prometheus,
        loki=deps.loki,
        grafana=deps.grafana,
        proxmox=deps.proxmox,
        pbs=deps.pbs,
        budget_chars=settings.ask.tool_output_chars,
    )
    return Analyser(
        settings.llm,
        budget,
        tools=tools,
        max_tool_calls=settings.triage.followup_tool_calls,
        tool_timeout_s=settings.triage.check_timeout_s,
        tool_output_chars=settings.ask.tool_output_chars,
    )


async def close_deps(deps: Deps) -> None:
    """Close the clients :func:`build_deps` opened (the store belongs to whoever opened it)."""
    for client in (deps.prometheus, deps.loki, deps.grafana, deps.proxmox, deps.pbs):
        if client is not None:
            await client.aclose()
    if deps.runbooks is not None:
        await deps.runbooks.aclose()
