"""Building the /ask service from settings: one client per configured source, the read-only tools, the sessions.

Used by the API's lifespan and by ``sre-triage ask``; the clients live as long as the service and are closed with it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from langchain_core.tools import BaseTool
from redis.asyncio import Redis

from reports.links import LinkSigner
from reports.store import ReportStore
from tools.grafana import GrafanaClient
from tools.http import SourceClient
from tools.langchain_tools import build_tools
from tools.loki import LokiClient
from tools.pbs import PbsClient
from tools.prometheus import PrometheusClient
from tools.proxmox import ProxmoxClient
from triage.agent.report_tools import REPORT_TOOL_NAMES, RunbookSearcher, build_report_tools
from triage.agent.service import AskService
from triage.agent.sessions import SessionStore
from triage.analysis.budget import RedisTokenBudget
from triage.runbook_index import index_from_settings
from triage.settings import Settings, SourceSettings


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _common(group: SourceSettings) -> dict[str, Any]:
    assert group.url is not None
    return {"timeout_s": group.timeout_s, "verify": group.verify_tls, "ca_file": group.ca_file}


def open_source_clients(settings: Settings) -> dict[str, SourceClient]:
    """A client for every configured data source, keyed by source name."""
    clients: dict[str, SourceClient] = {}
    prom = settings.prometheus
    if prom.url:
        clients["prometheus"] = PrometheusClient(
            prom.url,
            token=_secret(prom.token),
            username=prom.username,
            password=_secret(prom.password),
            **_common(prom),
        )
    loki = settings.loki
    if loki.url:
        clients["loki"] = LokiClient(
            loki.url,
            token=_secret(loki.token),
            username=loki.username,
            password=_secret(loki.password),
            tenant=loki.tenant,
            patterns_mode=loki.patterns,
            **_common(loki),
        )
    grafana = settings.grafana
    if grafana.url and grafana.token:
        clients["grafana"] = GrafanaClient(
            grafana.url,
            token=grafana.token.get_secret_value(),
            org_id=grafana.org_id,
            org_tokens=grafana.org_token_map,
            **_common(grafana),
        )
    pve = settings.proxmox
    if pve.url and pve.token_id and pve.token_secret:
        clients["proxmox"] = ProxmoxClient(
            pve.url, token_id=pve.token_id, token_secret=pve.token_secret.get_secret_value(), **_common(pve)
        )
    pbs = settings.pbs
    if pbs.url and pbs.token_id and pbs.token_secret:
        clients["pbs"] = PbsClient(
            pbs.url, token_id=pbs.token_id, token_secret=pbs.token_secret.get_secret_value(), **_common(pbs)
        )
    return clients


# The tools /ask may register. An allowlist, not a blocklist: a tool added to tools/ reaches the agent only once it
# is listed here, after someone checked that it cannot change anything.
SOURCE_TOOL_NAMES = frozenset(
    {
        "prometheus_query",
        "prometheus_range_summary",
        "prometheus_alert_rules",
        "prometheus_label_values",
        "loki_query",
        "grafana_alert_rules",
        "grafana_annotations",
        "grafana_dashboard",
        "proxmox_guest_status",
        "proxmox_tasks",
        "proxmox_nodes",
        "pbs_tasks",
        "pbs_datastores",
        "pbs_snapshots",
    }
)
READ_ONLY_TOOL_NAMES = SOURCE_TOOL_NAMES | REPORT_TOOL_NAMES


def build_source_tools(clients: dict[str, SourceClient], *, budget_chars: int) -> list[BaseTool]:
    """The read-only tools over ``clients`` (keyed by source name), each answer within ``budget_chars``."""
    return build_tools(
        prometheus=cast(PrometheusClient | None, clients.get("prometheus")),
        loki=cast(LokiClient | None, clients.get("loki")),
        grafana=cast(GrafanaClient | None, clients.get("grafana")),
        proxmox=cast(ProxmoxClient | None, clients.get("proxmox")),
        pbs=cast(PbsClient | None, clients.get("pbs")),
        budget_chars=budget_chars,
    )


@contextlib.asynccontextmanager
async def open_ask_service(
    settings: Settings,
    *,
    redis: Redis,
    store: ReportStore | None,
    source_tools: Sequence[BaseTool] | None = None,
    runbooks: RunbookSearcher | None = None,
) -> AsyncIterator[AskService]:
    """The service with its tools; clients it opened are closed on exit.

    ``source_tools`` replaces the tools over clients built from the settings; ``runbooks`` replaces the runbook
    index the settings name. Model calls spend from the hourly LLM token budget in ``redis`` that triage uses.
    """
    clients: dict[str, SourceClient] = {}
    owned_index: object | None = None
    try:
        if source_tools is None:
            clients = open_source_clients(settings)
            source_tools = build_source_tools(clients, budget_chars=settings.ask.tool_output_chars)
        if runbooks is None:
            owned_index = index_from_settings(settings.knowledge)
            runbooks = cast(RunbookSearcher, owned_index)
        tools = [
            *source_tools,
            *build_report_tools(
                store=store, runbooks=runbooks, report_link=LinkSigner.from_settings(settings).report_url
            ),
        ]
        service = AskService(
            settings,
            sessions=SessionStore(redis, ttl_s=settings.ask.session_ttl_s),
            tools=tools,
            allowed_tool_names=READ_ONLY_TOOL_NAMES,
            budget=RedisTokenBudget(redis),
        )
        service.runbook_index = runbooks
        yield service
    finally:
        for client in clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        close_index = getattr(owned_index, "aclose", None)
        if close_index is not None:
            with contextlib.suppress(Exception):
                await close_index()
