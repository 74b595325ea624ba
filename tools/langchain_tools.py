"""Read-only LangChain tools over the data-source clients, for the ``/ask`` agent.

Only configured sources get tools: pass a client for each configured source and None for the others::

    tools = build_tools(prometheus=prom, loki=None, grafana=grafana, proxmox=pve, pbs=None)

Every tool validates its arguments with a pydantic schema, renders its answer as compact text within
``budget_chars`` (a cut says what was left out and how to narrow the query), and returns failures — an unreachable
source, a rejected query, invalid arguments — to the model as text instead of raising. No tool writes: Grafana
annotations are created only by report delivery, never through these tools.

=========================  ==================================================================
tool                       what it answers
=========================  ==================================================================
prometheus_query           PromQL instant query: each series with labels and value
prometheus_range_summary   PromQL over a window: first/last/min/avg/max per series
prometheus_alert_rules     Prometheus alerting rules, state, health, active alerts
prometheus_label_values    values of one label (find the right instance/job)
loki_query                 LogQL: log lines newest first by stream, or metric summaries
grafana_alert_rules        Grafana-managed rules, state, health, query, alert instances
grafana_annotations        annotations in a window by tags/dashboard
grafana_dashboard          a dashboard's panels and their queries
proxmox_guest_status       the VM/container behind a vmid/name/instance, and its node
proxmox_tasks              PVE tasks in a window (backups, reboots, migrations …)
proxmox_nodes              cluster nodes and their state
pbs_tasks                  PBS tasks in a window (backup, verify, GC, prune, sync)
pbs_datastores             datastore usage and estimated full date
pbs_snapshots              snapshots of a datastore or one guest's group
=========================  ==================================================================
"""

from __future__ import annotations

from langchain_core.tools import BaseTool

from tools.grafana import GrafanaClient
from tools.langchain_base import Clock, utc_now
from tools.langchain_infra import pbs_tools, proxmox_tools
from tools.langchain_metrics import grafana_tools, loki_tools, prometheus_tools
from tools.loki import LokiClient
from tools.pbs import PbsClient
from tools.prometheus import PrometheusClient
from tools.proxmox import ProxmoxClient
from tools.render import DEFAULT_BUDGET_CHARS

__all__ = ["build_tools"]

MIN_BUDGET_CHARS = 500


def build_tools(
    *,
    prometheus: PrometheusClient | None = None,
    loki: LokiClient | None = None,
    grafana: GrafanaClient | None = None,
    proxmox: ProxmoxClient | None = None,
    pbs: PbsClient | None = None,
    budget_chars: int = DEFAULT_BUDGET_CHARS,
    clock: Clock = utc_now,
) -> list[BaseTool]:
    """The read-only tools for every source that has a client; ``budget_chars`` bounds each tool's answer.

    ``clock`` gives "now" for windows without an explicit ``end`` (tests pin it).
    """
    budget = max(MIN_BUDGET_CHARS, budget_chars)
    tools: list[BaseTool] = []
    if prometheus is not None:
        tools += prometheus_tools(prometheus, budget=budget, clock=clock)
    if loki is not None:
        tools += loki_tools(loki, budget=budget, clock=clock)
    if grafana is not None:
        tools += grafana_tools(grafana, budget=budget, clock=clock)
    if proxmox is not None:
        tools += proxmox_tools(proxmox, budget=budget, clock=clock)
    if pbs is not None:
        tools += pbs_tools(pbs, budget=budget, clock=clock)
    return tools
