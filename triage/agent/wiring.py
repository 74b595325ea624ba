"""Building the /ask service from settings: one client per configured source, the read-only tools, the sessions.

The clients, their tools and the runbook index come from the composition root (:mod:`triage.deps`), which opens
them through the source registry (:mod:`triage.sources`). Used by the API's lifespan and by ``sre-triage ask``;
the clients live as long as the service and are closed with it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import cast

from langchain_core.tools import BaseTool
from redis.asyncio import Redis

from reports.links import LinkSigner
from reports.store import ReportStore
from tools.http import SourceClient
from triage.agent.report_tools import REPORT_TOOL_NAMES, RunbookSearcher, build_report_tools
from triage.agent.service import AskService
from triage.agent.sessions import SessionStore
from triage.analysis.budget import RedisTokenBudget
from triage.deps import build_source_tools, open_runbook_index, open_source_clients
from triage.settings import Settings
from triage.sources import SOURCE_TOOL_NAMES

__all__ = ["READ_ONLY_TOOL_NAMES", "SOURCE_TOOL_NAMES", "open_ask_service"]

# The tools /ask may register. An allowlist, not a blocklist: a tool added to tools/ reaches the agent only once it
# is listed, after someone checked that it cannot change anything (a source's tools in its registry entry,
# triage.sources.SourceSpec.tool_names; the report tools in triage.agent.report_tools).
READ_ONLY_TOOL_NAMES = SOURCE_TOOL_NAMES | REPORT_TOOL_NAMES


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
            source_tools = build_source_tools(clients.values(), budget_chars=settings.ask.tool_output_chars)
        if runbooks is None:
            owned_index = open_runbook_index(settings)
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
