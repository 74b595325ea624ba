"""/ask as one object the HTTP routes and the CLI share: session, prompt, bounded agent, redaction, history.

:meth:`AskService.ask` answers one question; :meth:`AskService.stream` runs it as a task and yields its events.
Closing the stream (the client went away) cancels the task, and with it the model call and every running tool call.
:meth:`AskService.admit` is the door in front of both: it refuses a question while the hourly LLM budget is spent or
``ASK_MAX_CONCURRENT`` questions are running (429 each), and hands out the slot the caller releases when done.

The answer streams as ``answer_delta`` events while the model writes it; once it is complete, the service sends what the
deltas have not carried yet (the last words, the note on what was cut), so that the deltas add up to the ``answer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from tools.credentials import secret_values
from triage.agent.admission import AskBudget, AskSlot, AskSlots
from triage.agent.agent import AskAgent, AskLimits
from triage.agent.answer_stream import RESET_EVENT, delta_event
from triage.agent.ask_prompt import build_system_prompt
from triage.agent.events import AskError, AskEvent, AskResult
from triage.agent.llm import ask_chat_model
from triage.agent.sessions import Session, SessionStore, Turn
from triage.agent.stream_redaction import Redactor
from triage.analysis.budget import TokenBudget
from triage.settings import Settings

log = logging.getLogger("triage.agent")

Emit = Callable[[AskEvent], Awaitable[None]]
HEARTBEAT_S = 10.0
# The agent enforces the deadline itself; this outer margin only catches a tool that ignores cancellation.
DEADLINE_MARGIN_S = 5.0


class InvalidQuestion(AskError):
    code = "invalid_question"
    status_code = 422


class AskService:
    """Answers questions for one process. Built at start-up with long-lived tools, sessions and (lazily) the model."""

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: SessionStore,
        tools: Sequence[BaseTool],
        model: BaseChatModel | None = None,
        allowed_tool_names: frozenset[str] | None = None,
        budget: TokenBudget | None = None,
    ) -> None:
        """``budget`` is the hourly LLM token budget shared with triage; without one, /ask is not metered."""
        if allowed_tool_names is not None:
            unknown = sorted(t.name for t in tools if t.name not in allowed_tool_names)
            if unknown:
                raise ValueError(f"tools outside the read-only set cannot be given to /ask: {unknown}")
        self.settings = settings
        self.sessions = sessions
        self.tools = list(tools)
        self.limits = AskLimits.from_settings(settings.ask)
        self.redactor = Redactor(secret_values(settings))
        self._model = model
        self._agent: AskAgent | None = None
        self.budget = (
            AskBudget(budget, settings.llm.llm_hourly_token_budget, reply_tokens=settings.llm.llm_max_output_tokens)
            if budget is not None
            else None
        )
        self.slots = AskSlots(settings.ask.max_concurrent)
        # the index behind runbook_search, so the API's readiness can check the very object /ask searches
        self.runbook_index: object | None = None

    def agent(self) -> AskAgent:
        """The agent (LlmNotConfigured when no model endpoint is set)."""
        if self._agent is None:
            model = self._model if self._model is not None else ask_chat_model(self.settings.llm)
            self._agent = AskAgent(
                model,
                self.tools,
                self.limits,
                model_name=self.settings.llm.llm_model,
                redactor=self.redactor,
                budget=self.budget,
            )
        return self._agent

    async def admit(self) -> AskSlot:
        """A slot for one new question; TooManyQuestions or BudgetSpent (both 429) when it cannot start now.

        The caller releases the slot when the question is over (answered, failed or abandoned).
        """
        slot = self.slots.acquire()
        try:
            if self.budget is not None:
                await self.budget.check()
        except BaseException:
            slot.release()
            raise
        return slot

    def check_question(self, question: str) -> str:
        text = question.strip()
        if not text:
            raise InvalidQuestion("the question is empty")
        if len(text) > self.settings.ask.max_question_chars:
            raise InvalidQuestion(f"the question is longer than {self.settings.ask.max_question_chars} characters")
        return text

    async def open_session(self, session_id: str | None, owner: str) -> Session:
        """The caller's session: a new one when no id is given, else the stored one (SessionNotFound otherwise)."""
        if session_id is None:
            return await self.sessions.create(owner)
        return await self.sessions.get(session_id, owner)

    async def ask(self, question: str, *, session: Session, emit: Emit) -> AskResult:
        """Answer one question in ``session`` and store the turn. Events pass through the redactor."""
        text = self.check_question(question)
        agent = self.agent()
        shown: list[str] = []  # the answer_delta texts since the last reset

        async def safe_emit(event: AskEvent) -> None:
            event = self.redactor.event(event)
            if event.type == "answer_delta":
                if event.data.get("reset"):
                    shown.clear()
                shown.append(str(event.data.get("text", "")))
            await emit(event)

        history = [(t.question, t.answer) for t in session.turns[-self.settings.ask.history_turns :]]
        if not self.settings.ask.history_turns:
            history = []
        prompt = build_system_prompt(self.settings, self.tools)
        try:
            async with asyncio.timeout(self.limits.deadline_s + DEADLINE_MARGIN_S):
                result = await agent.run(system_prompt=prompt, question=text, history=history, emit=safe_emit)
        except TimeoutError:
            raise AskError("the question was not answered within its deadline") from None
        result.answer = self.redactor.redact(result.answer)
        result = AskResult.model_validate(self.redactor.redact_data(result.model_dump(mode="json")))
        answer = result.answer + (("\n\n" + cut_sentence(result.cut)) if result.cut else "")
        result.answer = answer
        await _finish_deltas(safe_emit, "".join(shown), answer)
        turn = Turn(question=text, answer=answer, sources=[s.name for s in result.sources])
        await self.sessions.append(session, turn)
        log.info(
            "ask answered",
            extra={
                "session": session.id[:8],
                "tool_calls": result.tool_calls,
                "cut": result.cut,
                "llm_calls": result.usage.calls if result.usage else 0,
            },
        )
        return result

    async def stream(self, question: str, *, session: Session) -> AsyncIterator[AskEvent | None]:
        """Events of one question (``None`` is a heartbeat); the last is always ``done``.

        Leaving the iteration early cancels the work.
        """
        queue: asyncio.Queue[AskEvent | None] = asyncio.Queue()

        async def emit(event: AskEvent) -> None:
            await queue.put(self.redactor.event(event))

        async def work() -> None:
            try:
                result = await self.ask(question, session=session, emit=emit)
                await emit(answer_event(result, session.id))
            except AskError as exc:
                await emit(error_event(exc))
            except Exception as exc:
                log.error("ask failed", exc_info=exc)
                await emit(AskEvent("error", {"code": "internal_error", "message": "internal error; see the log"}))
            finally:
                await queue.put(None)

        task = asyncio.create_task(work(), name="ask")
        try:
            yield AskEvent("status", {"message": "question received", "session_id": session.id})
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_S)
                except TimeoutError:
                    yield None
                    continue
                if item is None:
                    break
                yield item
            yield AskEvent("done", {"session_id": session.id})
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _finish_deltas(emit: Emit, shown: str, answer: str) -> None:
    """Send what the deltas have not carried of ``answer``; all of it, after a reset, if they showed something else."""
    if not answer.startswith(shown):
        await emit(RESET_EVENT)
        shown = ""
    if len(answer) > len(shown):
        await emit(delta_event(answer[len(shown) :]))


def cut_sentence(cut: Sequence[str]) -> str:
    """The sentence appended to an answer a bound shortened."""
    return "Note: this answer may be incomplete: " + "; ".join(cut) + "."


def answer_event(result: AskResult, session_id: str) -> AskEvent:
    return AskEvent(
        "answer",
        {
            "answer": result.answer,
            "session_id": session_id,
            "sources": [s.model_dump(mode="json") for s in result.sources],
            "cut": result.cut,
            "tool_calls": result.tool_calls,
            "usage": result.usage.model_dump(mode="json") if result.usage else None,
        },
    )


def error_event(exc: AskError) -> AskEvent:
    return AskEvent("error", {"code": exc.code, "status": exc.status_code, "message": str(exc)})
