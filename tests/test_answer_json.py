"""Getting the answer's JSON out of what small models write, and recognising tool calls written as text."""

from __future__ import annotations

import json

import pytest

from triage.analysis.analyser import UnusableAnswer, parse_answer
from triage.analysis.answer_json import FENCED, PROSE, TRUNCATED, NoJsonObject, extract_object
from triage.analysis.llm_compat import output_limit_body, text_tool_call
from triage.settings import LlmSettings

ANSWER = {
    "summary": "A backup saturates the disk.",
    "hypotheses": [
        {"title": "backup IO", "confidence": 0.8, "evidence_ids": ["ev-backup", "ev-io"], "next_steps": ["move it"]},
        {"title": "noisy guest", "confidence": 0.3, "evidence_ids": ["ev-log"], "next_steps": ["look at guest"]},
    ],
    "next_steps": ["check the backup schedule"],
}
TEXT = json.dumps(ANSWER, indent=2)


def test_a_bare_object_needs_no_repair() -> None:
    extracted = extract_object(TEXT)
    assert extracted.value == ANSWER and extracted.repairs == []


def test_a_fenced_object_with_prose_around_it_is_read_and_both_repairs_are_named() -> None:
    text = f"Here is my analysis:\n```json\n{TEXT}\n```\nLet me know if you need more."
    extracted = extract_object(text)
    assert extracted.value == ANSWER
    assert extracted.repairs == [FENCED, PROSE]


def test_a_fence_alone_is_named_without_prose() -> None:
    assert extract_object(f"```\n{TEXT}\n```").repairs == [FENCED]


def test_trailing_prose_after_the_object_is_ignored() -> None:
    extracted = extract_object(TEXT + "\n\nThe backup is the most likely cause {probably}.")
    assert extracted.value == ANSWER and extracted.repairs == [PROSE]


def test_an_answer_cut_mid_hypothesis_keeps_the_complete_ones() -> None:
    cut = TEXT[: TEXT.index('"noisy guest"') + 5]
    extracted = extract_object(cut, lambda v: all("confidence" in h for h in v.get("hypotheses", [])))
    assert TRUNCATED in extracted.repairs
    assert extracted.value["summary"] == ANSWER["summary"]
    assert [h["title"] for h in extracted.value["hypotheses"]] == ["backup IO"]


def test_an_answer_cut_inside_a_string_in_an_open_fence_is_closed() -> None:
    cut = "```json\n" + TEXT[: TEXT.index("check the backup") + 5]
    value = extract_object(cut).value
    assert [h["title"] for h in value["hypotheses"]] == ["backup IO", "noisy guest"]
    assert "next_steps" not in value  # cut inside its first string: dropped whole


@pytest.mark.parametrize("text", ["", "I think the backup did it.", "[1, 2, 3]", '{"summary": '])
def test_text_without_a_usable_object_is_refused(text: str) -> None:
    with pytest.raises(NoJsonObject):
        extract_object(text)


def test_a_cut_answer_that_never_fits_the_schema_is_unusable() -> None:
    with pytest.raises(UnusableAnswer, match="not valid JSON for the triage schema"):
        parse_answer('{"hypotheses": [{"title": "backup", "confidence": 0.8')


def test_parse_answer_returns_the_triage_answer_and_its_repairs() -> None:
    answer, repairs = parse_answer("```json\n" + TEXT[:-30])
    assert [h.title for h in answer.hypotheses] == ["backup IO", "noisy guest"] and repairs == [FENCED, TRUNCATED]


TOOLS = {"loki_query", "prometheus_query"}


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{\n  "name": "loki_query",\n  "arguments": {\n    "query": "{job=\\"vzdump\\"}"\n  }\n}\n```',
        '<tool_call>\n{"name": "prometheus_query", "arguments": {"query": "up"}}\n</tool_call>',
        '{"function": {"name": "loki_query", "parameters": {"query": "{}"}}}',
        'I will check the logs. {"tool": "loki_query", "args": {"query": "{}"}}',
    ],
)
def test_a_tool_call_written_as_text_is_recognised(text: str) -> None:
    assert text_tool_call(text, TOOLS) in TOOLS


@pytest.mark.parametrize(
    "text",
    [
        TEXT,  # an answer, not a call
        '{"name": "delete_everything", "arguments": {}}',  # not one of the tools offered
        '{"name": "loki_query"}',  # a name alone is not a call
        "The loki_query tool would help here.",
    ],
)
def test_answers_and_other_text_are_not_tool_calls(text: str) -> None:
    assert text_tool_call(text, TOOLS) is None


@pytest.mark.parametrize(
    ("base_url", "sent"),
    [
        ("http://127.0.0.1:11434/v1", {"max_tokens": 321}),
        ("http://llama.lan:8080/v1", {"max_tokens": 321}),
        ("https://api.openai.com/v1", {}),
        (None, {}),
    ],
)
def test_the_output_limit_also_goes_as_max_tokens_to_every_endpoint_but_openai(
    base_url: str | None, sent: dict[str, int]
) -> None:
    settings = LlmSettings(openai_base_url=base_url, openai_api_key=None, llm_max_output_tokens=321)
    assert output_limit_body(settings) == sent
