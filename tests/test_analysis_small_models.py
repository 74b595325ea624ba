"""What small local models and their servers do, and how the triage copes: tools without a response format, the
output limit as ``max_tokens``, tool calls written as text, code fences, prose and answers cut off at the limit.
The real langchain-openai client against the scripted OpenAI-compatible server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from reports.models import History, LlmUsage
from reports.render import render_report_html, render_report_markdown
from tests.support.llm_server import Reply, ScriptedLLM
from tests.support.sample_reports import sample_report
from tests.test_analysis import NOW, alert, answer, evidence, hyp
from tests.test_analysis_followup import Sources, loki_call, sources  # noqa: F401  (fixture)
from triage.analysis.analyser import NOTE_TEXT_TOOL_CALL, NOTE_TOOLS_REJECTED, Analyser
from triage.analysis.answer_json import FENCED, PROSE, TRUNCATED
from triage.deps import followup_analyser
from triage.settings import Settings


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def make_analyser(
    make_settings: Callable[..., Settings],
    llm: ScriptedLLM,
    sources: Sources,  # noqa: F811
) -> Callable[..., Analyser]:
    def factory(followup_tool_calls: int = 3, **llm_settings: object) -> Analyser:
        settings = make_settings(
            llm={"openai_base_url": llm.url, "llm_model": "small", "llm_timeout_s": 5.0, **llm_settings},
            triage={"followup_tool_calls": followup_tool_calls},
        )
        return followup_analyser(sources.deps, settings, None)

    return factory


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
async def test_tools_are_offered_without_a_response_format_and_the_final_call_enforces_the_schema(
    method: str, llm: ScriptedLLM, make_analyser: Callable[..., Analyser]
) -> None:
    llm.push(Reply(tool_calls=[loki_call('{job="vzdump"}')]), Reply.structured_output(answer(hyp("b", ["ev-io"]))))
    result = await make_analyser(llm_structured_output=method).analyse(alert(), evidence(), [], History(), now=NOW)
    first, second = llm.requests
    assert first.body["tools"] and "response_format" not in first.body
    assert "tools" not in second.body and "response_format" in second.body
    assert result.hypotheses[0].evidence == ["ev-io"]
    assert result.llm is not None and result.llm.answer_json == "first_try" and result.llm.notes == []


async def test_the_output_limit_reaches_a_local_server_as_max_tokens_too(
    llm: ScriptedLLM, make_analyser: Callable[..., Analyser]
) -> None:
    llm.push(Reply.structured_output(answer(hyp("b", ["ev-io"]))))
    await make_analyser(followup_tool_calls=0, llm_max_output_tokens=333).analyse(
        alert(), evidence(), [], History(), now=NOW
    )
    body = llm.requests[0].body
    assert body["max_tokens"] == 333 == body["max_completion_tokens"]


async def test_a_tool_call_written_as_text_goes_straight_to_the_final_call_without_tools(
    llm: ScriptedLLM,
    make_analyser: Callable[..., Analyser],
    sources: Sources,  # noqa: F811
) -> None:
    written = '```json\n{\n  "name": "loki_query",\n  "arguments": {"query": "{job=\\"vzdump\\"}"}\n}\n```'
    llm.push(Reply(content=written), Reply.structured_output(answer(hyp("backup", ["ev-backup"]))))
    result = await make_analyser().analyse(alert(), evidence(), [], History(), now=NOW)
    assert llm.calls == 2 and sources.loki.request_count == 0
    second = llm.requests[1]
    assert "tools" not in second.body and "response_format" in second.body
    assert second.messages == llm.requests[0].messages  # the same prompt: nothing about the call
    assert result.followup == [] and result.hypotheses[0].evidence == ["ev-backup"]
    assert result.llm is not None and result.llm.notes == [NOTE_TEXT_TOOL_CALL]
    assert result.llm.answer_json == "first_try" and result.llm.calls == 2


async def test_a_server_rejecting_tools_is_noted_in_the_report(
    llm: ScriptedLLM, make_analyser: Callable[..., Analyser]
) -> None:
    llm.push(
        Reply.error(400, "tools param requires --jinja flag"), Reply.structured_output(answer(hyp("b", ["ev-io"])))
    )
    result = await make_analyser().analyse(alert(), evidence(), [], History(), now=NOW)
    assert result.llm is not None and result.llm.notes == [NOTE_TOOLS_REJECTED]
    assert result.hypotheses[0].evidence == ["ev-io"]


async def test_a_fenced_answer_with_prose_is_used_and_the_report_says_so(
    llm: ScriptedLLM, make_analyser: Callable[..., Analyser]
) -> None:
    text = "Here is the triage:\n```json\n" + json.dumps(answer(hyp("backup", ["ev-backup"]))) + "\n```\nHope it helps."
    llm.push(Reply(content=text))
    result = await make_analyser().analyse(alert(), evidence(), [], History(), now=NOW)
    assert llm.calls == 1 and result.hypotheses[0].title == "backup"
    assert result.llm is not None and result.llm.notes == [FENCED, PROSE] and result.llm.answer_json == "first_try"


async def test_an_answer_cut_at_the_token_limit_keeps_its_complete_hypotheses_and_says_it_was_cut(
    llm: ScriptedLLM, make_analyser: Callable[..., Analyser]
) -> None:
    full = json.dumps(answer(hyp("backup IO", ["ev-backup", "ev-io"], 0.8), hyp("noisy log", ["ev-log"], 0.3)))
    llm.push(Reply(content=full[: full.index("noisy log")], finish_reason="length"))
    result = await make_analyser(followup_tool_calls=0).analyse(alert(), evidence(), [], History(), now=NOW)
    assert llm.calls == 1
    assert [h.title for h in result.hypotheses] == ["backup IO"]
    assert result.llm is not None and result.llm.notes == [TRUNCATED] and result.llm.skipped_reason is None


def test_the_rendered_report_names_what_was_worked_around() -> None:
    usage = LlmUsage(model="small", calls=2, input_tokens=900, output_tokens=120, notes=[NOTE_TEXT_TOOL_CALL, FENCED])
    report = sample_report(llm=usage)
    for text in (render_report_markdown(report), render_report_html(report)):
        assert NOTE_TEXT_TOOL_CALL in text and FENCED in text
