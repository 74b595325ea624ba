"""The chat page in headless Chromium, driven over the DevTools protocol: a question typed and sent, the tool calls
streaming in, the answer with its sources shown, recent reports listed. A screenshot goes to ``artifacts/``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from reports.store.sqlite import SqliteStore
from tests.fakes.loki import FakeLoki
from tests.support.ask import API_TOKEN, ask_settings, recent_report, served
from tests.support.llm_server import Reply, ScriptedLLM, ToolCall
from tests.support.procs import free_port
from tools.langchain_tools import build_tools
from webhook.app import create_app

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
ANSWER = "Jellyfin is slow because ffmpeg was OOM-killed (exit 137) while transcoding; raise the LXC memory to 6 GiB."


class Page:
    """A minimal DevTools-protocol client for one page target."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        await self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=20))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.05)
        state = await self.js("document.body.dataset.state + ' ' + document.body.innerText.slice(0, 2000)")
        raise AssertionError(f"timed out waiting for {expression!r}; page: {state}")


@contextlib.asynccontextmanager
async def chromium(tmp_path: Path) -> AsyncIterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--remote-debugging-port={port}",
        "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        targets: list[dict[str, Any]] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:
            deadline = time.monotonic() + 30
            while not targets:
                if time.monotonic() > deadline or proc.returncode is not None:
                    raise RuntimeError("chromium did not open its DevTools endpoint")
                with contextlib.suppress(httpx.HTTPError):
                    targets = [t for t in (await http.get("/json/list")).json() if t.get("type") == "page"]
                await asyncio.sleep(0.1)
        async with connect(targets[0]["webSocketDebuggerUrl"], max_size=None) as ws:
            page = Page(ws)
            await page.call("Page.enable")
            await page.call("Runtime.enable")
            yield page
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


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
        Reply(content=ANSWER, delay_s=1.0),
    )
    client = loki.client()
    app = create_app(settings)
    app.state.ask_source_tools = build_tools(loki=client)
    try:
        async with served(app) as base_url, chromium(tmp_path) as page:
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

            await page.wait_for("document.body.dataset.state === 'done'")
            answer = await page.js("document.querySelector('.turn .answer').textContent")
            sources = await page.js(
                "Array.from(document.querySelectorAll('.turn .sources li')).map(li => li.textContent)"
            )
            report_link = await page.js("document.querySelector('.turn .sources a').getAttribute('href')")
            reports = await page.js("Array.from(document.querySelectorAll('#reports li a')).map(a => a.textContent)")
            shot = await page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    finally:
        await client.aclose()

    assert answer == ANSWER
    assert any("loki_query" in s for s in sources) and any("HighMemory" in s for s in sources)
    assert "/reports/" in report_link
    assert reports == ["HighMemory"]
    ARTIFACTS.mkdir(exist_ok=True)
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    (ARTIFACTS / "ask-chat.png").write_bytes(png)
