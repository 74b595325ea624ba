"""Shared pieces of the /ask tests: settings pointing at the scripted model, recent reports, event collection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn

from reports.models import Hypothesis, Report, ReportStatus
from tests.support.llm_server import RecordedRequest, ScriptedLLM
from tests.support.procs import free_port
from tests.support.stores import make_alert
from triage.agent.events import AskEvent
from triage.settings import Settings

# Every configured secret of the /ask tests: none may appear in an answer, an event or a request to the model.
SECRET_VALUES = [
    "api-token-5ecret-ask-0001",
    "sk-llm-key-5ecret-0002",
    "loki-token-5ecret-0003",
    "glsa_grafana5ecret0004",
    "0a1b2c3d-pve5ecret-0005",
    "pbs5ecret-0006",
    "prom-pass-5ecret-0007",
    "test-webhook-token",
]
API_TOKEN = "api-token-5ecret-ask-0001"


def ask_settings(make_settings: Callable[..., Settings], llm: ScriptedLLM | None, **ask: Any) -> Settings:
    """Settings with every source configured (secrets included), the scripted model, and /ask limits."""
    groups: dict[str, dict[str, Any]] = {
        "api": {"api_token": API_TOKEN, "public_url": "http://sre.test"},
        "prometheus": {"url": "http://prometheus.test", "username": "prom", "password": "prom-pass-5ecret-0007"},
        "loki": {"url": "http://loki.test", "token": "loki-token-5ecret-0003"},
        "grafana": {"url": "http://grafana.test", "token": "glsa_grafana5ecret0004"},
        "proxmox": {
            "url": "https://pve.test:8006",
            "token_id": "root@pam!triage",
            "token_secret": "0a1b2c3d-pve5ecret-0005",
        },
        "pbs": {"url": "https://pbs.test:8007", "token_id": "root@pam!triage", "token_secret": "pbs5ecret-0006"},
        "ask": ask,
    }
    if llm is not None:
        groups["llm"] = {
            "openai_base_url": llm.url,
            "openai_api_key": "sk-llm-key-5ecret-0002",
            "llm_model": "test-model",
        }
    return make_settings(**groups)


def recent_report(n: int, *, alertname: str = "HighMemory", hours_ago: float = 30, summary: str = "") -> Report:
    """A triaged report of an alert that started ``hours_ago`` (reports_search looks back from now)."""
    alert = make_alert(n, alertname=alertname).model_copy(
        update={
            "starts_at": datetime.now(UTC) - timedelta(hours=hours_ago),
            "labels": {"alertname": alertname, "instance": "infra:9100", "severity": "warning"},
        }
    )
    return Report(
        id=alert.occurrence_key,
        alert=alert,
        status=ReportStatus.triaged,
        summary=summary or f"{alertname} on infra: memory of the jellyfin LXC grew after a transcode burst",
        hypotheses=[Hypothesis(title="jellyfin transcode cache grew without limit", confidence=0.7)],
    )


class Events:
    """An ``emit`` callback that keeps every event."""

    def __init__(self) -> None:
        self.items: list[AskEvent] = []
        self.times: list[float] = []

    async def __call__(self, event: AskEvent) -> None:
        self.items.append(event)
        self.times.append(time.monotonic())

    def span_s(self, first: str, last: str) -> float:
        """Seconds from the first event of type ``first`` to the last of type ``last``."""
        start = min(t for e, t in zip(self.items, self.times, strict=True) if e.type == first)
        end = max(t for e, t in zip(self.items, self.times, strict=True) if e.type == last)
        return end - start

    def types(self) -> list[str]:
        return [e.type for e in self.items]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e.data for e in self.items if e.type == kind]


def tool_messages(request: RecordedRequest) -> list[dict[str, Any]]:
    return [m for m in request.messages if m.get("role") == "tool"]


def everything_sent(llm: ScriptedLLM) -> str:
    """Every request body the model endpoint received, headers excluded (the API key belongs there)."""
    return "\n".join(json.dumps(r.body, ensure_ascii=False) for r in llm.requests)


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Server-sent events of a complete stream body as (event, data) pairs; comments are skipped."""
    events = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        kind, data = "message", []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((kind, json.loads("\n".join(data))))
    return events


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """Run ``app`` on a real uvicorn on a free loopback port inside the test's event loop; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", ws="none")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn exited before it started")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)
