"""The chat page in headless Chromium, driven over the DevTools protocol: a question typed and sent, the tool calls
streaming in, the answer appearing as the model writes it and then shown with its sources, recent reports listed. A
screenshot goes to ``artifacts/``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reports.store.sqlite import SqliteStore
from tests.fakes.loki import FakeLoki
from tests.support.ask import API_TOKEN, ask_settings, recent_report, served
from tests.support.browser import ARTIFACTS, devtools_page
from tests.support.llm_server import Reply, ScriptedLLM, ToolCall
from tools.langchain_tools import build_tools
from webhook.app import create_app

pytestmark = pytest.mark.slow

ANSWER = "Jellyfin is slow because ffmpeg was OOM-killed (exit 137) while transcoding; raise the LXC memory to 6 GiB."
# the model writes the answer in pieces of about two words, a tenth of a second apart
ANSWER_CHUNKS = [ANSWER[i : i + 12] for i in range(0, len(ANSWER), 12)]


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


async def test_a_question_typed_in_the_chat_page_streams_tool_calls_and_shows_the_answer(
    tmp_path: Path, make_settings: Any, llm: ScriptedLLM
) -> None:
    settings = ask_settings(make_settings, llm)
    store = SqliteStore(settings.storage.database_url.removeprefix("sqlite:///"))
    await store.init()
    await store.save(recent_report(1, alertname="HighMemory", hours_ago=30))
    await store.close()
    loki = FakeLoki(token="loki-token-5ecret-0003", delay_s=0.6)
    loki.push({"service": "jellyfin"}, 'level=error msg="transcode failed: ffmpeg exited 137"', at=datetime.now(UTC))
    llm.push(
        Reply(
            tool_calls=[
                ToolCall("loki_query", {"query": '{service="jellyfin"} |= "error"', "lookback_minutes": 1440}),
                ToolCall("reports_search", {"query": "HighMemory"}),
            ]
        ),
        Reply(chunks=ANSWER_CHUNKS, delay_s=1.0, chunk_delay_s=0.1),
    )
    client = loki.client()
    app = create_app(settings)
    app.state.ask_source_tools = build_tools(loki=client)
    try:
        async with served(app) as base_url, devtools_page(tmp_path) as page:
            await page.call("Page.navigate", url=f"{base_url}/")
            await page.wait_for("document.readyState === 'complete' && !!document.getElementById('token')")
            assert await page.js("!document.getElementById('token-panel').hidden"), "the page asks for the token"
            await page.js(
                f"document.getElementById('token').value = {json.dumps(API_TOKEN)};"
                "document.getElementById('token-form').requestSubmit(); true"
            )
            await page.wait_for("document.querySelectorAll('#reports li').length > 0")
            assert await page.js("sessionStorage.getItem('sre-triage.api-token')") == API_TOKEN

            await page.js(
                "document.getElementById('question').value = 'why is jellyfin slow since yesterday?';"
                "document.getElementById('send').click(); true"
            )
            # progress is visible while the model is still writing the answer
            tools_seen = await page.wait_for(
                "document.body.dataset.state === 'streaming' && "
                "document.querySelectorAll('#progress li.tool.ok').length === 2 && "
                "Array.from(document.querySelectorAll('#progress li.tool')).map(li => li.textContent).join('\\n')"
            )
            assert "loki_query" in tools_seen and "reports_search" in tools_seen
            assert not await page.js("!!document.querySelector('.turn .answer')"), "answer shown before it came"

            # the answer appears as the model writes it, before it is complete
            draft = await page.wait_for(
                "(() => { const d = document.querySelector('.turn .answer.draft');"
                f" return d && d.textContent.length > 0 && d.textContent.length < {len(ANSWER)} && d.textContent; }})()"
            )
            assert ANSWER.startswith(draft), draft

            await page.wait_for("document.body.dataset.state === 'done'")
            drafts_left = await page.js("document.querySelectorAll('.turn .answer.draft').length")
            answer = await page.js("document.querySelector('.turn .answer').textContent")
            sources = await page.js(
                "Array.from(document.querySelectorAll('.turn .sources li')).map(li => li.textContent)"
            )
            report_link = await page.js("document.querySelector('.turn .sources a').getAttribute('href')")
            reports = await page.js("Array.from(document.querySelectorAll('#reports li a')).map(a => a.textContent)")
            shot = await page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    finally:
        await client.aclose()

    assert answer == ANSWER and drafts_left == 0
    assert any("loki_query" in s for s in sources) and any("HighMemory" in s for s in sources)
    assert "/reports/" in report_link
    assert reports == ["HighMemory"]
    ARTIFACTS.mkdir(exist_ok=True)
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    (ARTIFACTS / "ask-chat.png").write_bytes(png)
