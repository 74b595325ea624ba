"""The answer as the model writes it: ``answer_delta`` events carrying redacted text that can no longer change.

One :class:`AnswerStream` follows every model reply of a question. A reply's text is shown while no tool call has
appeared in it (tool-call chunks are never text). A reply that turns to tool calls after some text (a preamble such as
"let me check the logs") takes that text back with ``answer_delta {"text": "", "reset": true}``, so what the deltas
add up to is always the answer being written. Text leaves through a :class:`~triage.agent.stream_redaction.RedactedStream`:
whole words only, and a secret split across chunks is masked whole. The rest of the answer (its last word, the note on
what was cut) is sent by the service once the answer is complete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from langchain_core.messages import AIMessageChunk, BaseMessage

from triage.agent.events import AskEvent
from triage.agent.stream_redaction import RedactedStream, Redactor

Emit = Callable[[AskEvent], Awaitable[None]]


def text_of(message: BaseMessage) -> str:
    """The text content of a message or chunk (content given as parts is joined)."""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content)


def delta_event(text: str) -> AskEvent:
    return AskEvent("answer_delta", {"text": text})


RESET_EVENT = AskEvent("answer_delta", {"text": "", "reset": True})


class AnswerStream:
    """Deltas of the reply being streamed; :meth:`begin` before each model call, :meth:`feed` with every chunk."""

    def __init__(self, redactor: Redactor, emit: Emit) -> None:
        self._redactor = redactor
        self._emit = emit
        self._text: RedactedStream = redactor.stream()
        self._shown = False
        self._calls = False
        self._writing = False
        self._on_writing: Callable[[bool], None] | None = None

    async def begin(self, on_writing: Callable[[bool], None] | None = None) -> None:
        """A new reply starts. ``on_writing(True)`` runs when its first text arrives with no tool call before it (the
        model seems to be writing the answer), ``on_writing(False)`` when tool calls follow that text after all.
        """
        await self._take_back()
        self._text = self._redactor.stream()
        self._calls = False
        self._writing = False
        self._on_writing = on_writing

    async def feed(self, chunk: AIMessageChunk) -> None:
        if self._calls:
            return
        if chunk.tool_call_chunks or chunk.tool_calls or chunk.invalid_tool_calls:
            self._calls = True
            self._set_writing(False)
            await self._take_back()
            return
        piece = text_of(chunk)
        if not piece:
            return
        self._set_writing(True)
        text = self._text.feed(piece)
        if text:
            self._shown = True
            await self._emit(delta_event(text))

    def partial(self) -> str:
        """The reply's text shown so far, as raw text (for an answer the deadline cut off); '' after tool calls."""
        return "" if self._calls else self._text.released

    def _set_writing(self, writing: bool) -> None:
        if writing != self._writing:
            self._writing = writing
            if self._on_writing is not None:
                self._on_writing(writing)

    async def _take_back(self) -> None:
        if self._shown:
            self._shown = False
            await self._emit(RESET_EVENT)
