"""The two /ask tools over our own knowledge: ``reports_search`` (the report store) and ``runbook_search`` (a real,
freshly ingested runbook index). Both return text for the model and the sources to cite beside it.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

from reports.store.sqlite import SqliteStore
from tests.support.ask import recent_report
from triage.agent.events import AskSource
from triage.agent.report_tools import build_report_tools

REPO = Path(__file__).resolve().parent.parent


def link(report_id: str) -> str:
    return f"http://sre.test/reports/{report_id}?exp=1&sig=abc"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "reports.db")
    await store.init()
    await store.save(recent_report(1, alertname="HighMemory", hours_ago=30))
    await store.save(recent_report(2, alertname="HighMemory", hours_ago=24 * 10, summary="ZFS ARC grew on pve1"))
    await store.save(recent_report(3, alertname="HostDiskFull", hours_ago=5, summary="/var filled by journald"))
    await store.save(recent_report(4, alertname="HighMemory", hours_ago=24 * 60, summary="an old one"))
    try:
        yield store
    finally:
        await store.close()


async def call(tool: BaseTool, **args: Any) -> tuple[str, list[AskSource]]:
    message = await tool.ainvoke({"type": "tool_call", "id": "call_1", "name": tool.name, "args": args})
    assert isinstance(message, ToolMessage)
    return str(message.content), list(message.artifact or [])


def reports_tool(store: Any) -> BaseTool:
    tools = build_report_tools(store=store, runbooks=None, report_link=link)
    assert [t.name for t in tools] == ["reports_search"]
    return tools[0]


async def test_reports_search_finds_reports_newest_first_within_the_window(store: SqliteStore) -> None:
    text, cited = await call(reports_tool(store), query="HighMemory", days=30)
    assert [s.kind for s in cited] == ["report", "report"]
    assert text.index("memory of the jellyfin LXC") < text.index("ZFS ARC grew")
    assert "an old one" not in text
    assert all(s.url and s.url.startswith("http://sre.test/reports/") and "sig=" in s.url for s in cited)
    assert "sig=" not in text, "signed links are for the user, not for the model"
    assert "most likely cause: jellyfin transcode cache grew without limit" in text


async def test_reports_search_falls_back_to_single_words_for_a_question_in_prose(store: SqliteStore) -> None:
    text, cited = await call(reports_tool(store), query="what happened with HostDiskFull last week")
    assert [s.name.split(" ")[0] for s in cited] == ["HostDiskFull"]
    assert "/var filled by journald" in text


async def test_reports_search_without_words_lists_the_newest_of_one_alert(store: SqliteStore) -> None:
    _, cited = await call(reports_tool(store), alertname="HighMemory", days=90, limit=5)
    assert len(cited) == 3


async def test_reports_search_says_so_when_nothing_matches(store: SqliteStore) -> None:
    text, cited = await call(reports_tool(store), query="NoSuchAlert")
    assert cited == [] and "no triage reports match 'NoSuchAlert'" in text


async def test_a_failing_report_store_is_reported_as_text(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "closed.db")
    await store.init()
    await store.close()
    text, cited = await call(reports_tool(store), query="HighMemory")
    assert text.startswith("error: the report store failed") and cited == []


@pytest.fixture(scope="module")
def runbook_index(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tools.runbooks.collection import make_client
    from tools.runbooks.embeddings import OnnxMiniLmEmbedding
    from tools.runbooks.index import RunbookIndex
    from tools.runbooks.ingest import ingest_blocking

    docs = tmp_path_factory.mktemp("runbooks")
    for name in ("memory-pressure-oom.md", "disk-filling-inodes.md"):
        shutil.copy(REPO / "runbooks" / name, docs / name)
    embedder = OnnxMiniLmEmbedding()
    client = make_client(tmp_path_factory.mktemp("chroma"), None)
    ingest_blocking(client, embedder, [docs], progress=False)
    return RunbookIndex(embedder, client=client)


async def test_runbook_search_returns_sections_and_cites_them(runbook_index: Any) -> None:
    tools = build_report_tools(store=None, runbooks=runbook_index, report_link=link)
    assert [t.name for t in tools] == ["runbook_search"]
    text, cited = await call(tools[0], query="container killed by the OOM killer, memory pressure", limit=3)
    assert cited and cited[0].kind == "runbook"
    assert cited[0].name.startswith("Memory pressure and OOM kills")
    assert cited[0].ref is not None and "memory-pressure-oom.md#" in cited[0].ref
    assert "Memory pressure and OOM kills" in text


async def test_runbook_search_on_an_empty_index_explains_why(tmp_path: Path) -> None:
    from tools.runbooks.collection import make_client
    from tools.runbooks.embeddings import OnnxMiniLmEmbedding
    from tools.runbooks.index import RunbookIndex

    index = RunbookIndex(OnnxMiniLmEmbedding(), client=make_client(tmp_path / "empty", None))
    tools = build_report_tools(store=None, runbooks=index, report_link=link)
    text, cited = await call(tools[0], query="disk full")
    assert cited == [] and "sre-triage ingest" in text
