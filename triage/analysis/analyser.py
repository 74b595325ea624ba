"""Analysis: ONE structured LLM call over the ranked evidence, or a deterministic summary when that is not possible.

The call goes through langchain-openai, so any OpenAI-compatible server works (OpenAI, Ollama, vLLM, llama.cpp,
LM Studio). It asks for structured output the way ``LLM_STRUCTURED_OUTPUT`` says, and the prompt spells out the JSON
shape as well, so servers that ignore the request format still answer in it. Never more than two calls per alert:
a server that rejects the request format (HTTP 400) is asked once more for plain JSON, and a reply with no usable
JSON is asked for once more. Code fences, text around the JSON and an answer cut off at the output token limit are
repaired where possible; ``llm.notes`` says which happened and ``llm.answer_json`` whether the JSON came at the first
try, after the retry, or not at all.

With read-only tools given, the first call offers them — without ``response_format`` (Ollama ignores tool calls
when a format is set); a direct answer is parsed from its text. When the model asks for tool calls instead of
answering, a bounded follow-up round (:mod:`triage.analysis.followup`) runs a few of them and the second call, with no tools
to call, must give the structured answer over the fenced tool results too. A server that rejects tools (HTTP 400
naming them), or a model that writes a tool call as text instead of making it, goes straight to that final call.

A hypothesis keeps only the evidence ids that exist in the report; one left with none is dropped, so every claim in
a report points at something that was observed. Hypotheses that cite only the alert's own signal or symptom come
after those citing other evidence (:mod:`triage.analysis.hypothesis_order`), and ``llm.notes`` says when that changed the order. Token use is counted per report and charged to the hourly budget.
With no LLM configured, an LLM failure, an answer that does not parse, or the hourly budget spent, the report gets
the deterministic summary of :mod:`triage.analysis.fallback` and ``llm.skipped_reason`` says why.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import openai
from langchain_core.messages import AIMessage, BaseMessage, ToolCall
from langchain_core.messages.ai import UsageMetadata
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field, ValidationError, field_validator

from reports.models import Alert, Evidence, History, Hypothesis, LlmUsage, RunbookMatch
from triage.analysis import fallback
from triage.analysis.answer_json import NoJsonObject, extract_object
from triage.analysis.budget import TokenBudget
from triage.analysis.chat_model import build_chat_model
from triage.analysis.evidence_view import select_for_prompt
from triage.analysis.followup import FollowUp, followup_text, run_followup
from triage.analysis.hypothesis_order import best_supported_first
from triage.analysis.llm_compat import text_tool_call
from triage.analysis.tokens import count_tokens
from triage.analysis.tool_calls import tool_allowlist
from triage.analysis.triage_prompt import (
    build_messages,
    build_payload,
    citable_ids,
    evidence_aliases,
    prompt_evidence,
    real_id,
    real_ids_in_text,
)
from triage.settings import LlmSettings

log = logging.getLogger(__name__)

MAX_STEPS = 8
# Bounds of the answer, as maxItems/maxLength in its JSON schema only: a server that enforces the schema (llama.cpp,
# Ollama and vLLM turn it into a grammar) stops a small model from writing at length — on a CPU every answer token
# costs about 0.1 s — while an answer from a server that ignores them is still taken as it is.
# Evidence ids one hypothesis cites; characters of a title and a step.
MAX_CITED = 3
TITLE_CHARS = 60
STEP_CHARS = 100
DEFAULT_TOOL_TIMEOUT_S = 20.0
DEFAULT_TOOL_OUTPUT_CHARS = 4000


def _short_text(chars: int) -> dict[str, Any]:
    return {"maxLength": chars}


def _short_list(items: int, chars: int) -> dict[str, Any]:
    return {"maxItems": items, "items": {"type": "string", "maxLength": chars}}


class HypothesisAnswer(BaseModel):
    """One cause the model proposes, with the ids of the evidence that supports it."""

    title: str = Field(description="The cause in a few words.", json_schema_extra=_short_text(TITLE_CHARS))
    confidence: float = Field(description="How likely this cause is, 0 to 1.")
    evidence_ids: list[str] = Field(
        default_factory=list,
        description="Ids of the supporting evidence items, strongest first.",
        json_schema_extra={"minItems": 1, "maxItems": MAX_CITED},
    )
    next_steps: list[str] = Field(
        default_factory=list,
        description="One action that confirms or fixes this cause.",
        json_schema_extra=_short_list(1, STEP_CHARS),
    )

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence(cls, value: Any) -> float:
        # small models answer 80 or "0.8" as often as 0.8
        number = float(value)
        if 1.0 < number <= 100.0:
            number /= 100.0
        return min(1.0, max(0.0, number))


class TriageAnswer(BaseModel):
    """The structured answer of the triage call: causes, each citing its evidence.

    No summary of its own: the report's summary names the hypothesis that comes first once the evidence has weighed
    in (:func:`answer_summary`), so it never names another cause than the one the report leads with, and the model
    spends no answer tokens restating its first hypothesis (a "summary" a server still sends is ignored).
    """

    # required and never empty: ``{}`` or an inner object of a cut-off answer is no answer, and an empty list says
    # nothing the deterministic summary would not say better (a server that ignores the schema is asked again)
    hypotheses: list[HypothesisAnswer] = Field(min_length=1, description="Most likely cause first.")


ANSWER_TOOL = "triage_answer"


Schema = dict[str, Any]


def answer_schema(max_hypotheses: int, citable: Sequence[str] = ()) -> Schema:
    """The answer's JSON schema, its hypotheses bounded to ``max_hypotheses`` (``LLM_MAX_HYPOTHESES``) and, when
    ``citable`` ids are given, each cited id one of them.

    A server that turns the schema into a grammar (llama.cpp, Ollama, vLLM) then cannot let the model cite an id that
    does not exist, nor an item that only restates the alert (:func:`triage.analysis.triage_prompt.citable_ids`):
    a small model otherwise names the resource the alert measures as its own cause.
    """
    schema: Schema = {"title": ANSWER_TOOL, **TriageAnswer.model_json_schema()}
    # at least one hypothesis (the model's own minItems) citing at least one item: a small model otherwise answers an
    # empty list now and then
    schema["properties"]["hypotheses"]["maxItems"] = max_hypotheses
    if citable:
        _cited_ids(schema)["items"] = {"type": "string", "enum": list(dict.fromkeys(citable))}
    return schema


def _cited_ids(schema: Schema) -> dict[str, Any]:
    """The schema of a hypothesis's ``evidence_ids``."""
    cited: dict[str, Any] = schema["$defs"]["HypothesisAnswer"]["properties"]["evidence_ids"]
    return cited


def also_citable(schema: Schema, ids: Sequence[str]) -> Schema:
    """``schema`` with ``ids`` (the follow-up tools' results) citable too, where it bounds the cited ids."""
    if not ids or "enum" not in _cited_ids(schema).get("items", {}):
        return schema
    widened = copy.deepcopy(schema)
    enum = _cited_ids(widened)["items"]["enum"]
    enum.extend(i for i in ids if i not in enum)
    return widened


Messages = list[tuple[str, str]]
NOTE_TOOLS_REJECTED = "the LLM endpoint does not accept tools, so the model answered without follow-up tool calls"
NOTE_FORMAT_REJECTED = "the LLM endpoint rejected the structured-output request, so plain JSON was asked for"
NOTE_TEXT_TOOL_CALL = (
    "the model wrote a tool call as text instead of calling the tool, so it was asked for the answer without tools"
)
RETRY_INSTRUCTION = "Your previous reply could not be used ({reason}). Reply again with only the JSON object."


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


class UnusableAnswer(LlmSkipped):
    """The reply came, but holds no answer in the triage schema; one more call may still get one."""


def _fits_schema(value: dict[str, Any]) -> bool:
    try:
        TriageAnswer.model_validate(value)
    except ValidationError:
        return False
    return True


def parse_answer(text: str) -> tuple[TriageAnswer, list[str]]:
    """A JSON answer given as text, and the repairs it needed (code fence, text around it, cut off at the end)."""
    try:
        extracted = extract_object(text, _fits_schema)
    except NoJsonObject as exc:
        reason = "not valid JSON for the triage schema" if "{" in text else "not valid JSON"
        raise UnusableAnswer(f"the LLM answer was {reason}") from exc
    return TriageAnswer.model_validate(extracted.value), extracted.repairs


def _parse_noted(text: str, usage: LlmUsage) -> TriageAnswer:
    answer, repairs = parse_answer(text)
    usage.notes.extend(r for r in repairs if r not in usage.notes)
    return answer


def _retry_messages(messages: Messages, problem: LlmSkipped) -> Messages:
    return [*messages, ("user", RETRY_INSTRUCTION.format(reason=str(problem)))]


def with_real_ids(answer: TriageAnswer, by_alias: dict[str, str]) -> TriageAnswer:
    """The answer with the prompt's short evidence ids (e1, e2 …) turned back into the report's ids, in its citations
    and wherever its text mentions one."""

    def text(value: str) -> str:
        return real_ids_in_text(value, by_alias)

    hypotheses = [
        h.model_copy(
            update={
                "title": text(h.title),
                "evidence_ids": [real_id(i, by_alias) for i in h.evidence_ids],
                "next_steps": [text(s) for s in h.next_steps],
            }
        )
        for h in answer.hypotheses
    ]
    return TriageAnswer(hypotheses=hypotheses)


def keep_supported(answer: TriageAnswer, known_ids: set[str]) -> list[Hypothesis]:
    """Hypotheses with unknown evidence ids removed, in the answer's order; those citing no existing evidence are
    dropped."""
    kept: list[Hypothesis] = []
    for item in answer.hypotheses:
        ids = list(dict.fromkeys(i for i in item.evidence_ids if i in known_ids))
        if not ids or not item.title.strip():
            continue
        steps = [s for s in item.next_steps if s.strip()][:MAX_STEPS]
        kept.append(Hypothesis(title=item.title.strip(), confidence=item.confidence, evidence=ids, next_steps=steps))
    return kept


def answer_steps(hypotheses: list[Hypothesis]) -> list[str]:
    """The report's next steps after an answer: each hypothesis's step, most likely cause first, each said once.

    The model writes one step per hypothesis, tied to the cause it would confirm or fix, and no list of its own
    beside them: a second list mostly said the same again, and on a CPU every answer token costs about 0.1 s.
    """
    steps = (s.strip() for h in hypotheses for s in h.next_steps)
    return list(dict.fromkeys(s for s in steps if s))[:MAX_STEPS]


def answer_summary(alert: Alert, hypotheses: list[Hypothesis]) -> str:
    """The report's summary after an answer: the alert, the hypothesis the report leads with, the others by title."""
    lead, *others = hypotheses
    summary = f"{fallback.alert_subject(alert)}: most likely {_sentence_part(lead.title)}"
    summary += f" (confidence {lead.confidence:.0%})."
    if others:
        summary += " Also possible: " + "; ".join(_sentence_part(h.title) for h in others) + "."
    return summary


def _sentence_part(title: str) -> str:
    # a title ends no sentence of its own inside the summary
    return title.strip().rstrip(".")


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
        self.allowlist = tool_allowlist(self.tools)
        self.max_tool_calls = max_tool_calls
        self.tool_timeout_s = tool_timeout_s
        self.tool_output_chars = tool_output_chars
        self.chat: ChatOpenAI | None = build_chat_model(settings) if settings.configured else None

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
            if usage.calls:
                usage.answer_json = "fell_back"
            skipped = self._fallback(alert, evidence, runbooks, history, usage, str(exc))
            skipped.followup = round_.evidence
            return skipped
        answer = with_real_ids(answer, {a: i for i, a in evidence_aliases(prompt_evidence(chosen)).items()})
        by_id = {e.id: e for e in [*evidence, *round_.evidence]}
        known = set(by_id)
        hypotheses, order_notes = best_supported_first(keep_supported(answer, known), by_id)
        hypotheses = hypotheses[: self.settings.llm_max_hypotheses]
        usage.notes.extend(order_notes)
        usage.dropped_hypotheses = sum(1 for h in answer.hypotheses if not known.intersection(h.evidence_ids))
        if usage.dropped_hypotheses:
            usage.notes.append(
                f"{usage.dropped_hypotheses} hypothesis(es) cited no existing evidence id and were left out"
            )
        steps = answer_steps(hypotheses) or fallback.next_steps(alert, evidence, runbooks)
        summary = answer_summary(alert, hypotheses) if hypotheses else fallback.summarise(alert, evidence, history)
        shown = [e.id for e in [*prompt_evidence(chosen), *round_.evidence]]
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
        messages = build_messages(payload, self.settings.llm_max_hypotheses, worked_example=not self.tools)
        schema = answer_schema(self.settings.llm_max_hypotheses, citable_ids(payload))
        if self.tools:
            return await self._ask_with_tools(chat, messages, schema, usage, now, round_)
        try:
            return await self._answer(chat, messages, schema, usage, now, structured=True)
        except openai.BadRequestError:
            # the server rejects response_format: ask once more for plain JSON text
            usage.notes.append(NOTE_FORMAT_REJECTED)
            return await self._final(chat, messages, schema, usage, now, structured=False, retry=True)
        except UnusableAnswer as exc:
            retry = _retry_messages(messages, exc)
            return await self._final(chat, retry, schema, usage, now, structured=True, retry=True)

    async def _answer(
        self, chat: ChatOpenAI, messages: Messages, schema: Schema, usage: LlmUsage, now: datetime, *, structured: bool
    ) -> TriageAnswer:
        answer = await self._call(chat, messages, schema, usage, now, structured=structured)
        usage.answer_json = "first_try"
        return answer

    async def _final(
        self,
        chat: ChatOpenAI,
        messages: Messages,
        schema: Schema,
        usage: LlmUsage,
        now: datetime,
        *,
        structured: bool,
        retry: bool,
    ) -> TriageAnswer:
        """The last call of a triage, with no tools: a rejection now is final."""
        try:
            answer = await self._call(chat, messages, schema, usage, now, structured=structured)
        except openai.BadRequestError as exc:
            raise LlmSkipped("the LLM endpoint rejected the request (HTTP 400)") from exc
        usage.answer_json = "after_retry" if retry else "first_try"
        return answer

    def _tools_runnable(self, chat: ChatOpenAI, schema: Schema) -> Runnable[Any, Any]:
        # No response_format next to tools: Ollama ignores tool calls when a format is set. The prompt spells out the
        # JSON shape, so a direct answer still parses; the final call (no tools) enforces the schema.
        if self.settings.llm_structured_output == "function_calling":
            # the answer is one more tool, not forced, so the model may pick the read-only tools instead
            return chat.bind_tools([*self.tools, schema])
        return chat.bind_tools(self.tools)

    async def _ask_with_tools(
        self, chat: ChatOpenAI, messages: Messages, schema: Schema, usage: LlmUsage, now: datetime, round_: FollowUp
    ) -> TriageAnswer:
        schemas = [convert_to_openai_tool(t) for t in self.tools]
        runnable = self._tools_runnable(chat, schema)
        try:
            result = await self._invoke(runnable, messages, usage, now, extra=json.dumps(schemas))
        except openai.BadRequestError as exc:
            if "tool" not in str(exc).lower():
                usage.notes.append(NOTE_FORMAT_REJECTED)
                return await self._final(chat, messages, schema, usage, now, structured=False, retry=True)
            # the server does not support tools: the one call left is the plain structured request
            usage.notes.append(NOTE_TOOLS_REJECTED)
            return await self._final(chat, messages, schema, usage, now, structured=True, retry=False)
        raw = result if isinstance(result, AIMessage) else None
        calls = list(raw.tool_calls) if raw is not None else []
        requested = [c for c in calls if c["name"] != ANSWER_TOOL]
        if requested:
            await self._followup_round(requested, round_)
            second = [*messages, ("user", followup_text(round_, self.max_tool_calls))]
            schema = also_citable(schema, [e.id for e in round_.evidence])
            return await self._final(chat, second, schema, usage, now, structured=True, retry=False)
        if calls:  # the answer tool's arguments
            answer = _validated(calls[0]["args"])
            usage.answer_json = "first_try"
            return answer
        text = _text_of(raw)
        written = text_tool_call(text, {t.name for t in self.tools})
        if written is not None:
            # a small model that cannot call tools writes the call as text: go straight to the final answer
            log.info("triage tool call written as text", extra={"tool": written})
            usage.notes.append(NOTE_TEXT_TOOL_CALL)
            return await self._final(chat, messages, schema, usage, now, structured=True, retry=False)
        try:
            answer = _parse_noted(text, usage)
        except UnusableAnswer as exc:
            retry = _retry_messages(messages, exc)
            return await self._final(chat, retry, schema, usage, now, structured=True, retry=True)
        usage.answer_json = "first_try"
        return answer

    async def _followup_round(self, requested: list[ToolCall], round_: FollowUp) -> None:
        done = await run_followup(
            requested,
            self.allowlist,
            limit=self.max_tool_calls,
            timeout_s=self.tool_timeout_s,
            output_chars=self.tool_output_chars,
        )
        round_.evidence, round_.cut, round_.ignored = done.evidence, done.cut, done.ignored
        log.info(
            "triage follow-up tool calls",
            extra={"ran": len(done.evidence), "cut": len(done.cut), "ignored": len(done.ignored)},
        )

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
        schema: Schema,
        usage: LlmUsage,
        now: datetime,
        *,
        structured: bool,
    ) -> TriageAnswer:
        if structured:
            # a schema dict, not the class: the client then keeps the raw answer when it does not parse
            runnable: Runnable[Any, Any] = chat.with_structured_output(
                schema, method=self.settings.llm_structured_output, include_raw=True
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
        return _parse_noted(_text_of(raw), usage)

    async def _invoke(
        self, runnable: Runnable[Any, Any], messages: Messages, usage: LlmUsage, now: datetime, extra: str = ""
    ) -> Any:
        """One counted, budgeted LLM call; a rejection (HTTP 400) is raised as is, every other failure as skipped."""
        reserved = await self._reserve(messages, now, extra)
        usage.calls += 1
        try:
            result = await runnable.ainvoke(messages)
        except openai.LengthFinishReasonError as exc:
            # the OpenAI client refuses a structured answer cut at the output limit; its text may still be repaired
            result = _cut_reply(exc)
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
            # OpenAI, llama.cpp and vLLM say how much of the prompt came from their cache (prompt_tokens_details)
            usage.cached_input_tokens += int(meta.get("input_token_details", {}).get("cache_read") or 0)
        else:
            prompt = sum(count_tokens(text) + 4 for _, text in messages)
            completion = count_tokens(_text_of(raw))
        usage.input_tokens += prompt
        usage.output_tokens += completion
        return prompt + completion

    async def _settle(self, reserved: int, spent: int, now: datetime) -> None:
        if self.budget is not None and spent != reserved:
            await self.budget.settle(spent - reserved, now)


def _cut_reply(exc: openai.LengthFinishReasonError) -> AIMessage:
    """The reply the client refused because it hit the output limit, as a message with its usage."""
    completion = exc.completion
    content = completion.choices[0].message.content if completion.choices else ""
    usage = completion.usage
    meta: UsageMetadata | None = None
    if usage is not None:
        details = usage.prompt_tokens_details
        meta = {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "input_token_details": {"cache_read": (details.cached_tokens if details else None) or 0},
        }
    return AIMessage(content=content or "", usage_metadata=meta, response_metadata={"finish_reason": "length"})


def _validated(data: Any) -> TriageAnswer:
    try:
        return TriageAnswer.model_validate(data)
    except ValidationError as exc:
        raise UnusableAnswer("the LLM answer was not valid JSON for the triage schema") from exc


def _text_of(message: BaseMessage | None) -> str:
    if message is None:
        return ""
    if isinstance(message, AIMessage) and message.tool_calls:
        return json.dumps(message.tool_calls[0]["args"])
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content)
