"""The answer kept short by design, and the evidence ids the model sees: bounds in the answer's JSON schema (only a
hint: a longer answer is still taken), short ids in rank order turned back into the report's ids, and the server's
prompt-cache count in the report's usage. The real langchain-openai client against the scripted server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reports.models import History
from tests.support.llm_server import RecordedRequest, Reply, ScriptedLLM
from tests.test_analysis import NOW, alert, answer, evidence, hyp
from triage.analysis.analyser import (
    MAX_CITED,
    STEP_CHARS,
    TITLE_CHARS,
    Analyser,
    TriageAnswer,
    also_citable,
    answer_schema,
)
from triage.analysis.evidence_view import row_view
from triage.analysis.triage_prompt import (
    EXAMPLE_PAYLOAD,
    FENCE_CLOSE,
    FENCE_OPEN,
    build_messages,
    citable_ids,
    system_prompt,
)
from triage.settings import LlmSettings


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def analyser(llm: ScriptedLLM) -> Callable[..., Analyser]:
    def factory(**overrides: Any) -> Analyser:
        values = {"openai_base_url": llm.url, "llm_model": "small", "llm_timeout_s": 5.0, **overrides}
        return Analyser(LlmSettings(**values), None)

    return factory


def shown_evidence(request: RecordedRequest) -> list[dict[str, Any]]:
    user = request.messages[-1]["content"]
    data: dict[str, Any] = json.loads(user.split(FENCE_OPEN, 1)[1].rsplit(FENCE_CLOSE, 1)[0])
    return [row_view(row) for row in data["evidence"]]


async def test_the_schema_sent_bounds_the_answer_in_items_and_characters(
    llm: ScriptedLLM, analyser: Callable[..., Analyser]
) -> None:
    llm.push(Reply.structured_output(answer(hyp("backup", ["e1"]))))
    await analyser().analyse(alert(), evidence(), [], History(), now=NOW)
    schema = llm.requests[0].body["response_format"]["json_schema"]["schema"]
    top = schema["properties"]
    assert top["hypotheses"]["maxItems"] == 3 and top["hypotheses"]["minItems"] == 1
    # no summary and no list of steps beside the hypotheses: the report's summary and next steps are made from them
    assert set(top) == {"hypotheses"} and schema["required"] == ["hypotheses"]
    hypothesis = schema["$defs"]["HypothesisAnswer"]["properties"]
    assert hypothesis["title"]["maxLength"] == TITLE_CHARS
    assert hypothesis["evidence_ids"]["maxItems"] == MAX_CITED and hypothesis["evidence_ids"]["minItems"] == 1
    # only the ids of the rows shown can be cited
    assert hypothesis["evidence_ids"]["items"] == {"type": "string", "enum": ["e1", "e2", "e3"]}
    assert hypothesis["next_steps"]["maxItems"] == 1
    assert hypothesis["next_steps"]["items"]["maxLength"] == STEP_CHARS
    # the instructions ask for the same brevity, for servers that do not enforce a schema
    assert "at most 6 words" in system_prompt(3) and "1 to 3" in system_prompt(3)
    assert llm.requests[0].messages[0]["content"] == system_prompt(3)


async def test_the_number_of_hypotheses_is_a_setting_in_the_schema_the_instructions_and_the_report(
    llm: ScriptedLLM, analyser: Callable[..., Analyser]
) -> None:
    llm.push(
        Reply.structured_output(answer(hyp("backup", ["e1"], 0.8), hyp("io", ["e2"], 0.5), hyp("log", ["e3"], 0.3)))
    )
    result = await analyser(llm_max_hypotheses=2).analyse(alert(), evidence(), [], History(), now=NOW)
    request = llm.requests[0]
    assert request.body["response_format"]["json_schema"]["schema"]["properties"]["hypotheses"]["maxItems"] == 2
    assert "1 to 2 different causes" in request.messages[0]["content"]
    # a server that ignores the schema still gets only the two most likely into the report
    assert [h.title for h in result.hypotheses] == ["backup", "io"]


async def test_an_answer_longer_than_the_bounds_from_a_server_that_ignores_them_is_still_taken(
    llm: ScriptedLLM, analyser: Callable[..., Analyser]
) -> None:
    long_step = "check " * 40
    rambling = {
        "summary": "word " * 100,  # the answer's shape had one once; a server that still sends it is not refused
        "hypotheses": [
            {
                "title": "a very long title " * 10,
                "confidence": 0.8,
                "evidence_ids": ["e1", "e2", "e3", "ev-backup"],
                "next_steps": [long_step, long_step + "twice"],
            }
        ],
    }
    llm.push(Reply.json(rambling))
    result = await analyser().analyse(alert(), evidence(), [], History(), now=NOW)
    assert result.llm is not None and result.llm.answer_json == "first_try" and llm.calls == 1
    assert "word word" not in result.summary and result.summary.startswith("HighDiskIO on instance pve1:9100:")
    assert result.hypotheses[0].evidence == ["ev-backup", "ev-io", "ev-log"]
    assert len(result.hypotheses[0].next_steps) == 2 and len(result.next_steps) == 2


async def test_the_model_sees_short_ids_in_rank_order_and_the_report_cites_the_real_ones(
    llm: ScriptedLLM, analyser: Callable[..., Analyser]
) -> None:
    llm.push(
        Reply.structured_output(
            {
                "hypotheses": [
                    {**hyp("backup IO, as e1 shows", [" E1 ", "e2"], 0.8), "next_steps": ["Compare e3 with last week"]},
                    hyp("something new", ["e3", "e9"], 0.3),
                    hyp("invented", ["e9"], 0.2),
                ],
            }
        )
    )
    items = evidence()
    result = await analyser().analyse(alert(), items, [], History(), now=NOW)
    shown = shown_evidence(llm.requests[0])
    assert [e["id"] for e in shown] == ["e1", "e2", "e3"]
    assert [e["title"] for e in shown] == [e.title for e in items]
    assert [(h.title, h.evidence) for h in result.hypotheses] == [
        ("backup IO, as ev-backup shows", ["ev-backup", "ev-io"]),
        ("something new", ["ev-log"]),
    ]
    assert result.summary == (
        "HighDiskIO on instance pve1:9100: most likely backup IO, as ev-backup shows (confidence 80%). "
        "Also possible: something new."
    )
    assert result.next_steps == ["Compare ev-log with last week", "look"]
    assert result.llm is not None and result.llm.dropped_hypotheses == 1
    assert result.prompt_evidence_ids == [e.id for e in items]


async def test_the_report_counts_the_prompt_tokens_the_server_took_from_its_cache(
    llm: ScriptedLLM, analyser: Callable[..., Analyser]
) -> None:
    llm.push(Reply.structured_output(answer(hyp("backup", ["e1"])), prompt_tokens=900, cached_prompt_tokens=416))
    result = await analyser().analyse(alert(), evidence(), [], History(), now=NOW)
    assert result.llm is not None
    assert (result.llm.input_tokens, result.llm.cached_input_tokens) == (900, 416)


async def test_a_server_that_does_not_count_its_cache_leaves_the_cached_count_at_zero(
    llm: ScriptedLLM, analyser: Callable[..., Analyser]
) -> None:
    llm.push(Reply.structured_output(answer(hyp("backup", ["e1"])), prompt_tokens=900))
    result = await analyser().analyse(alert(), evidence(), [], History(), now=NOW)
    assert result.llm is not None and result.llm.input_tokens == 900 and result.llm.cached_input_tokens == 0


def test_the_results_of_follow_up_tools_become_citable_for_the_final_answer() -> None:
    schema = answer_schema(3, ["e1", "e2"])
    widened = also_citable(schema, ["tool-1", "e2"])
    cited = widened["$defs"]["HypothesisAnswer"]["properties"]["evidence_ids"]["items"]
    assert cited["enum"] == ["e1", "e2", "tool-1"]
    # the schema of the first call is not changed, and one that bounds no ids is left as it is
    assert schema["$defs"]["HypothesisAnswer"]["properties"]["evidence_ids"]["items"]["enum"] == ["e1", "e2"]
    assert also_citable(answer_schema(3), ["tool-1"]) == answer_schema(3)


def test_a_worked_example_shows_the_answer_compact_and_citing_only_evidence_rows() -> None:
    payload = {"alert": {"alertname": "A"}, "evidence": [["e1", "change", "x", 0.5, -1.0]], "symptoms": []}
    system, example_data, example_answer, data = build_messages(payload, 2)
    assert (system[0], example_data[0], example_answer[0], data[0]) == ("system", "user", "assistant", "user")
    # the same bytes for every alert, before its data: a server's prompt cache keeps them with the instructions
    assert build_messages({"alert": {"alertname": "B"}}, 2)[:3] == [system, example_data, example_answer]
    answer = TriageAnswer.model_validate_json(example_answer[1])
    assert (
        1 <= len(answer.hypotheses) <= 2
        and len(TriageAnswer.model_validate_json(build_messages(payload, 1)[2][1]).hypotheses) == 1
    )
    # written the way the answer should be: no whitespace between its parts, ids of "evidence" rows only
    assert json.dumps(json.loads(example_answer[1]), ensure_ascii=False, separators=(",", ":")) == example_answer[1]
    cited = {i for h in answer.hypotheses for i in h.evidence_ids}
    assert cited <= set(citable_ids(EXAMPLE_PAYLOAD)) and "e4" not in citable_ids(EXAMPLE_PAYLOAD)
    # with follow-up tools offered there is no example: one answered straight away would teach not to ask for them
    assert build_messages(payload, 2, worked_example=False) == [system, data]
