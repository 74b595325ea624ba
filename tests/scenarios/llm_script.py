"""A scripted LLM for scenario runs: answers the triage call, or plays a tool-calling agent that calls each tool once.

:class:`ScenarioResponder` is a :class:`~tests.support.llm_server.ScriptedLLM` responder. A triage request (it asks
for structured output) gets a well-formed answer citing the first evidence ids of the prompt. An agent request (it
offers tools without forcing one) gets the next tool call of the current plan, one per round trip, then a final
answer — the common agent design, with the tool choice made for it so that only its shape is measured.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reports.models import Alert, Evidence, History, RunbookMatch
from tests.support.llm_server import RecordedRequest, Reply, ToolCall
from triage.analysis.analyser import Analyser, Analysis
from triage.analysis.triage_prompt import example_data

# an evidence row starts a line with its id (["e1", …]); a follow-up result is an object with an "id"
_EVIDENCE_ID = re.compile(r'(?:"id": ?"|^\[")([^"\\]{1,200})"', re.MULTILINE)

ToolPlan = list[tuple[str, dict[str, Any]]]


def _is_triage_request(body: dict[str, Any]) -> bool:
    if isinstance(body.get("response_format"), dict):
        return True
    choice = body.get("tool_choice")
    return isinstance(choice, dict) or choice in ("required", "any")


@dataclass
class ScenarioResponder:
    """Answers every request after ``delay_s`` (the model's think time); ``plan`` is the agent's tool sequence."""

    delay_s: float = 1.5
    plan: ToolPlan = field(default_factory=list)
    triage_calls: int = 0
    agent_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: RecordedRequest) -> Reply:
        body = request.body
        if _is_triage_request(body):
            with self._lock:
                self.triage_calls += 1
            return self._triage(request)
        with self._lock:
            self.agent_calls += 1
        done = sum(1 for m in request.messages if m.get("role") == "tool")
        if done < len(self.plan):
            name, args = self.plan[done]
            return Reply(tool_calls=[ToolCall(name, args)], delay_s=self.delay_s)
        return Reply(
            content="The evidence points at the most recent change before the alert; see the tool results above.",
            delay_s=self.delay_s,
        )

    def _triage(self, request: RecordedRequest) -> Reply:
        # the ids of the alert's data, not of the worked example before it
        data = request.prompt_text.split(example_data(), 1)[-1]
        ids = list(dict.fromkeys(_EVIDENCE_ID.findall(data)))
        answer = {
            "hypotheses": [
                {
                    "title": "The top-ranked evidence item is the cause",
                    "confidence": 0.7,
                    "evidence_ids": ids[:2],
                    "next_steps": ["Confirm the change in the timeline", "Roll it back if it is the cause"],
                },
                {
                    "title": "A resource limit was reached",
                    "confidence": 0.3,
                    "evidence_ids": ids[2:3],
                    "next_steps": ["Check the saturation panel of the host"],
                },
            ],
        }
        return Reply.structured_output(answer, delay_s=self.delay_s)


class TimedAnalyser(Analyser):
    """An analyser that remembers how long its last analysis (the LLM call) took."""

    last_s: float = 0.0

    async def analyse(
        self,
        alert: Alert,
        evidence: list[Evidence],
        runbooks: list[RunbookMatch],
        history: History,
        *,
        now: datetime | None = None,
    ) -> Analysis:
        started = time.perf_counter()
        try:
            return await super().analyse(alert, evidence, runbooks, history, now=now)
        finally:
            self.last_s = time.perf_counter() - started


def agent_tool_plan(alert: Alert, now: datetime, tool_names: list[str], datastore: str | None) -> ToolPlan:
    """Arguments an agent would pass to each tool for ``alert``: every tool once, in the order given."""
    instance = alert.labels.get("instance") or alert.labels.get("hostname") or alert.alertname
    host = instance.split(":", 1)[0]
    end = now.isoformat()
    window: dict[str, Any] = {"lookback_minutes": 60, "end": end}
    expr = f'up{{instance="{instance}"}}'
    arguments: dict[str, Callable[[], dict[str, Any]]] = {
        "prometheus_query": lambda: {"query": expr},
        "prometheus_range_summary": lambda: {
            "query": f'1 - avg by (instance) (rate(node_cpu_seconds_total{{instance="{instance}",mode="idle"}}[5m]))',
            **window,
        },
        "prometheus_alert_rules": lambda: {"state": "firing"},
        "prometheus_label_values": lambda: {"label": "instance", "match": '{job="node"}', **window},
        "loki_query": lambda: {"query": f'{{host="{host}"}} |~ "(?i)error|fail"', **window},
        "grafana_alert_rules": lambda: {"name_contains": alert.alertname},
        "grafana_annotations": lambda: dict(window),
        "grafana_dashboard": lambda: {"uid": alert.dashboard_uid or "node-exporter"},
        "proxmox_guest_status": lambda: {"guest": instance},
        "proxmox_tasks": lambda: {"lookback_minutes": 120, "end": end},
        "proxmox_nodes": lambda: {},
        "pbs_tasks": lambda: {"lookback_minutes": 120, "end": end},
        "pbs_datastores": lambda: {},
        "pbs_snapshots": lambda: {"store": datastore or "backup"},
    }
    return [(name, arguments[name]() if name in arguments else {}) for name in tool_names]
