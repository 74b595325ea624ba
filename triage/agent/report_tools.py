"""Two read-only tools of /ask over our own knowledge: stored triage reports and the runbook index.

Both return text for the model and, beside it, the sources they consulted (LangChain's ``content_and_artifact``), so
the answer can cite report links and runbook sections without parsing text. Failures come back as text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from reports.models import Report
from reports.store import ReportStore
from tools.runbooks.index import SearchResult
from triage.agent.events import AskSource

REPORT_TOOL_NAMES = frozenset({"reports_search", "runbook_search"})
SUMMARY_CHARS = 400
EXCERPT_CHARS = 600


class RunbookSearcher(Protocol):
    """What ``runbook_search`` needs of the runbook index (:class:`tools.runbooks.index.RunbookIndex`)."""

    async def search(self, query: str, limit: int = 5) -> SearchResult: ...


class ReportsSearchArgs(BaseModel):
    query: str = Field(
        "",
        max_length=300,
        description="Keywords that must all appear in the alert name, labels or summary (e.g. 'HighMemory infra'). "
        "Empty lists the newest reports.",
    )
    alertname: str | None = Field(None, max_length=200, description="Only reports of this exact alert name.")
    days: int = Field(30, ge=1, le=365, description="How many days back to look.")
    limit: int = Field(5, ge=1, le=20, description="Most reports to return.")


class RunbookSearchArgs(BaseModel):
    query: str = Field(..., min_length=1, max_length=300, description="What to look up, e.g. 'zfs pool degraded'.")
    limit: int = Field(4, ge=1, le=10, description="Most runbook sections to return.")


def _report_line(report: Report, url: str) -> str:
    alert = report.alert
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k != "alertname")[:300]
    lines = [
        f"report {report.id}: {alert.alertname} [{report.status.value}] started {alert.starts_at.isoformat()}"
        + (f", ended {alert.ends_at.isoformat()}" if alert.ends_at else ""),
        f"  labels: {labels or '(none)'}",
        f"  link: {url}",
    ]
    if report.summary:
        lines.append(f"  summary: {report.summary[:SUMMARY_CHARS]}")
    if report.hypotheses:
        top = max(report.hypotheses, key=lambda h: h.confidence)
        lines.append(f"  most likely cause: {top.title} (confidence {top.confidence:.2f})")
    return "\n".join(lines)


class ReportSearch:
    """``reports_search``: past triage reports from the report store."""

    def __init__(self, store: ReportStore, *, report_link: Callable[[str], str]) -> None:
        self.store = store
        self.report_link = report_link

    async def __call__(
        self, query: str = "", alertname: str | None = None, days: int = 30, limit: int = 5
    ) -> tuple[str, list[AskSource]]:
        since = datetime.now(UTC) - timedelta(days=days)
        try:
            reports = await self._find(query.strip(), alertname, since, limit)
        except Exception as exc:
            return f"error: the report store failed ({type(exc).__name__})", []
        if not reports:
            return f"no triage reports match {query!r} in the last {days} days", []
        cited: list[AskSource] = []
        lines = []
        for report in reports:
            # the model sees the plain path; the signed link (access for LINK_TTL_S) goes only to the user
            lines.append(_report_line(report, f"/reports/{report.id}"))
            title = f"{report.alert.alertname} ({report.alert.starts_at.strftime('%Y-%m-%d %H:%M')} UTC)"
            cited.append(AskSource(kind="report", name=title, ref=report.id, url=self.report_link(report.id)))
        return "\n".join(lines), cited

    async def _find(self, query: str, alertname: str | None, since: datetime, limit: int) -> list[Report]:
        if not query:
            return list(await self.store.list(alertname=alertname, since=since, limit=limit))
        found = await self.store.search(query, limit=limit * 4)
        # all words must match in the store; a question phrased in prose often has none that do, so each word is
        # tried on its own as well, longest (most specific) first
        if not found and len(query.split()) > 1:
            seen: set[str] = set()
            for word in sorted(set(query.split()), key=len, reverse=True)[:4]:
                for report in await self.store.search(word, limit=limit * 2):
                    if report.id not in seen:
                        seen.add(report.id)
                        found.append(report)
        recent = [
            r for r in found if r.alert.starts_at >= since and (alertname is None or r.alert.alertname == alertname)
        ]
        recent.sort(key=lambda r: r.alert.starts_at, reverse=True)
        return recent[:limit]


class RunbookSearch:
    """``runbook_search``: sections of the bundled and indexed runbooks."""

    def __init__(self, index: RunbookSearcher) -> None:
        self.index = index

    async def __call__(self, query: str, limit: int = 4) -> tuple[str, list[AskSource]]:
        try:
            result = await self.index.search(query, limit)
        except Exception as exc:
            return f"error: the runbook index failed ({type(exc).__name__})", []
        if not result.hits:
            return result.reason or f"no runbook section matches {query!r}", []
        lines = []
        cited = []
        for hit in result.hits:
            ref = f"{hit.source}#{hit.anchor}" if hit.anchor else hit.source
            lines.append(
                f"runbook {hit.title!r}, section {hit.section!r} ({ref}, score {hit.score:.3f}):\n"
                f"{hit.excerpt[:EXCERPT_CHARS]}"
            )
            cited.append(AskSource(kind="runbook", name=f"{hit.title} › {hit.section}", ref=ref))
        return "\n\n".join(lines), cited


def build_report_tools(
    *, store: ReportStore | None, runbooks: RunbookSearcher | None, report_link: Callable[[str], str]
) -> list[BaseTool]:
    """The read-only ``reports_search`` and ``runbook_search`` tools, for the sources that exist.

    ``report_link`` turns a report id into the link cited to the user (signed, see :mod:`reports.links`).
    """
    tools: list[BaseTool] = []
    if store is not None:
        tools.append(
            StructuredTool.from_function(
                coroutine=ReportSearch(store, report_link=report_link),
                name="reports_search",
                description="Search past triage reports (alert name, labels, summary, most likely cause, link). "
                "Use it for 'what happened with alert X', 'has this fired before', 'what did the last triage say'.",
                args_schema=ReportsSearchArgs,
                response_format="content_and_artifact",
            )
        )
    if runbooks is not None:
        tools.append(
            StructuredTool.from_function(
                coroutine=RunbookSearch(runbooks),
                name="runbook_search",
                description="Search the runbooks (procedures and known fixes) for a symptom, service or alert.",
                args_schema=RunbookSearchArgs,
                response_format="content_and_artifact",
            )
        )
    return tools
