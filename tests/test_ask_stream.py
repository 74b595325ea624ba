"""The /ask answer streamed as ``answer_delta`` events while the model writes it: the scripted model paces and splits
its reply, the real langchain-openai client streams it, the app runs on a real uvicorn with a real Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.fakes.loki import FakeLoki
from tests.support.ask import API_TOKEN, SECRET_VALUES, Events, ask_settings, parse_sse, served
from tests.support.llm_server import Reply, ScriptedLLM, ToolCall
from tools.langchain_tools import build_tools
from triage.agent.service import AskService
from triage.agent.sessions import SessionStore, owner_identity
from triage.agent.stream_redaction import MASK, Redactor
from triage.constants import ASK_SESSION_PREFIX
from webhook.app import create_app

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
OWNER = owner_identity(API_TOKEN)
ANSWER_CHUNKS = [
    "ffmpeg was ",
    "OOM-killed while ",
    "transcoding a 4K ",
    "stream; the LXC ",
    "sat at 95% of ",
    "its 4 GiB memory ",
    "limit. Raise it ",
    "to 6 GiB.",
]
LOKI_CALL = ToolCall("loki_query", {"query": '{service="jellyfin"} |= "error"', "lookback_minutes": 120})


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
async def loki() -> AsyncIterator[FakeLoki]:
    fake = FakeLoki(token="loki-token-5ecret-0003")
    fake.push({"service": "jellyfin"}, 'level=error msg="transcode failed: ffmpeg exited 137"', at=datetime.now(UTC))
    yield fake


@asynccontextmanager
async def api(make_settings: Any, llm: ScriptedLLM, loki: FakeLoki) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ask_settings(make_settings, llm))
    client = loki.client()
    app.state.ask_source_tools = build_tools(loki=client)
    try:
        async with served(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=20) as http:
            yield http
    finally:
        await client.aclose()


@asynccontextmanager
async def service(
    make_settings: Any, llm: ScriptedLLM, loki: FakeLoki, redis: Redis, **ask: Any
) -> AsyncIterator[AskService]:
    settings = ask_settings(make_settings, llm, **ask)
    client = loki.client()
    try:
        yield AskService(settings, sessions=SessionStore(redis, ttl_s=600), tools=build_tools(loki=client))
    finally:
        await client.aclose()


async def read_stream(http: httpx.AsyncClient, question: str) -> list[tuple[float, str, dict[str, Any]]]:
    """Every event of one streamed question with the time it arrived."""
    arrived: list[tuple[float, str, dict[str, Any]]] = []
    async with http.stream("POST", "/ask/stream", json={"question": question}, headers=AUTH) as response:
        assert response.status_code == 200
        buffer = ""
        async for chunk in response.aiter_text():
            buffer += chunk
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                arrived += [(time.monotonic(), kind, data) for kind, data in parse_sse(frame + "\n\n")]
    return arrived


def deltas_since_reset(events: list[tuple[str, dict[str, Any]]]) -> str:
    text = ""
    for kind, data in events:
        if kind == "answer_delta":
            text = "" if data.get("reset") else text + data["text"]
    return text


async def test_the_answer_streams_in_deltas_before_the_answer_event_and_they_add_up_to_it(
    make_settings: Any, llm: ScriptedLLM, loki: FakeLoki
) -> None:
    llm.push(Reply(tool_calls=[LOKI_CALL]), Reply(chunks=ANSWER_CHUNKS, chunk_delay_s=0.15))
    async with api(make_settings, llm, loki) as http:
        arrived = await read_stream(http, "why is jellyfin slow?")

    kinds = [k for _, k, _ in arrived]
    assert kinds[-2:] == ["answer", "done"] and "error" not in kinds
    deltas = [(t, d) for t, k, d in arrived if k == "answer_delta"]
    assert len(deltas) >= 4, "the answer came in one piece, not as the model wrote it"
    # the tool-call turn showed nothing: every delta comes after the tool ran, and none is a reset
    last_delta = max(i for i, k in enumerate(kinds) if k == "answer_delta")
    assert kinds.index("tool_end") < kinds.index("answer_delta") and last_delta < kinds.index("answer")
    assert not any(d.get("reset") for _, d in deltas)
    answer_at, _, answer = next(a for a in arrived if a[1] == "answer")
    assert "".join(d["text"] for _, d in deltas) == answer["answer"] == "".join(ANSWER_CHUNKS)
    # the first words were on the wire while the model was still writing the rest (8 chunks, 0.15 s apart)
    assert answer_at - deltas[0][0] > 0.6
    # whole words only: no delta but the last ends inside a word
    assert all(d["text"][-1].isspace() for _, d in deltas[:-1])


async def test_a_secret_split_across_chunks_never_appears_in_any_event(
    make_settings: Any, llm: ScriptedLLM, loki: FakeLoki
) -> None:
    llm_key, loki_token = "sk-llm-key-5ecret-0002", "loki-token-5ecret-0003"
    chunks = [
        "The key is sk-ll",
        "m-key-",
        "5ecr",
        "et-0",
        "002, and the Loki one is ",
        "loki-to",
        "ken-5ecret-00",
        "03 today.",
    ]
    assert "".join(chunks) == f"The key is {llm_key}, and the Loki one is {loki_token} today."
    llm.push(Reply(chunks=chunks, chunk_delay_s=0.05))
    async with api(make_settings, llm, loki) as http:
        response = await http.post("/ask/stream", json={"question": "what are the keys?"}, headers=AUTH)

    events = parse_sse(response.text)
    deltas = [d["text"] for k, d in events if k == "answer_delta"]
    answer = next(d for k, d in events if k == "answer")["answer"]
    assert len(deltas) >= 3
    assert "".join(deltas) == answer == f"The key is {MASK}, and the Loki one is {MASK} today."
    # no secret, whole or in parts of six characters, in anything sent: split pieces are never shown on their own
    for secret in SECRET_VALUES:
        pieces = {secret[i : i + 6] for i in range(len(secret) - 5)}
        assert not [p for p in pieces if p in response.text], f"part of {secret!r} was sent"


def test_a_secret_with_spaces_is_held_back_until_it_is_complete_or_ruled_out() -> None:
    stream = Redactor(["correct horse battery staple"]).stream()
    shown = [
        stream.feed(piece) for piece in ["the pass is correct ", "horse battery ", "staple, and correct ", "horses "]
    ]
    assert shown == ["the pass is ", "", f"{MASK}, and ", "correct horses "]
    assert stream.released == "the pass is correct horse battery staple, and correct horses "


async def test_text_the_model_writes_before_calling_tools_is_taken_back(
    make_settings: Any, llm: ScriptedLLM, loki: FakeLoki, redis: Redis
) -> None:
    llm.push(
        Reply(content="Let me check the jellyfin logs first. ", tool_calls=[LOKI_CALL]),
        Reply(chunks=ANSWER_CHUNKS),
    )
    async with service(make_settings, llm, loki, redis) as ask:
        session = await ask.open_session(None, OWNER)
        events = [e async for e in ask.stream("why is jellyfin slow?", session=session) if e is not None]

    kinds = [e.type for e in events]
    pairs = [(e.type, e.data) for e in events]
    before_tools = pairs[: kinds.index("tool_start")]
    assert [d["text"] for k, d in before_tools if k == "answer_delta" and not d.get("reset")], "the preamble streamed"
    last_delta = [d for k, d in before_tools if k == "answer_delta"][-1]
    assert last_delta == {"text": "", "reset": True}, "the preamble was not taken back before the tools ran"
    answer = next(d for k, d in pairs if k == "answer")["answer"]
    assert answer == "".join(ANSWER_CHUNKS)
    assert deltas_since_reset(pairs) == answer
    assert "loki_query" not in json.dumps([d for k, d in pairs if k == "answer_delta"])


async def test_the_deadline_cuts_a_long_answer_keeping_the_words_written_and_saying_so(
    make_settings: Any, llm: ScriptedLLM, loki: FakeLoki, redis: Redis
) -> None:
    words = [f"word{i} " for i in range(40)]
    llm.push(Reply(chunks=words, chunk_delay_s=0.1))  # four seconds of writing
    events = Events()
    async with service(make_settings, llm, loki, redis, deadline_s=2.0, final_answer_s=1.0) as ask:
        session = await ask.open_session(None, OWNER)
        started = time.monotonic()
        result = await ask.ask("explain everything", session=session, emit=events)
        elapsed = time.monotonic() - started

    # the answer started inside the tool loop's share (1 s) and was allowed the whole deadline (2 s), no more
    assert 1.8 < elapsed < 2.6
    assert llm.calls == 1, "the answer being written was thrown away and asked for again"
    text, note = result.answer.split("\n\n")
    assert text.startswith("word0 word1 word2") and len(text.split()) < len(words)
    assert text.split() == [w.strip() for w in words[: len(text.split())]]
    assert "may be incomplete" in note and "2 s deadline" in note and "while the model was writing" in note
    assert deltas_since_reset([(e.type, e.data) for e in events.items]) == result.answer


async def test_a_client_that_leaves_while_the_answer_streams_stops_the_run(
    make_settings: Any, llm: ScriptedLLM, loki: FakeLoki, redis: Redis
) -> None:
    llm.push(Reply(chunks=[f"word{i} " for i in range(15)], chunk_delay_s=0.2))  # three seconds of writing
    async with api(make_settings, llm, loki) as http:
        async with http.stream("POST", "/ask/stream", json={"question": "slow?"}, headers=AUTH) as response:
            async for line in response.aiter_lines():
                if line.startswith("event: answer_delta"):
                    break  # leaving the block closes the connection mid-answer
        await asyncio.sleep(3.5)  # longer than the model would still write, had the run gone on
        keys = await redis.keys(ASK_SESSION_PREFIX + "*")
        assert len(keys) == 1
        stored = await redis.get(keys[0])
        assert stored is not None and b'"turns":[]' in stored, "the run went on and stored the answer"


async def test_tool_calls_after_some_text_keep_the_tool_loop_to_its_own_deadline(
    make_settings: Any, llm: ScriptedLLM, loki: FakeLoki, redis: Redis
) -> None:
    # text first, which looks like an answer, then a slow tool call that would eat the answer's reserve
    llm.push(
        Reply(content="Let me look. ", tool_calls=[LOKI_CALL], chunk_delay_s=0.3),
        Reply(content="The logs could not be checked in time."),
    )
    events = Events()
    async with service(make_settings, llm, loki, redis, deadline_s=2.0, final_answer_s=1.0) as ask:
        session = await ask.open_session(None, OWNER)
        result = await ask.ask("any errors?", session=session, emit=events)

    assert result.answer.startswith("The logs could not be checked in time.")
    assert "while the model was thinking" in result.answer
    assert llm.calls == 2 and events.of("tool_start") == []
    assert deltas_since_reset([(e.type, e.data) for e in events.items]) == result.answer
