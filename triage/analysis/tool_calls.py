"""Running the read-only tools a model asks for, one way for the triage follow-up round and for /ask.

A call names a tool; it runs only when the name is in the allowlist the caller built with :func:`tool_allowlist`.
:func:`run_tool` runs one call within an optional timeout and never raises for the tool's own failure: invalid
arguments, an exception or the timeout become a short ``error: …`` text the model can read. The tools report
data-source failures as text already; this is the backstop. How many calls run, what a cut or an unknown name is
answered with, how the output is bounded and shown, are the callers' own policies
(:mod:`triage.analysis.followup`, :mod:`triage.agent.toolrun`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from pydantic import ValidationError

ERROR_CHARS = 400
VALIDATION_PROBLEMS = 5


@dataclass(frozen=True)
class ToolRun:
    """What one call gave: its text, whether the tool succeeded, and what it reported beside the text."""

    text: str
    ok: bool = True
    artifact: Any = None


def tool_allowlist(tools: Iterable[BaseTool]) -> dict[str, BaseTool]:
    """The tools by name: the only names a model's call may use. Two tools of one name are a wiring error."""
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate tool names: {sorted({n for n in names if names.count(n) > 1})}")
    return {t.name: t for t in tools}


def _error(name: str, exc: Exception, *, detail: bool) -> str:
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:VALIDATION_PROBLEMS])
        return f"error: invalid arguments for {name}: {problems}"
    if detail:
        return f"error: {name} failed: {type(exc).__name__}: {exc}"
    return f"error: {name} failed ({type(exc).__name__})"


async def run_tool(
    tool: BaseTool, call: Mapping[str, Any], *, timeout_s: float | None = None, error_detail: bool = False
) -> ToolRun:
    """Run ``call`` (a tool call: ``name``, ``args``, ``id``) with ``tool``, within ``timeout_s`` when given.

    ``error_detail`` adds an exception's message to its error text (the caller redacts what it shows); without
    it, only the exception's type is named.
    """
    scope = asyncio.timeout(timeout_s)
    try:
        async with scope:
            result = await tool.ainvoke(
                {"type": "tool_call", "id": call.get("id"), "name": tool.name, "args": call["args"]}
            )
    except Exception as exc:
        if scope.expired():
            return ToolRun(f"error: {tool.name} did not answer within {timeout_s:g}s", ok=False)
        return ToolRun(_error(tool.name, exc, detail=error_detail)[:ERROR_CHARS], ok=False)
    if isinstance(result, ToolMessage):
        return ToolRun(_text(result.content), result.status != "error", result.artifact)
    # a call without an id gets the tool's content itself
    return ToolRun(_text(result))


def _text(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)
