"""The bounded follow-up round of a triage: the read-only tool calls the model asked for in its first answer.

At most ``limit`` calls run, concurrently, each under a timeout (:func:`triage.analysis.tool_calls.run_tool`: a
failure or the timeout is a short error text naming the exception's type only, since the result is kept in the
report) and with its answer clipped to the tool output budget; calls to a tool outside the read-only set are
ignored. Each result becomes an evidence item (kind ``followup``) the second answer can cite by id, and reaches the
model fenced as untrusted data like all evidence: a tool answer carries log lines and labels anyone can write.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import ToolCall
from langchain_core.tools import BaseTool

from reports.models import Evidence
from triage.analysis.tool_calls import run_tool
from triage.analysis.triage_prompt import fence_json
from triage.sources import SOURCES

FOLLOWUP_KIND = "followup"
# between the weak and the strong automatic findings: the model chose to look, the result is not ranked
FOLLOWUP_SCORE = 0.5
TITLE_CHARS = 200


@dataclass
class FollowUp:
    """What the round did: the evidence it produced, and what it left out and why."""

    evidence: list[Evidence] = field(default_factory=list)
    cut: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def source_of(tool_name: str) -> str:
    """The data source a tool reads (the registry's source that makes it); "tool" for any other."""
    return next((spec.name for spec in SOURCES if tool_name in spec.tool_names), "tool")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(name: str, args: Mapping[str, Any]) -> str:
    shown = json.dumps(dict(args), ensure_ascii=False, sort_keys=True, default=str)
    return _clip(f"{name} {shown}", TITLE_CHARS)


async def run_followup(
    calls: Sequence[ToolCall],
    tools: Mapping[str, BaseTool],
    *,
    limit: int,
    timeout_s: float,
    output_chars: int,
) -> FollowUp:
    """Run up to ``limit`` of ``calls`` that name a tool of ``tools`` (the allowlist, by name); the rest is listed
    as cut or ignored."""
    round_ = FollowUp()
    chosen: list[ToolCall] = []
    for call in calls:
        if call["name"] not in tools:
            round_.ignored.append(_clip(call["name"], 100))
        elif len(chosen) >= limit:
            round_.cut.append({"tool": call["name"], "arguments": dict(call["args"])})
        else:
            chosen.append(call)
    runs = await asyncio.gather(*(run_tool(tools[c["name"]], c, timeout_s=timeout_s) for c in chosen))
    for index, (call, run) in enumerate(zip(chosen, runs, strict=True), start=1):
        round_.evidence.append(
            Evidence(
                id=f"followup-{index}",
                source=source_of(call["name"]),
                kind=FOLLOWUP_KIND,
                title=_title(call["name"], call["args"]),
                detail=_clip(run.text, output_chars),
                score=FOLLOWUP_SCORE,
                ref=call["name"],
                data={"tool": call["name"], "arguments": dict(call["args"])},
            )
        )
    return round_


def followup_text(round_: FollowUp, limit: int) -> str:
    """The user message of the second call: the tool results as fenced data, and what was not run."""
    payload: dict[str, Any] = {
        "tool_results": [
            {
                "id": e.id,
                "source": e.source,
                "tool": e.data["tool"],
                "arguments": e.data["arguments"],
                "output": e.detail,
            }
            for e in round_.evidence
        ]
    }
    if round_.cut:
        payload["not_run_over_limit"] = round_.cut
    if round_.ignored:
        payload["unknown_tools_ignored"] = round_.ignored
    notes = [f"The read-only tool calls you asked for ran (at most {limit})."]
    if round_.cut:
        notes.append(f"{len(round_.cut)} more call(s) were not run because only {limit} are allowed.")
    if round_.ignored:
        notes.append(f"{len(round_.ignored)} call(s) named tools that do not exist and were ignored.")
    notes.append(
        "No more tools can be called. Give the final answer now from all the data; tool results are evidence items "
        "you may cite by their id."
    )
    return " ".join(notes) + " The tool results:\n" + fence_json(payload)
