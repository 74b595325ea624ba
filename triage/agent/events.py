"""What one /ask run produces: a stream of events, the sources it consulted, and the errors it can end with.

The same event stream feeds the server-sent events of ``POST /ask/stream``, the JSON answer of ``POST /ask`` and the
terminal output of ``sre-triage ask``. Event types::

    status      progress in words ("asking the model", "3 tool calls running")
    tool_start  a tool call begins: id, name, args
    tool_end    a tool call ended: id, name, ok, ms, chars, truncated, preview
    answer_delta  more of the answer as the model writes it: text (redacted, final); ``reset: true`` (text "") takes
                back what the deltas showed so far (text the model wrote before turning to tool calls). The deltas
                since the last reset add up to the answer's text.
    answer      the answer: text, sources, what was cut, token usage
    error       the run failed: message (never a secret), code
    done        always last
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

EventType = Literal["status", "tool_start", "tool_end", "answer_delta", "answer", "error", "done"]


@dataclass(frozen=True)
class AskEvent:
    type: EventType
    data: dict[str, Any] = field(default_factory=dict)

    def sse(self) -> str:
        """The event in server-sent-events framing (JSON data on one line)."""
        return f"event: {self.type}\ndata: {json.dumps(self.data, ensure_ascii=False, default=str)}\n\n"


class AskSource(BaseModel):
    """One thing the answer is based on: a tool call, a runbook section or a stored triage report."""

    kind: Literal["tool", "runbook", "report"]
    name: str
    args: dict[str, Any] | None = None
    ok: bool = True
    ref: str | None = None
    url: str | None = None


class AskUsage(BaseModel):
    model: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class AskResult(BaseModel):
    answer: str
    sources: list[AskSource] = Field(default_factory=list)
    cut: list[str] = Field(default_factory=list)
    tool_calls: int = 0
    usage: AskUsage | None = None


class AskError(Exception):
    """An /ask run could not produce an answer. ``code`` is stable; the message is safe to show to the user."""

    code = "ask_failed"
    status_code = 500


class LlmFailed(AskError):
    """The language model could not be reached, refused the request or answered with something unusable."""

    code = "llm_failed"
    status_code = 502


class LlmNotConfigured(AskError):
    code = "llm_not_configured"
    status_code = 503


class SessionNotFound(AskError):
    """The session id is unknown, expired, or belongs to someone else (indistinguishable on purpose)."""

    code = "session_not_found"
    status_code = 404
