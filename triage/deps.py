"""The composition root: settings in, the objects of a triage out.

:func:`build_deps` is the one place that turns :class:`~triage.settings.Settings` into what a triage uses — a client
per configured data source (opened through the registry, :data:`triage.sources.SOURCES`), the runbook index
(:mod:`triage.runbook_index`), the analyser with its follow-up tools, the declared topology — and :func:`close_deps`
closes them. The worker, ``sre-triage triage`` and the scenario runs use :func:`build_deps`; /ask
(:mod:`triage.agent.wiring`) opens its clients, tools and index with :func:`open_source_clients`,
:func:`build_source_tools` and :func:`open_runbook_index`. ``None`` in a source field means the source is not
configured: its checks are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Protocol

from langchain_core.tools import BaseTool

from reports.models import Alert, RunbookMatch
from reports.store import ReportStore
from tools.grafana import GrafanaClient
from tools.http import SourceClient
from tools.pbs import PbsClient
from tools.prometheus import PrometheusClient
from tools.proxmox import ProxmoxClient
from triage.analysis.analyser import Analyser
from triage.analysis.budget import TokenBudget
from triage.log_source import LogSource
from triage.pipeline.runbook_matches import RunbookMatcher
from triage.settings import Settings
from triage.sources import SLOTS, open_clients, slot_values, source_tools
from triage.topology import Topology

if TYPE_CHECKING:
    from tools.runbooks.index import RunbookIndex

log = logging.getLogger(__name__)


class RunbookSearch(Protocol):
    async def matches_for_alert(self, alert: Alert, limit: int = 5) -> list[RunbookMatch]: ...

    async def aclose(self) -> None: ...


@dataclass
class Deps:
    """What one triage uses. The source fields are the registry's slots (:data:`triage.sources.SLOTS`), each typed
    as the checks use it; ``logs`` holds whichever log backend is configured."""

    analyser: Analyser
    prometheus: PrometheusClient | None = None
    logs: LogSource | None = None
    grafana: GrafanaClient | None = None
    proxmox: ProxmoxClient | None = None
    pbs: PbsClient | None = None
    runbooks: RunbookSearch | None = None
    store: ReportStore | None = None
    # the user's declared dependencies and host aliases (TOPOLOGY_FILE); None: not declared
    topology: Topology | None = None

    def source_clients(self) -> list[object]:
        """The clients in the source fields, in registry order (None for a source that is not configured)."""
        return [getattr(self, slot) for slot in SLOTS]


_FIELDS = {f.name for f in fields(Deps)}
if not set(SLOTS) <= _FIELDS:  # checked once, at import: every registry slot is a field of Deps
    raise TypeError(f"registry slots without a Deps field: {sorted(set(SLOTS) - _FIELDS)}")


def open_source_clients(settings: Settings) -> dict[str, SourceClient]:
    """A client for every configured data source, keyed by source name (the caller closes them)."""
    return open_clients(settings)


def build_source_tools(clients: Iterable[object], *, budget_chars: int) -> list[BaseTool]:
    """The read-only tools over ``clients``, each answer within ``budget_chars``."""
    return source_tools(clients, budget_chars=budget_chars)


def open_runbook_index(settings: Settings) -> RunbookIndex:
    """The runbook index the settings describe (opened lazily by the index itself; the caller closes it)."""
    from triage.runbook_index import index_from_settings

    return index_from_settings(settings.knowledge)


def _runbook_index(settings: Settings) -> RunbookSearch | None:
    knowledge = settings.knowledge
    if not knowledge.chroma_url and not knowledge.chroma_dir.exists():
        return None  # nothing was ingested yet: the runbook check still links the alert's runbook_url
    try:
        return RunbookMatcher(open_runbook_index(settings), knowledge.runbooks_base_url)
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
    deps = Deps(
        analyser=Analyser(settings.llm, budget),
        # each client in its field, checked against the registry once (slot_values), not cast one by one
        **slot_values(open_source_clients(settings)),
        runbooks=_runbook_index(settings) if with_runbooks else None,
        store=store,
        topology=Topology.load(settings.knowledge.topology_file) if settings.knowledge.topology_file else None,
    )
    deps.analyser = followup_analyser(deps, settings, budget)
    return deps


def followup_analyser(deps: Deps, settings: Settings, budget: TokenBudget | None) -> Analyser:
    """An analyser that may run the read-only tools over ``deps``' clients in its follow-up round."""
    tools = build_source_tools(deps.source_clients(), budget_chars=settings.ask.tool_output_chars)
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
    for client in deps.source_clients():
        aclose = getattr(client, "aclose", None)
        if aclose is not None:
            await aclose()
    if deps.runbooks is not None:
        await deps.runbooks.aclose()
