"""/ask over HTTP: the app on a real uvicorn, read by a real HTTP client (httpx), the model scripted on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from reports.store.sqlite import SqliteStore
from tests.fakes.loki import FakeLoki
from tests.support.ask import API_TOKEN, SECRET_VALUES, ask_settings, parse_sse, recent_report, served
from tests.support.llm_server import Reply, ScriptedLLM, ToolCall
from tools.langchain_tools import build_tools
from triage.constants import ASK_SESSION_PREFIX
from triage.settings import Settings
from webhook.app import create_app

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


class CountingLoki(FakeLoki):
    """FakeLoki that counts the requests it finished answering (a cancelled request never gets here)."""

    finished = 0

    def respond(self, request: httpx.Request) -> httpx.Response:
        self.finished += 1
        return super().respond(request)


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def loki() -> CountingLoki:
    fake = CountingLoki(token="loki-token-5ecret-0003")
    now = datetime.now(UTC)
    fake.push({"service": "jellyfin"}, 'level=error msg="transcode failed: ffmpeg exited 137"', at=now)
    return fake


@asynccontextmanager
async def api(settings: Settings, loki: FakeLoki | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its /ask tools over the fakes, served by uvicorn; a client on its base URL."""
    store = SqliteStore(settings.storage.database_url.removeprefix("sqlite:///"))
    await store.init()
    await store.save(recent_report(1, alertname="HighMemory", hours_ago=30))
    await store.close()
    app = create_app(settings)
    client = loki.client() if loki is not None else None
    app.state.ask_source_tools = build_tools(loki=client)
    try:
        async with served(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=20) as http:
            yield http
    finally:
        if client is not None:
            await client.aclose()


def assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == status and body["error"]["code"] == code
    return dict(body["error"])


async def test_the_stream_delivers_progress_before_the_answer_and_ends_with_done(
    make_settings: Any, llm: ScriptedLLM, loki: CountingLoki
) -> None:
    llm.push(
        Reply(tool_calls=[ToolCall("loki_query", {"query": '{service="jellyfin"}'})]),
        Reply(content="ffmpeg was OOM-killed while transcoding.", delay_s=1.0),
    )
    arrived: list[tuple[float, str, dict[str, Any]]] = []
    async with (
        api(ask_settings(make_settings, llm), loki) as http,
        http.stream("POST", "/ask/stream", json={"question": "why is jellyfin slow?"}, headers=AUTH) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        buffer = ""
        async for chunk in response.aiter_text():
            buffer += chunk
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                for kind, data in parse_sse(frame + "\n\n"):
                    arrived.append((time.monotonic(), kind, data))

    kinds = [k for _, k, _ in arrived]
    assert kinds[0] == "status" and arrived[0][2]["session_id"]
    assert kinds[-1] == "done" and kinds[-2] == "answer"
    assert kinds.index("tool_start") < kinds.index("tool_end") < kinds.index("answer")
    assert "error" not in kinds
    tool_end_at = next(t for t, k, _ in arrived if k == "tool_end")
    answer_at, _, answer = next(a for a in arrived if a[1] == "answer")
    # progress was on the wire while the model was still writing (it takes 1 s), not buffered until the end
    assert answer_at - tool_end_at > 0.7
    assert answer["answer"] == "ffmpeg was OOM-killed while transcoding."
    assert answer["session_id"] == arrived[0][2]["session_id"]
    assert answer["sources"][0] == {
        "kind": "tool",
        "name": "loki_query",
        "args": {"query": '{service="jellyfin"}'},
        "ok": True,
        "ref": None,
        "url": None,
    }


async def test_the_json_endpoint_answers_with_sources_and_continues_a_session(
    make_settings: Any, llm: ScriptedLLM, loki: CountingLoki
) -> None:
    llm.push(
        Reply(tool_calls=[ToolCall("reports_search", {"query": "HighMemory"})]),
        Reply(content="HighMemory fired yesterday on infra; jellyfin's transcode cache was the likely cause."),
        Reply(content="It fired once in the last week."),
    )
    async with api(ask_settings(make_settings, llm), loki) as http:
        first = await http.post("/ask", json={"question": "what happened with HighMemory on infra?"}, headers=AUTH)
        assert first.status_code == 200
        body = first.json()
        assert body["answer"].startswith("HighMemory fired yesterday")
        report = next(s for s in body["sources"] if s["kind"] == "report")
        assert "/reports/" in report["url"] and "sig=" in report["url"]
        second = await http.post(
            "/ask", json={"question": "how often did it fire?", "session_id": body["session_id"]}, headers=AUTH
        )
        assert second.status_code == 200 and second.json()["session_id"] == body["session_id"]

    history = llm.requests[2].messages
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert history[1]["content"] == "what happened with HighMemory on infra?"
    assert history[2]["content"].startswith("HighMemory fired yesterday")


async def test_an_unknown_or_foreign_session_is_a_404_and_nothing_is_created(
    make_settings: Any, llm: ScriptedLLM, redis: Redis
) -> None:
    async with api(ask_settings(make_settings, llm)) as http:
        for session_id in ["A" * 43, "not-a-session"]:
            response = await http.post("/ask", json={"question": "hi", "session_id": session_id}, headers=AUTH)
            assert_error_shape(response, 404, "session_not_found")
            response = await http.post("/ask/stream", json={"question": "hi", "session_id": session_id}, headers=AUTH)
            assert_error_shape(response, 404, "session_not_found")
    assert await redis.keys(ASK_SESSION_PREFIX + "*") == []
    assert llm.calls == 0


@pytest.mark.parametrize("path", ["/ask", "/ask/stream", "/ask/reports"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {API_TOKEN}"}])
async def test_ask_requires_the_api_token(
    make_settings: Any, llm: ScriptedLLM, path: str, headers: dict[str, str]
) -> None:
    async with api(ask_settings(make_settings, llm)) as http:
        if path == "/ask/reports":
            response = await http.get(path, headers=headers)
        else:
            response = await http.post(path, json={"question": "hi"}, headers=headers)
    error = assert_error_shape(response, 401, "unauthorized")
    assert API_TOKEN not in error["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert llm.calls == 0


@pytest.mark.parametrize("path", ["/ask", "/ask/stream"])
async def test_without_a_model_configured_ask_is_503_naming_what_to_set(make_settings: Any, path: str) -> None:
    async with api(ask_settings(make_settings, None)) as http:
        response = await http.post(path, json={"question": "hi"}, headers=AUTH)
    message = assert_error_shape(response, 503, "llm_not_configured")["message"]
    assert "OPENAI_BASE_URL" in message and "OPENAI_API_KEY" in message and "LLM_MODEL" in message


async def test_a_failing_model_is_a_502_json_error_and_an_error_event_in_the_stream(
    make_settings: Any, llm: ScriptedLLM
) -> None:
    llm.responder = lambda request: Reply.error(503, "model is loading")
    async with api(ask_settings(make_settings, llm)) as http:
        response = await http.post("/ask", json={"question": "hi"}, headers=AUTH)
        message = assert_error_shape(response, 502, "llm_failed")["message"]
        assert "HTTP 503" in message
        streamed = await http.post("/ask/stream", json={"question": "hi"}, headers=AUTH)
    assert streamed.status_code == 200
    events = parse_sse(streamed.text)
    assert [k for k, _ in events][-2:] == ["error", "done"]
    assert events[-2][1]["code"] == "llm_failed" and "HTTP 503" in events[-2][1]["message"]
    for secret in SECRET_VALUES:
        assert secret not in streamed.text and secret not in response.text


async def test_an_empty_question_is_refused_with_422(make_settings: Any, llm: ScriptedLLM) -> None:
    async with api(ask_settings(make_settings, llm)) as http:
        blank = await http.post("/ask", json={"question": "   "}, headers=AUTH)
        missing = await http.post("/ask", json={}, headers=AUTH)
        too_long = await http.post("/ask", json={"question": "x" * 5000}, headers=AUTH)
    assert_error_shape(blank, 422, "invalid_question")
    assert_error_shape(missing, 422, "invalid_request")
    assert_error_shape(too_long, 422, "invalid_question")
    assert llm.calls == 0


async def test_a_dropped_client_stops_the_model_and_the_tools(
    make_settings: Any, llm: ScriptedLLM, loki: CountingLoki, redis: Redis
) -> None:
    loki.delay_s = 1.5
    llm.push(
        Reply(tool_calls=[ToolCall("loki_query", {"query": '{service="jellyfin"}'})]),
        Reply(content="this answer must never be asked for"),
    )
    async with api(ask_settings(make_settings, llm), loki) as http:
        async with http.stream("POST", "/ask/stream", json={"question": "slow?"}, headers=AUTH) as response:
            async for line in response.aiter_lines():
                if line.startswith("event: tool_start"):
                    break  # leaving the block closes the connection mid-stream
        started = time.monotonic()
        await asyncio.sleep(2.5)  # longer than the tool would take, had it kept running
        assert loki.request_count == 1
        assert loki.finished == 0, "the tool call kept running after the client left"
        assert llm.calls == 1, "the model was asked again after the client left"
        assert time.monotonic() - started >= 2.5
        keys = await redis.keys(ASK_SESSION_PREFIX + "*")
        assert len(keys) == 1
        stored = await redis.get(keys[0])
        assert stored is not None and b'"turns":[]' in stored


async def test_the_chat_page_and_its_assets_are_served_without_external_references(
    make_settings: Any, llm: ScriptedLLM
) -> None:
    async with api(ask_settings(make_settings, llm)) as http:
        page = await http.get("/")
        script = await http.get("/chat/chat.js")
        style = await http.get("/chat/chat.css")
        other = await http.get("/chat/..%2Fask_routes.py")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200
    assert other.status_code == 404
    for text in (page.text, script.text, style.text):
        assert "http://" not in text and "https://" not in text.replace('"https:"', "")
        assert "innerHTML" not in text


async def test_recent_reports_are_listed_with_signed_relative_links(make_settings: Any, llm: ScriptedLLM) -> None:
    async with api(ask_settings(make_settings, llm)) as http:
        response = await http.get("/ask/reports", headers=AUTH)
        assert response.status_code == 200
        reports = response.json()["reports"]
        assert [r["alertname"] for r in reports] == ["HighMemory"]
        assert reports[0]["url"].startswith(f"/reports/{reports[0]['id']}?exp=")
        page = await http.get(reports[0]["url"])
    assert page.status_code == 200 and "HighMemory" in page.text


async def test_without_an_api_token_configured_ask_is_disabled_with_503(make_settings: Any, llm: ScriptedLLM) -> None:
    settings = ask_settings(make_settings, llm)
    settings.api.api_token = None
    async with api(settings) as http:
        response = await http.post("/ask", json={"question": "hi"}, headers={"Authorization": "Bearer anything"})
    assert "set API_TOKEN" in assert_error_shape(response, 503, "unavailable")["message"]
    assert llm.calls == 0


async def test_a_session_belongs_to_the_token_that_opened_it(make_settings: Any, llm: ScriptedLLM) -> None:
    llm.push(Reply(content="first answer"))
    async with api(ask_settings(make_settings, llm)) as http:
        opened = await http.post("/ask", json={"question": "hello"}, headers=AUTH)
    session_id = opened.json()["session_id"]
    rotated = ask_settings(make_settings, llm, session_ttl_s=3600)
    rotated.api.api_token = SecretStr("rotated-api-token-0009")
    async with api(rotated) as http:
        response = await http.post(
            "/ask",
            json={"question": "what did I ask before?", "session_id": session_id},
            headers={"Authorization": "Bearer rotated-api-token-0009"},
        )
    assert_error_shape(response, 404, "session_not_found")
    assert llm.calls == 1
