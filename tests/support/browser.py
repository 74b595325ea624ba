"""Headless Chromium for the browser tests: one command line, a one-shot run (``--dump-dom``, ``--screenshot``), and a
live page driven over the DevTools protocol.

Tests skip with a visible reason where Chromium is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support.procs import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "artifacts"
RUN_TIMEOUT_S = 60
DEVTOOLS_START_S = 30
REPLY_TIMEOUT_S = 20


def require_chromium() -> str:
    """The Chromium executable; skips the calling test when there is none."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def chromium_command(*args: str, user_data: Path) -> list[str]:
    """A headless, sandbox-free, network-quiet Chromium with its own profile folder, followed by ``args``."""
    return [
        require_chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={user_data}",
        *args,
    ]


def run_chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess[str]:
    """Run Chromium once to completion (``--dump-dom URL``, ``--screenshot=FILE URL``) and return its output."""
    command = chromium_command(*args, user_data=user_data)
    return subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)


class Page:
    """A minimal DevTools-protocol client for one page target."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one protocol command and return its result (events arriving meanwhile are skipped)."""
        message_id = next(self._ids)
        await self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=REPLY_TIMEOUT_S))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def js(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page (awaiting a promise) and return its value."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 15.0) -> Any:
        """Poll ``expression`` until it is truthy; on timeout fail with the page's state and text."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.05)
        state = await self.js("document.body.dataset.state + ' ' + document.body.innerText.slice(0, 2000)")
        raise AssertionError(f"timed out waiting for {expression!r}; page: {state}")


@contextlib.asynccontextmanager
async def devtools_page(tmp_path: Path, *, window: str = "1280,900") -> AsyncIterator[Page]:
    """A headless Chromium on a free loopback DevTools port, yielding its blank page; stopped on exit."""
    port = free_port()
    command = chromium_command(
        f"--window-size={window}",
        f"--remote-debugging-port={port}",
        "--remote-debugging-address=127.0.0.1",
        "about:blank",
        user_data=tmp_path / "chromium-profile",
    )
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        targets: list[dict[str, Any]] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:
            deadline = time.monotonic() + DEVTOOLS_START_S
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
