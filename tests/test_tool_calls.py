"""The one runner of the read-only tools a model calls (triage follow-up round and /ask): the allowlist, the
timeout, failures as short texts, and tool messages with their artifact."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.tools import StructuredTool, tool

from triage.analysis.tool_calls import ERROR_CHARS, run_tool, tool_allowlist


@tool
async def echo(text: str) -> str:
    """Echo the text."""
    return text


@tool
async def slow(text: str) -> str:
    """Answer late."""
    await asyncio.sleep(5)
    return text


@tool
async def broken(text: str) -> str:
    """Fail."""
    raise RuntimeError("x" * 1000)


async def _sections(text: str) -> tuple[str, list[dict[str, str]]]:
    return f"found {text}", [{"kind": "runbook", "title": text}]


sections = StructuredTool.from_function(
    coroutine=_sections, name="sections", description="With an artifact.", response_format="content_and_artifact"
)


def test_the_allowlist_is_by_name_and_refuses_two_tools_of_one_name() -> None:
    assert tool_allowlist([echo, slow]) == {"echo": echo, "slow": slow}
    with pytest.raises(ValueError, match="duplicate tool names: \\['echo'\\]"):
        tool_allowlist([echo, echo])


async def test_a_call_with_or_without_an_id_gives_the_tools_text() -> None:
    assert (await run_tool(echo, {"name": "echo", "args": {"text": "hi"}, "id": "c1"})).text == "hi"
    assert (await run_tool(echo, {"name": "echo", "args": {"text": "hi"}, "id": None})).text == "hi"


async def test_an_artifact_comes_with_the_text() -> None:
    run = await run_tool(sections, {"name": "sections", "args": {"text": "disk"}, "id": "c1"})
    assert run.ok and run.text == "found disk" and run.artifact == [{"kind": "runbook", "title": "disk"}]


async def test_the_timeout_and_failures_are_short_texts() -> None:
    late = await run_tool(slow, {"name": "slow", "args": {"text": "hi"}, "id": "c1"}, timeout_s=0.05)
    assert (late.ok, late.text) == (False, "error: slow did not answer within 0.05s")
    bare = await run_tool(broken, {"name": "broken", "args": {"text": "hi"}, "id": "c1"})
    assert (bare.ok, bare.text) == (False, "error: broken failed (RuntimeError)")
    told = await run_tool(broken, {"name": "broken", "args": {"text": "hi"}, "id": "c1"}, error_detail=True)
    assert told.text.startswith("error: broken failed: RuntimeError: xxx") and len(told.text) == ERROR_CHARS


async def test_invalid_arguments_name_the_field() -> None:
    run = await run_tool(echo, {"name": "echo", "args": {"txt": "hi"}, "id": "c1"})
    assert not run.ok and run.text.startswith("error: invalid arguments for echo: text: Field required")
