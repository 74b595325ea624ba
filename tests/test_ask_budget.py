"""/ask spends from the hourly LLM token budget triage uses, and one API process answers a bounded number at once.

The real langchain-openai client talks to the scripted model server; the budget lives in the real test Redis (over
HTTP) or in memory (the agent alone), so the tokens charged can be compared with what the endpoint reported.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.fakes.loki import FakeLoki
from tests.support.ask import API_TOKEN, Events, ask_settings, parse_sse, served
from tests.support.llm_server import Reply, ScriptedLLM, ToolCall
from tools.langchain_tools import build_tools
from triage.agent.admission import AskSlots, BudgetSpent, TooManyQuestions
from triage.agent.events import LlmFailed
from triage.agent.service import AskService
from triage.agent.sessions import SessionStore, owner_identity
from triage.agent.wiring import READ_ONLY_TOOL_NAMES
from triage.analysis.budget import MemoryTokenBudget, RedisTokenBudget, resets_at
from triage.cli import cmd_ask
from triage.settings import Settings
from webhook.app import create_app

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
OWNER = owner_identity(API_TOKEN)


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


def settings_for(make_settings: Any, llm: ScriptedLLM, *, budget: int = 200_000, **ask: Any) -> Settings:
    settings = ask_settings(make_settings, llm, **ask)
    return settings.model_copy(
        update={"llm": settings.llm.model_copy(update={"llm_hourly_token_budget": budget})}, deep=True
    )


@asynccontextmanager
async def api(settings: Settings, loki: FakeLoki | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    client = loki.client() if loki is not None else None
    app.state.ask_source_tools = build_tools(loki=client)
    try:
        async with served(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=20) as http:
            yield http
    finally:
        if client is not None:
            await client.aclose()


async def spend_the_hour(redis: Redis, limit: int) -> None:
    """Triage used the whole budget (this hour and the next, so the test does not straddle a reset)."""
    budget = RedisTokenBudget(redis)
    now = datetime.now(UTC)
    for at in (now, now + timedelta(hours=1)):
        assert await budget.reserve(limit, limit, at)


def assert_429(response: httpx.Response, code: str) -> str:
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["status"] == 429 and error["code"] == code
    assert 1 <= int(response.headers["retry-after"]) <= 3600
    return str(error["message"])


async def test_an_answered_question_charges_the_reported_tokens_to_the_budget_triage_uses(
    make_settings: Any, llm: ScriptedLLM, redis: Redis
) -> None:
    llm.push(Reply(content="Disk on pve1 is 91% full.", prompt_tokens=321, completion_tokens=45))
    async with api(settings_for(make_settings, llm)) as http:
        response = await http.post("/ask", json={"question": "how full is pve1's disk?"}, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["usage"]["input_tokens"] == 321
    # the reservation (prompt estimate plus the completion limit) was replaced by exactly what the endpoint reported
    assert await RedisTokenBudget(redis).spent(datetime.now(UTC)) == 366


async def test_a_question_is_refused_with_429_saying_when_the_spent_budget_resets(
    make_settings: Any, llm: ScriptedLLM, redis: Redis
) -> None:
    await spend_the_hour(redis, 5000)
    async with api(settings_for(make_settings, llm, budget=5000)) as http:
        plain = await http.post("/ask", json={"question": "why is jellyfin slow?"}, headers=AUTH)
        stream = await http.post("/ask/stream", json={"question": "why is jellyfin slow?"}, headers=AUTH)

    for response in (plain, stream):
        message = assert_429(response, "llm_budget_spent")
        assert "hourly LLM token budget (5000 tokens" in message
        reset = re.search(r"resets at (\d\d):(\d\d) UTC \(in (\d+) min\)", message)
        assert reset is not None and reset.group(2) == "00"
        assert int(reset.group(3)) <= 60
    assert llm.requests == []  # refused before the model was asked


async def test_a_stream_whose_first_call_does_not_fit_the_budget_ends_with_a_429_error_event(
    make_settings: Any, llm: ScriptedLLM, redis: Redis
) -> None:
    settings = settings_for(make_settings, llm, budget=5000)
    # room for one reply but not for the prompt as well: the question starts, its first model call cannot
    left = settings.llm.llm_max_output_tokens
    now = datetime.now(UTC)
    for at in (now, now + timedelta(hours=1)):
        assert await RedisTokenBudget(redis).reserve(5000 - left, 5000, at)
    async with (
        api(settings) as http,
        http.stream("POST", "/ask/stream", json={"question": "what failed tonight?"}, headers=AUTH) as response,
    ):
        assert response.status_code == 200
        body = "".join([chunk async for chunk in response.aiter_text()])

    events = parse_sse(body)
    kinds = [kind for kind, _ in events]
    assert kinds[-2:] == ["error", "done"] and "answer" not in kinds
    error = dict(events)["error"]
    assert error["code"] == "llm_budget_spent" and error["status"] == 429
    assert "resets at" in error["message"]
    assert llm.requests == []
    assert await RedisTokenBudget(redis).spent(now) == 5000 - left  # the refused reservation was given back


async def test_questions_over_ask_max_concurrent_are_refused_until_one_finishes(
    make_settings: Any, llm: ScriptedLLM, redis: Redis
) -> None:
    llm.push(Reply(content="first answer", delay_s=1.5), Reply(content="third answer"))
    async with api(settings_for(make_settings, llm, max_concurrent=1)) as http:
        first = asyncio.create_task(http.post("/ask", json={"question": "first?"}, headers=AUTH))
        while not llm.requests:
            await asyncio.sleep(0.02)
        second = await http.post("/ask", json={"question": "second?"}, headers=AUTH)
        second_stream = await http.post("/ask/stream", json={"question": "second?"}, headers=AUTH)
        assert (await first).json()["answer"] == "first answer"
        third = await http.post("/ask", json={"question": "third?"}, headers=AUTH)

    for refused in (second, second_stream):
        message = assert_429(refused, "too_many_questions")
        assert "1 questions are being answered already (ASK_MAX_CONCURRENT)" in message
    assert third.status_code == 200 and third.json()["answer"] == "third answer"
    assert len(llm.requests) == 2


async def test_a_stream_the_client_abandons_gives_its_slot_back(
    make_settings: Any, llm: ScriptedLLM, redis: Redis
) -> None:
    llm.push(Reply(content="never read", delay_s=10.0), Reply(content="next answer"))
    async with api(settings_for(make_settings, llm, max_concurrent=1)) as http:
        async with http.stream("POST", "/ask/stream", json={"question": "slow?"}, headers=AUTH) as response:
            assert response.status_code == 200
            # The reader is held and closed here: one dropped after ``break`` is finalized at once, and closing it
            # closes the connection, so the client would leave before the model is asked (a race, not the scenario).
            async with aclosing(response.aiter_text()) as chunks:
                async for chunk in chunks:
                    if "asking the model" in chunk:
                        break
                for _ in range(250):  # the model is writing the first answer when the client leaves
                    if llm.requests:
                        break
                    await asyncio.sleep(0.02)
                assert len(llm.requests) == 1, "the model was not asked"
        left = time.monotonic()
        # the server notices the disconnect and cancels the run; the slot is free again long before that answer is due
        while True:
            after = await http.post("/ask", json={"question": "next?"}, headers=AUTH)
            if after.status_code != 429 or time.monotonic() - left > 5:
                break
            await asyncio.sleep(0.05)
    assert after.status_code == 200 and after.json()["answer"] == "next answer"


def memory_service(make_settings: Any, llm: ScriptedLLM, redis: Redis, budget: MemoryTokenBudget, limit: int) -> Any:
    settings = settings_for(make_settings, llm, budget=limit)
    loki = FakeLoki(token="loki-token-5ecret-0003")
    loki.push({"service": "jellyfin"}, 'level=error msg="transcode failed: ffmpeg exited 137"', at=datetime.now(UTC))
    client = loki.client()
    service = AskService(
        settings,
        sessions=SessionStore(redis, ttl_s=600),
        tools=build_tools(loki=client),
        allowed_tool_names=READ_ONLY_TOOL_NAMES,
        budget=budget,
    )
    return service, client


async def test_a_budget_that_runs_out_after_a_tool_call_answers_with_the_gathered_results(
    make_settings: Any, llm: ScriptedLLM, redis: Redis
) -> None:
    budget = MemoryTokenBudget()
    service, client = memory_service(make_settings, llm, redis, budget, limit=20_000)
    # the first turn's reported usage leaves less than one reply's worth of the hour
    llm.push(
        Reply(tool_calls=[ToolCall("loki_query", {"query": '{service="jellyfin"}'})], prompt_tokens=19_500),
        Reply(content="never asked"),
    )
    try:
        session = await service.open_session(None, OWNER)
        result = await service.ask("why is jellyfin failing?", session=session, emit=Events())
    finally:
        await client.aclose()

    assert len(llm.requests) == 1
    assert result.answer.startswith("No written answer is available")
    assert "- loki_query" in result.answer and "(ok):" in result.answer
    assert any("token budget ran out" in cut for cut in result.cut)
    assert "incomplete" in result.answer  # the user is told the answer was cut
    assert await budget.spent(datetime.now(UTC)) <= 20_000


async def test_a_failed_model_call_gives_its_reservation_back(
    make_settings: Any, llm: ScriptedLLM, redis: Redis
) -> None:
    budget = MemoryTokenBudget()
    service, client = memory_service(make_settings, llm, redis, budget, limit=20_000)
    llm.push(Reply.error(400, "bad request"))
    try:
        session = await service.open_session(None, OWNER)
        with pytest.raises(LlmFailed):
            await service.ask("anything odd on pve1?", session=session, emit=Events())
    finally:
        await client.aclose()
    assert await budget.spent(datetime.now(UTC)) == 0


async def test_admission_refuses_a_question_the_remaining_budget_cannot_reply_to(
    make_settings: Any, llm: ScriptedLLM, redis: Redis
) -> None:
    budget = MemoryTokenBudget()
    service, client = memory_service(make_settings, llm, redis, budget, limit=5000)
    await client.aclose()
    now = datetime.now(UTC)
    reply_tokens = service.settings.llm.llm_max_output_tokens
    assert await budget.reserve(5000 - reply_tokens, 5000, now)
    (await service.admit()).release()  # exactly one reply's worth left: admitted
    assert await budget.reserve(1, 5000, now)
    with pytest.raises(BudgetSpent) as refused:
        await service.admit()
    assert refused.value.status_code == 429
    assert service.slots.active == 0  # a refused question holds no slot


def test_slots_refuse_over_the_limit_and_release_only_once() -> None:
    slots = AskSlots(2)
    first, second = slots.acquire(), slots.acquire()
    with pytest.raises(TooManyQuestions):
        slots.acquire()
    first.release()
    first.release()
    assert slots.active == 1
    slots.acquire()
    with pytest.raises(TooManyQuestions):
        slots.acquire()
    second.release()
    assert slots.active == 1


def test_the_reset_time_is_the_next_full_hour_in_utc() -> None:
    now = datetime(2026, 11, 26, 11, 59, 59, tzinfo=UTC)
    assert resets_at(now) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    error = BudgetSpent(1000, now)
    assert error.retry_after_s == 1
    assert "resets at 12:00 UTC (in 1 min)" in str(error)


async def test_the_terminal_refuses_a_question_while_the_budget_is_spent(
    make_settings: Any, llm: ScriptedLLM, redis: Redis
) -> None:
    await spend_the_hour(redis, 5000)
    out, err = io.StringIO(), io.StringIO()
    status = await cmd_ask.ask(settings_for(make_settings, llm, budget=5000), "anything odd?", out=out, err=err)

    assert status == 1 and out.getvalue() == ""
    assert "hourly LLM token budget (5000 tokens" in err.getvalue() and "resets at" in err.getvalue()
    assert llm.requests == []
