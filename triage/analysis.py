"""Analysis: ONE structured LLM call over the ranked evidence, or a deterministic summary when that is not possible.

The call goes through langchain-openai, so any OpenAI-compatible server works (OpenAI, Ollama, vLLM, llama.cpp,
LM Studio). It asks for structured output the way ``LLM_STRUCTURED_OUTPUT`` says; servers that ignore that and
answer with JSON text are parsed from the text, and a server that rejects the request format (HTTP 400) is asked
once more in plain JSON mode — never more than two calls per alert.

With read-only tools given, the first call also offers them. When the model asks for tool calls instead of answering,
a bounded follow-up round (:mod:`triage.followup`) runs a few of them and the second call, with no tools to call,
must give the structured answer over the fenced tool results too. A server that rejects tools (HTTP 400 naming
them) is asked once more without them, as small local models often do not support tools.

A hypothesis keeps only the evidence ids that exist in the report; one left with none is dropped, so every claim in
a report points at something that was observed. Token use is counted per report and charged to the hourly budget.
With no LLM configured, an LLM failure, an answer that does not parse, or the hourly budget spent, the report gets
the deterministic summary of :mod:`triage.fallback` and ``llm.skipped_reason`` says why.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import openai
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field, ValidationError, field_validator

from reports.models import Alert, Evidence, History, Hypothesis, LlmUsage, RunbookMatch
from triage import fallback
from triage.budget import TokenBudget
from triage.followup import FollowUp, followup_text, run_followup
from triage.prompt import build_messages, build_payload
from triage.ranking import select_for_prompt
from triage.settings import LlmSettings
from triage.tokens import count_tokens

log = logging.getLogger(__name__)

MAX_HYPOTHESES = 4
MAX_STEPS = 8
LLM_MAX_RETRIES = 1
# local servers usually need no key, but the OpenAI client refuses to start without one
PLACEHOLDER_API_KEY = "not-needed"
DEFAULT_TOOL_TIMEOUT_S = 20.0
DEFAULT_TOOL_OUTPUT_CHARS = 4000


class HypothesisAnswer(BaseModel):
    """One cause the model proposes, with the ids of the evidence that supports it."""

    title: str = Field(description="The cause in a few words.")
    confidence: float = Field(description="How likely this cause is, 0 to 1.")
    evidence_ids: list[str] = Field(default_factory=list, description="Ids of supporting evidence items.")
    next_steps: list[str] = Field(default_factory=list, description="Actions that confirm or fix this cause.")

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence(cls, value: Any) -> float:
        # small models answer 80 or "0.8" as often as 0.8
        number = float(value)
        if 1.0 < number <= 100.0:
            number /= 100.0
        return min(1.0, max(0.0, number))


class TriageAnswer(BaseModel):
    """The structured answer of the triage call."""

    summary: str = Field(description="Two or three sentences: what is happening and the most likely cause.")
    hypotheses: list[HypothesisAnswer] = Field(default_factory=list, description="Most likely cause first.")
    next_steps: list[str] = Field(default_factory=list, description="First actions for the operator.")


ANSWER_SCHEMA: dict[str, Any] = {"title": "triage_answer", **TriageAnswer.model_json_schema()}
ANSWER_TOOL = "triage_answer"
ANSWER_RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": ANSWER_TOOL, "schema": TriageAnswer.model_json_schema()},
}
Messages = list[tuple[str, str]]


@dataclass
class Analysis:
    summary: str
    hypotheses: list[Hypothesis] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    llm: LlmUsage | None = None
    prompt_evidence_ids: list[str] = field(default_factory=list)
    # results of the follow-up tool calls: observed data, kept in the report even when the answer is not
    followup: list[Evidence] = field(default_factory=list)


class LlmSkipped(Exception):
    """The LLM answer cannot be used; the message is the report's ``skipped_reason`` (never a secret)."""


def parse_answer_text(text: str) -> TriageAnswer:
    """Parse a JSON answer given as text (code fences and chatter around the object are tolerated)."""
    cleaned = re.sub(r"```(?:json)?", "", text).strip()
    start, end = cleaned.find("{"), cleaned.rfind("}")
    if start < 0 or end <= start:
        raise LlmSkipped("the LLM answer was not valid JSON")
    try:
        return TriageAnswer.model_validate(json.loads(cleaned[start : end + 1]))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise LlmSkipped("the LLM answer was not valid JSON for the triage schema") from exc


def keep_supported(answer: TriageAnswer, known_ids: set[str]) -> list[Hypothesis]:
    """Hypotheses with unknown evidence ids removed; those citing no existing evidence are dropped."""
    kept: list[Hypothesis] = []
    for item in answer.hypotheses:
        ids = list(dict.fromkeys(i for i in item.evidence_ids if i in known_ids))
        if not ids or not item.title.strip():
            continue
        steps = [s for s in item.next_steps if s.strip()][:MAX_STEPS]
        kept.append(Hypothesis(title=item.title.strip(), confidence=item.confidence, evidence=ids, next_steps=steps))
    kept.sort(key=lambda h: h.confidence, reverse=True)
    return kept[:MAX_HYPOTHESES]


def _error_reason(exc: Exception, timeout_s: float) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return f"the LLM did not answer within {timeout_s:g}s"
    if isinstance(exc, openai.RateLimitError):
        return "the LLM endpoint is rate-limiting requests (HTTP 429)"
    if isinstance(exc, openai.APIStatusError):
        return f"the LLM endpoint answered HTTP {exc.status_code}"
    if isinstance(exc, openai.APIConnectionError):
        return "the LLM endpoint could not be reached"
    return f"the LLM call failed ({type(exc).__name__})"


class Analyser:
    """Holds the chat model and the token budget; :meth:`analyse` makes at most two calls per alert.

    ``tools`` are the read-only tools the model may ask for in its first answer; ``max_tool_calls`` of them run in the
    follow-up round (0 or no tools: no tools are offered), each within ``tool_timeout_s``.
    """

    def __init__(
        self,
        settings: LlmSettings,
        budget: TokenBudget | None,
        *,
        tools: list[BaseTool] | None = None,
        max_tool_calls: int = 0,
        tool_timeout_s: float = DEFAULT_TOOL_TIMEOUT_S,
        tool_output_chars: int = DEFAULT_TOOL_OUTPUT_CHARS,
    ) -> None:
        self.settings = settings
        self.budget = budget
        self.tools = list(tools or []) if max_tool_calls > 0 else []
        self.max_tool_calls = max_tool_calls
        self.tool_timeout_s = tool_timeout_s
        self.tool_output_chars = tool_output_chars
        self.chat: ChatOpenAI | None = None
        if settings.configured:
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else PLACEHOLDER_API_KEY
            self.chat = ChatOpenAI(
                base_url=settings.openai_base_url,
                api_key=key,
                model=settings.llm_model,
                timeout=settings.llm_timeout_s,
                max_retries=LLM_MAX_RETRIES,
                max_tokens=settings.llm_max_output_tokens,
            )

    async def analyse(
        self,
        alert: Alert,
        evidence: list[Evidence],
        runbooks: list[RunbookMatch],
        history: History,
        *,
        now: datetime | None = None,
    ) -> Analysis:
        """Explain ranked ``evidence``; never raises for an LLM problem (the fallback answers instead)."""
        now = now or datetime.now(UTC)
        chosen = select_for_prompt(evidence, self.settings.llm_prompt_evidence_tokens, alert.starts_at)
        usage = LlmUsage(model=self.settings.llm_model)
        if self.chat is None:
            return self._fallback(alert, evidence, runbooks, history, usage, "no LLM is configured (OPENAI_BASE_URL)")
        payload = build_payload(alert, chosen, runbooks, history, now)
        round_ = FollowUp()
        try:
            answer = await self._ask(self.chat, payload, usage, now, round_)
        except LlmSkipped as exc:
            log.warning("llm analysis skipped", extra={"reason": str(exc), "fingerprint": alert.fingerprint})
            skipped = self._fallback(alert, evidence, runbooks, history, usage, str(exc))
            skipped.followup = round_.evidence
            return skipped
        hypotheses = keep_supported(answer, {e.id for e in [*evidence, *round_.evidence]})
        steps = [s for s in answer.next_steps if s.strip()][:MAX_STEPS]
        summary = answer.summary.strip() or fallback.summarise(alert, evidence, history)
        shown = [e.id for e in [*chosen, *round_.evidence]]
        return Analysis(summary, hypotheses, steps, usage, shown, round_.evidence)

    def _fallback(
        self,
        alert: Alert,
        evidence: list[Evidence],
        runbooks: list[RunbookMatch],
        history: History,
        usage: LlmUsage,
        reason: str,
    ) -> Analysis:
        usage.skipped_reason = reason
        return Analysis(
            fallback.summarise(alert, evidence, history),
            [],
            fallback.next_steps(alert, evidence, runbooks),
            usage,
        )

    async def _ask(
        self, chat: ChatOpenAI, payload: dict[str, Any], usage: LlmUsage, now: datetime, round_: FollowUp
    ) -> TriageAnswer:
        messages = build_messages(payload, json_only=self.settings.llm_structured_output == "json_mode")
        if self.tools:
            try:
                return await self._ask_with_tools(chat, messages, usage, now, round_)
            except openai.BadRequestError as exc:
                if "tool" not in str(exc).lower():
                    return await self._second(chat, build_messages(payload, json_only=True), usage, now, False)
                # the server does not support tools: the one call left is the plain structured request
                return await self._second(chat, messages, usage, now, True)
        try:
            return await self._call(chat, messages, usage, now, structured=True)
        except openai.BadRequestError:
            # the server rejects response_format/tools: ask once more for plain JSON text
            return await self._second(chat, build_messages(payload, json_only=True), usage, now, False)

    async def _second(
        self, chat: ChatOpenAI, messages: Messages, usage: LlmUsage, now: datetime, structured: bool
    ) -> TriageAnswer:
        """The last call of a triage: a rejection now is final."""
        try:
            return await self._call(chat, messages, usage, now, structured=structured)
        except openai.BadRequestError as exc:
            raise LlmSkipped("the LLM endpoint rejected the request (HTTP 400)") from exc

    def _first_runnable(self, chat: ChatOpenAI) -> Runnable[Any, Any]:
        method = self.settings.llm_structured_output
        if method == "function_calling":
            # the answer is one more tool, not forced, so the model may pick the read-only tools instead
            return chat.bind_tools([*self.tools, ANSWER_SCHEMA])
        # response_format goes in extra_body: as a client argument the OpenAI SDK would demand strict tool schemas
        if method == "json_mode":
            return chat.bind_tools(self.tools, extra_body={"response_format": {"type": "json_object"}})
        return chat.bind_tools(self.tools, extra_body={"response_format": ANSWER_RESPONSE_FORMAT})

    async def _ask_with_tools(
        self, chat: ChatOpenAI, messages: Messages, usage: LlmUsage, now: datetime, round_: FollowUp
    ) -> TriageAnswer:
        schemas = [convert_to_openai_tool(t) for t in self.tools]
        result = await self._invoke(self._first_runnable(chat), messages, usage, now, extra=json.dumps(schemas))
        raw = result if isinstance(result, AIMessage) else None
        calls = list(raw.tool_calls) if raw is not None else []
        requested = [c for c in calls if c["name"] != ANSWER_TOOL]
        if not requested:
            # a direct answer: the answer tool's arguments, or JSON content under response_format
            return _validated(calls[0]["args"]) if calls else parse_answer_text(_text_of(raw))
        done = await run_followup(
            requested,
            self.tools,
            limit=self.max_tool_calls,
            timeout_s=self.tool_timeout_s,
            output_chars=self.tool_output_chars,
        )
        round_.evidence, round_.cut, round_.ignored = done.evidence, done.cut, done.ignored
        log.info(
            "triage follow-up tool calls",
            extra={"ran": len(done.evidence), "cut": len(done.cut), "ignored": len(done.ignored)},
        )
        second = [*messages, ("user", followup_text(done, self.max_tool_calls))]
        return await self._second(chat, second, usage, now, True)

    async def _reserve(self, messages: Messages, now: datetime, extra: str = "") -> int:
        estimate = sum(count_tokens(text) + 4 for _, text in messages) + self.settings.llm_max_output_tokens
        estimate += count_tokens(extra)
        if self.budget is None:
            return estimate
        limit = self.settings.llm_hourly_token_budget
        if not await self.budget.reserve(estimate, limit, now):
            raise LlmSkipped(f"the hourly LLM token budget ({limit} tokens) is spent")
        return estimate

    async def _call(
        self,
        chat: ChatOpenAI,
        messages: Messages,
        usage: LlmUsage,
        now: datetime,
        *,
        structured: bool,
    ) -> TriageAnswer:
        if structured:
            # a schema dict, not the class: the client then keeps the raw answer when it does not parse
            runnable: Runnable[Any, Any] = chat.with_structured_output(
                ANSWER_SCHEMA, method=self.settings.llm_structured_output, include_raw=True
            )
        else:
            runnable = chat
        result = await self._invoke(runnable, messages, usage, now)
        raw = result["raw"] if isinstance(result, dict) else result
        parsed = result.get("parsed") if isinstance(result, dict) else None
        if isinstance(parsed, dict):
            try:
                return TriageAnswer.model_validate(parsed)
            except ValidationError:
                pass  # the text may still hold a usable object (some servers wrap it)
        return parse_answer_text(_text_of(raw))

    async def _invoke(
        self, runnable: Runnable[Any, Any], messages: Messages, usage: LlmUsage, now: datetime, extra: str = ""
    ) -> Any:
        """One counted, budgeted LLM call; a rejection (HTTP 400) is raised as is, every other failure as skipped."""
        reserved = await self._reserve(messages, now, extra)
        usage.calls += 1
        try:
            result = await runnable.ainvoke(messages)
        except openai.BadRequestError:
            await self._settle(reserved, 0, now)
            raise
        except Exception as exc:
            # a timed-out prompt may still have been processed and billed; rejected requests were not
            spent = reserved - self.settings.llm_max_output_tokens if isinstance(exc, openai.APITimeoutError) else 0
            await self._settle(reserved, spent, now)
            raise LlmSkipped(_error_reason(exc, self.settings.llm_timeout_s)) from exc
        raw = result["raw"] if isinstance(result, dict) else result
        spent = self._count_usage(raw if isinstance(raw, BaseMessage) else None, messages, usage)
        await self._settle(reserved, spent, now)
        return result

    def _count_usage(self, raw: BaseMessage | None, messages: Messages, usage: LlmUsage) -> int:
        meta = raw.usage_metadata if isinstance(raw, AIMessage) else None
        if meta:
            prompt, completion = int(meta["input_tokens"]), int(meta["output_tokens"])
        else:
            prompt = sum(count_tokens(text) + 4 for _, text in messages)
            completion = count_tokens(_text_of(raw))
        usage.input_tokens += prompt
        usage.output_tokens += completion
        return prompt + completion

    async def _settle(self, reserved: int, spent: int, now: datetime) -> None:
        if self.budget is not None and spent != reserved:
            await self.budget.settle(spent - reserved, now)


def _validated(data: Any) -> TriageAnswer:
    try:
        return TriageAnswer.model_validate(data)
    except ValidationError as exc:
        raise LlmSkipped("the LLM answer was not valid JSON for the triage schema") from exc


def _text_of(message: BaseMessage | None) -> str:
    if message is None:
        return ""
    if isinstance(message, AIMessage) and message.tool_calls:
        return json.dumps(message.tool_calls[0]["args"])
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content)
