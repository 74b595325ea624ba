"""The scripted OpenAI-compatible server, exercised through the real langchain-openai client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import openai
import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.support.llm_server import RecordedRequest, Reply, ScriptedHTTPServer, ScriptedLLM, ToolCall, count_tokens


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


def chat(server: ScriptedLLM, **kwargs: object) -> ChatOpenAI:
    options: dict[str, object] = {"max_retries": 0, "timeout": 5.0}
    options.update(kwargs)
    return ChatOpenAI(base_url=server.url, api_key="x", model="test-model", **options)  # type: ignore[arg-type]


class Verdict(BaseModel):
    cause: str
    confidence: float


async def test_plain_reply_reaches_the_client_with_token_usage(llm: ScriptedLLM) -> None:
    llm.push(Reply(content="the disk is full"))
    message = await chat(llm).ainvoke("why is the alert firing?")
    assert message.content == "the disk is full"
    assert isinstance(message, AIMessage) and message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == count_tokens("the disk is full") + 1
    assert message.usage_metadata["input_tokens"] > count_tokens("why is the alert firing?")
    assert llm.calls == 1
    assert llm.requests[0].messages[-1] == {"role": "user", "content": "why is the alert firing?"}
    assert llm.requests[0].headers["authorization"] == "Bearer x"


async def test_streaming_reply_arrives_in_chunks_with_a_final_usage_chunk(llm: ScriptedLLM) -> None:
    text = "memory grew steadily for two hours before the OOM kill"
    llm.push(Reply(content=text))
    chunks = [c async for c in chat(llm, stream_usage=True).astream("explain")]
    assert len(chunks) > 3
    assert "".join(str(c.content) for c in chunks) == text
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage and usage[-1]["output_tokens"] == count_tokens(text) + 1
    assert llm.requests[0].body["stream"] is True


async def test_a_streaming_reply_comes_in_the_chunks_it_names_at_its_pace(llm: ScriptedLLM) -> None:
    pieces = ["the tok", "en is sk-", "abc", "def and more"]
    llm.push(Reply(chunks=pieces, chunk_delay_s=0.1))
    arrived: list[tuple[float, str]] = []
    async for chunk in chat(llm).astream("explain"):
        if chunk.content:
            arrived.append((time.monotonic(), str(chunk.content)))
    assert [text for _, text in arrived] == pieces
    assert arrived[-1][0] - arrived[0][0] > 0.25
    with pytest.raises(ValueError, match="disagree"):
        Reply(content="other text", chunks=pieces)


async def test_tool_call_deltas_are_reassembled_by_the_client_when_streaming(llm: ScriptedLLM) -> None:
    @tool
    def loki_query(query: str) -> str:
        """Run a LogQL query."""
        return query

    llm.push(Reply(tool_calls=[ToolCall("loki_query", {"query": '{job="nginx"} |= "error"'})]))
    model = chat(llm).bind_tools([loki_query])
    merged = None
    async for chunk in model.astream("look at the logs"):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    assert merged.tool_calls[0]["name"] == "loki_query"  # type: ignore[attr-defined]
    assert merged.tool_calls[0]["args"] == {"query": '{job="nginx"} |= "error"'}  # type: ignore[attr-defined]
    assert llm.requests[0].body["tools"][0]["function"]["name"] == "loki_query"


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
async def test_structured_reply_is_shaped_after_the_requested_method(llm: ScriptedLLM, method: str) -> None:
    llm.push(Reply.structured_output({"cause": "backup saturating disk IO", "confidence": 0.8}))
    model = chat(llm).with_structured_output(Verdict, method=method, include_raw=True)  # type: ignore[arg-type]
    result = await model.ainvoke("diagnose")
    assert isinstance(result, dict)
    assert result["parsed"] == Verdict(cause="backup saturating disk IO", confidence=0.8)
    body = llm.requests[0].body
    assert ("response_format" in body) == (method == "json_schema")
    assert ("tools" in body) == (method == "function_calling")


async def test_rate_limit_is_retried_by_the_client_and_both_requests_are_recorded(llm: ScriptedLLM) -> None:
    llm.push(Reply.error(429, "slow down", retry_after_s=0.01), Reply(content="ok"))
    message = await chat(llm, max_retries=1).ainvoke("hi")
    assert message.content == "ok"
    assert llm.calls == 2


async def test_server_error_surfaces_as_the_openai_status_error(llm: ScriptedLLM) -> None:
    llm.push(Reply.error(500, "boom"))
    with pytest.raises(openai.InternalServerError):
        await chat(llm).ainvoke("hi")


async def test_malformed_body_is_an_error_for_the_client(llm: ScriptedLLM) -> None:
    llm.push(Reply.malformed(b"<html>bad gateway</html>"))
    with pytest.raises(Exception):  # noqa: B017 - the client raises its own decoding error type
        await chat(llm).ainvoke("hi")


async def test_delay_longer_than_the_client_timeout_times_out(llm: ScriptedLLM) -> None:
    llm.push(Reply(content="late", delay_s=1.0))
    with pytest.raises(openai.APITimeoutError):
        await chat(llm, timeout=0.2).ainvoke("hi")


async def test_empty_script_falls_back_to_the_responder_then_to_a_500() -> None:
    def responder(request: RecordedRequest) -> Reply:
        return Reply(content=f"seen {len(request.messages)} messages")

    with ScriptedLLM(responder=responder) as server:
        assert (await chat(server).ainvoke("hi")).content == "seen 1 messages"
    with ScriptedLLM() as server, pytest.raises(openai.InternalServerError):
        await chat(server).ainvoke("hi")


def test_prompt_text_joins_every_message() -> None:
    request = RecordedRequest(
        "/v1/chat/completions", {}, {"messages": [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}]}
    )
    assert request.prompt_text == "a\nb"


async def test_a_client_that_gives_up_mid_reply_leaves_no_traceback_on_stderr(
    llm: ScriptedLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    delay_s = 0.3
    # a long streamed reply: hundreds of writes after the client has closed the connection
    llm.push(Reply(content="the disk is full " * 600, delay_s=delay_s))
    with pytest.raises(openai.APITimeoutError):
        await chat(llm, timeout=0.1, streaming=True).ainvoke("hi")
    await asyncio.sleep(delay_s + 0.7)  # the handler wakes, writes into the closed socket and gives up
    assert llm.calls == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "BrokenPipeError" not in err and "ConnectionResetError" not in err, err


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset by peer")])
def test_the_server_ignores_a_hung_up_client(error: OSError, capsys: pytest.CaptureFixture[str]) -> None:
    server = ScriptedHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        try:
            raise error
        except OSError:
            server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    assert capsys.readouterr().err == ""


def test_other_handler_errors_still_print_their_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    server = ScriptedHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        try:
            raise ValueError("the handler broke")
        except ValueError:
            server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: the handler broke" in err
