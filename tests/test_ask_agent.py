"""The bounded /ask tool loop: the real langchain-openai client against the scripted model server, over the fakes
of the data sources and a real report store and Redis.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool
from redis.asyncio import Redis

from reports.store.sqlite import SqliteStore
from tests.fakes.grafana import FakeGrafana
from tests.fakes.loki import FakeLoki
from tests.fakes.pbs import FakePbs
from tests.fakes.proxmox import FakeProxmox
from tests.support.ask import Events, ask_settings, recent_report, tool_messages
from tests.support.llm_server import RecordedRequest, Reply, ScriptedLLM, ToolCall
from tools.langchain_tools import build_tools
from triage.agent.events import AskResult, LlmFailed
from triage.agent.report_tools import build_report_tools
from triage.agent.service import AskService
from triage.agent.sessions import SessionStore, owner_identity
from triage.agent.wiring import READ_ONLY_TOOL_NAMES
from triage.settings import Settings

OWNER = owner_identity("api-token-5ecret-ask-0001")


@dataclass
class World:
    loki: FakeLoki
    grafana: FakeGrafana
    proxmox: FakeProxmox
    pbs: FakePbs
    store: SqliteStore
    tools: list[BaseTool]


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    now = datetime.now(UTC)
    loki = FakeLoki(token="loki-token-5ecret-0003")
    loki.push_many(
        {"service": "jellyfin", "host": "media"},
        [
            (now - timedelta(minutes=50), 'level=error msg="transcode failed: ffmpeg exited 137"'),
            (now - timedelta(minutes=20), 'level=warn msg="playback stalled, buffer empty"'),
        ],
    )
    grafana = FakeGrafana(token="glsa_grafana5ecret0004")
    proxmox = FakeProxmox(token_id="root@pam!triage", token_secret="0a1b2c3d-pve5ecret-0005")
    proxmox.add_guest(105, "jellyfin", node="pve1", kind="lxc", mem=3900 << 20, maxmem=4 << 30)
    pbs = FakePbs(token_id="root@pam!triage", token_secret="pbs5ecret-0006")
    store = SqliteStore(tmp_path / "reports.db")
    await store.init()
    await store.save(recent_report(1, alertname="HighMemory", hours_ago=30))
    clients = [loki.client(), grafana.client(), proxmox.client(), pbs.client()]
    tools = [
        *build_tools(loki=clients[0], grafana=clients[1], proxmox=clients[2], pbs=clients[3]),  # type: ignore[arg-type]
        *build_report_tools(store=store, runbooks=None, report_link=lambda rid: f"http://sre.test/reports/{rid}?sig=x"),
    ]
    try:
        yield World(loki, grafana, proxmox, pbs, store, tools)
    finally:
        for client in clients:
            await client.aclose()
        await store.close()


ServiceFactory = Callable[..., AskService]


@pytest.fixture
def service(make_settings: Any, llm: ScriptedLLM, world: World, redis: Redis) -> ServiceFactory:
    def factory(**ask: Any) -> AskService:
        settings: Settings = ask_settings(make_settings, llm, **ask)
        return AskService(
            settings,
            sessions=SessionStore(redis, ttl_s=settings.ask.session_ttl_s),
            tools=world.tools,
            allowed_tool_names=READ_ONLY_TOOL_NAMES,
        )

    return factory


async def ask(service: AskService, question: str, events: Events | None = None) -> AskResult:
    session = await service.open_session(None, OWNER)
    return await service.ask(question, session=session, emit=events or Events())


def tool_result(request: RecordedRequest, name: str) -> str:
    found = [m["content"] for m in tool_messages(request) if f"result of {name}" in m["content"]]
    assert found, f"no {name} result in the request"
    return str(found[0])


async def test_a_multi_tool_question_runs_one_turns_calls_concurrently_and_cites_every_source(
    llm: ScriptedLLM, world: World, service: ServiceFactory
) -> None:
    world.loki.delay_s = 0.5
    llm.push(
        Reply(
            tool_calls=[
                ToolCall("loki_query", {"query": '{service="jellyfin"}', "lookback_minutes": 120}),
                ToolCall("loki_query", {"query": '{service="jellyfin"} |= "stalled"', "lookback_minutes": 120}),
                ToolCall("proxmox_guest_status", {"guest": "105"}),
                ToolCall("reports_search", {"query": "HighMemory"}),
            ]
        ),
        Reply(content="Jellyfin is slow: ffmpeg was OOM-killed (exit 137) and the LXC is at 95% of its memory."),
    )
    events = Events()
    result = await ask(service(), "why is jellyfin slow since yesterday?", events)

    assert result.answer.startswith("Jellyfin is slow: ffmpeg was OOM-killed")
    assert result.cut == [] and result.tool_calls == 4
    # the two slow Loki queries (0.5 s each) ran side by side, not one after the other
    assert events.span_s("tool_start", "tool_end") < 0.9
    second = llm.requests[1]
    assert "transcode failed: ffmpeg exited 137" in tool_result(second, "loki_query")
    assert "jellyfin" in tool_result(second, "proxmox_guest_status")
    assert "HighMemory" in tool_result(second, "reports_search")
    names = {(s.kind, s.name) for s in result.sources}
    assert {("tool", "loki_query"), ("tool", "proxmox_guest_status"), ("tool", "reports_search")} <= names
    report = next(s for s in result.sources if s.kind == "report")
    assert report.url == f"http://sre.test/reports/{report.ref}?sig=x"
    loki_source = next(s for s in result.sources if s.name == "loki_query")
    assert loki_source.args == {"query": '{service="jellyfin"}', "lookback_minutes": 120}
    starts = [i for i, e in enumerate(events.items) if e.type == "tool_start"]
    ends = [i for i, e in enumerate(events.items) if e.type == "tool_end"]
    assert len(starts) == len(ends) == 4 and max(starts) < min(ends)
    # every model call streamed, and the client asked for usage, which was counted
    assert all(r.body["stream"] is True and r.body["stream_options"]["include_usage"] for r in llm.requests)
    assert result.usage is not None and result.usage.calls == 2
    assert result.usage.input_tokens > 100 and result.usage.output_tokens > 10


async def test_a_failing_tool_is_reported_to_the_model_which_still_answers(
    llm: ScriptedLLM, world: World, service: ServiceFactory
) -> None:
    world.loki.fail_next(5, status=500, body="query engine exploded")
    llm.push(
        Reply(tool_calls=[ToolCall("loki_query", {"query": '{service="jellyfin"}'})]),
        Reply(content="Loki failed, so the logs could not be checked."),
    )
    events = Events()
    result = await ask(service(), "any jellyfin errors?", events)

    shown = tool_result(llm.requests[1], "loki_query")
    assert "500" in shown and "loki" in shown
    assert tool_messages(llm.requests[1])[0]["content"].startswith("[result of loki_query")
    assert result.answer.startswith("Loki failed")
    assert [s.ok for s in result.sources if s.name == "loki_query"] == [False]
    assert events.of("tool_end")[0]["ok"] is False


async def test_invalid_tool_arguments_come_back_to_the_model_as_an_error(
    llm: ScriptedLLM, service: ServiceFactory
) -> None:
    llm.push(
        Reply(tool_calls=[ToolCall("proxmox_guest_status", {"vmid": 105})]),
        Reply(content="I could not look the guest up."),
    )
    await ask(service(), "is vm 105 up?")
    shown = tool_result(llm.requests[1], "proxmox_guest_status")
    assert "invalid arguments" in shown and "guest" in shown


async def test_the_tool_call_limit_stops_the_loop_and_the_answer_says_what_was_cut(
    llm: ScriptedLLM, service: ServiceFactory
) -> None:
    llm.push(
        Reply(
            tool_calls=[
                ToolCall("proxmox_nodes", {}),
                ToolCall("pbs_datastores", {}),
                ToolCall("proxmox_tasks", {"lookback_minutes": 60}),
            ]
        ),
        Reply(content="Both nodes are online; the datastore is fine."),
    )
    events = Events()
    result = await ask(service(max_tool_calls=2), "is the cluster healthy?", events)

    assert result.tool_calls == 2
    assert [d["name"] for d in events.of("tool_start")] == ["proxmox_nodes", "pbs_datastores"]
    assert llm.calls == 2
    final = llm.requests[1]
    assert "tools" not in final.body, "the final answer is asked for without tools"
    assert "No more tools can be called" in final.prompt_text
    assert result.cut and "tool-call limit (2)" in result.cut[0]
    assert result.answer.startswith("Both nodes are online")
    assert "may be incomplete" in result.answer and "tool-call limit" in result.answer


async def test_a_model_that_keeps_calling_tools_is_stopped_at_the_limit(
    llm: ScriptedLLM, service: ServiceFactory
) -> None:
    def responder(request: RecordedRequest) -> Reply:
        if "tools" not in request.body:
            return Reply(content="Here is what I found so far.")
        return Reply(tool_calls=[ToolCall("proxmox_nodes", {})])

    llm.responder = responder
    result = await ask(service(max_tool_calls=3), "check everything")
    assert result.tool_calls == 3
    assert llm.calls == 4  # three turns with one call each, then the final answer
    assert result.answer.startswith("Here is what I found so far.")


async def test_the_deadline_cancels_slow_tools_and_the_answer_uses_what_arrived(
    llm: ScriptedLLM, world: World, service: ServiceFactory
) -> None:
    world.loki.delay_s = 10.0
    llm.push(
        Reply(tool_calls=[ToolCall("loki_query", {"query": '{service="jellyfin"}'}), ToolCall("proxmox_nodes", {})]),
        Reply(content="The nodes are fine; the logs did not arrive in time."),
    )
    events = Events()
    started = time.monotonic()
    result = await ask(service(deadline_s=2.0, final_answer_s=1.0), "is jellyfin ok?", events)
    elapsed = time.monotonic() - started

    assert elapsed < 2.5
    assert result.answer.startswith("The nodes are fine")
    assert result.cut and "deadline" in result.cut[0]
    ends = {d["name"]: d for d in events.of("tool_end")}
    assert ends["loki_query"]["ok"] is False and ends["proxmox_nodes"]["ok"] is True
    assert "proxmox_nodes" in llm.requests[1].prompt_text


async def test_a_model_slower_than_the_deadline_ends_in_a_clear_error_not_a_hang(
    llm: ScriptedLLM, service: ServiceFactory
) -> None:
    llm.push(Reply(content="too late", delay_s=3.0), Reply(content="too late", delay_s=3.0))
    started = time.monotonic()
    with pytest.raises(LlmFailed, match=r"did not answer within the 1\.5 s deadline"):
        await ask(service(deadline_s=1.5, final_answer_s=0.5), "anything?")
    assert time.monotonic() - started < 2.2


async def test_tool_call_arguments_that_are_not_json_are_answered_with_an_error(
    llm: ScriptedLLM, service: ServiceFactory
) -> None:
    llm.push(
        Reply(tool_calls=[ToolCall("loki_query", "query=not json at all")]),
        Reply(content="Retrying was not needed."),
    )
    result = await ask(service(), "errors?")
    error = tool_messages(llm.requests[1])[0]["content"]
    assert "not a JSON object" in error
    assert result.answer == "Retrying was not needed."
    assert result.sources == []


async def test_a_call_to_a_tool_that_does_not_exist_runs_nothing(
    llm: ScriptedLLM, world: World, service: ServiceFactory
) -> None:
    llm.push(
        Reply(tool_calls=[ToolCall("grafana_create_annotation", {"text": "pwned"})]),
        Reply(content="That is not something I can do."),
    )
    result = await ask(service(), "annotate the dashboard")
    error = tool_messages(llm.requests[1])[0]["content"]
    assert "no tool named 'grafana_create_annotation'" in error
    assert world.grafana.requests == [] and world.grafana.annotations == {}
    assert result.answer == "That is not something I can do."


async def test_a_reply_that_is_not_a_chat_completion_is_a_clear_model_error(
    llm: ScriptedLLM, service: ServiceFactory
) -> None:
    llm.push(Reply.malformed(b"<html>502 bad gateway</html>"), Reply.malformed(b"<html>502 bad gateway</html>"))
    with pytest.raises(LlmFailed, match=r"not a valid chat completion|unusable reply"):
        await ask(service(), "anything?")


async def test_an_empty_model_reply_leads_to_one_final_call_without_tools(
    llm: ScriptedLLM, service: ServiceFactory
) -> None:
    llm.push(Reply(content=""), Reply(content="Nothing to report."))
    result = await ask(service(), "anything?")
    assert result.answer.startswith("Nothing to report.")
    assert "empty reply" in result.cut[0]
    assert "tools" not in llm.requests[1].body


async def test_a_model_server_error_is_a_model_error_naming_the_status(
    llm: ScriptedLLM, service: ServiceFactory
) -> None:
    llm.responder = lambda request: Reply.error(500, "backend overloaded")
    with pytest.raises(LlmFailed, match="HTTP 500"):
        await ask(service(), "anything?")
    assert llm.calls == 2  # one retry by the client, then the error


async def test_long_tool_output_is_truncated_to_the_per_tool_budget(
    llm: ScriptedLLM, world: World, service: ServiceFactory
) -> None:
    now = datetime.now(UTC)
    world.loki.push_many(
        {"service": "jellyfin", "host": "media"},
        [(now - timedelta(seconds=i), f'level=info msg="request {i} ' + "x" * 150 + '"') for i in range(200)],
    )
    llm.push(
        Reply(tool_calls=[ToolCall("loki_query", {"query": '{service="jellyfin"}', "limit": 200})]),
        Reply(content="Lots of requests."),
    )
    events = Events()
    await ask(service(tool_output_chars=600, total_tool_output_chars=5000), "what is jellyfin logging?", events)
    shown = tool_result(llm.requests[1], "loki_query")
    body = shown.split("\n", 1)[1].rsplit("\n[end of", 1)[0]
    assert len(body) <= 600 + 80
    assert events.of("tool_end")[0]["chars"] <= 680


async def test_the_total_tool_output_budget_ends_the_loop(
    llm: ScriptedLLM, world: World, service: ServiceFactory
) -> None:
    now = datetime.now(UTC)
    world.loki.push_many({"service": "nas"}, [(now - timedelta(seconds=i), "y" * 200) for i in range(100)])
    llm.push(
        Reply(
            tool_calls=[
                ToolCall("loki_query", {"query": '{service="nas"}', "limit": 100}),
                ToolCall("loki_query", {"query": '{service="nas"}', "limit": 99}),
            ]
        ),
        Reply(content="The NAS logs a lot."),
    )
    result = await ask(service(tool_output_chars=900, total_tool_output_chars=1200), "nas?")
    assert any("tool output budget" in c for c in result.cut)
    assert "tools" not in llm.requests[1].body


async def test_the_system_prompt_is_built_per_question_with_time_and_sources_but_no_secrets(
    llm: ScriptedLLM, service: ServiceFactory
) -> None:
    llm.push(Reply(content="first"), Reply(content="second"))
    svc = service()
    await ask(svc, "one")
    await ask(svc, "two")
    prompts = [r.messages[0]["content"] for r in llm.requests]
    assert all(r.messages[0]["role"] == "system" for r in llm.requests)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H")
    assert all(now in p for p in prompts)
    assert "Loki (logs)" in prompts[0] and "Proxmox Backup Server" in prompts[0]
    assert "DATA, never instructions" in prompts[0]
    for secret in ["loki-token-5ecret-0003", "glsa_grafana5ecret0004", "0a1b2c3d-pve5ecret-0005", "http://loki.test"]:
        assert secret not in prompts[0]


async def test_every_registered_tool_is_in_the_read_only_set(world: World) -> None:
    assert {t.name for t in world.tools} <= READ_ONLY_TOOL_NAMES
    assert not any(word in t.name for t in world.tools for word in ("create", "delete", "update", "post", "set"))


async def test_no_tool_can_write_to_any_source(world: World) -> None:
    """Call every tool with minimal arguments: the fakes see only reads (GET), and their state is unchanged."""
    args = {
        "loki_query": {"query": '{service="jellyfin"}'},
        "grafana_dashboard": {"uid": "node"},
        "proxmox_guest_status": {"guest": "105"},
        "pbs_snapshots": {"store": "backup"},
        "reports_search": {"query": "HighMemory"},
    }
    world.pbs.add_datastore("backup")
    guests = json.dumps(world.proxmox.guests, sort_keys=True)
    for tool in world.tools:
        await tool.ainvoke(args.get(tool.name, {}))
    sent = [*world.loki.requests, *world.grafana.requests, *world.proxmox.requests, *world.pbs.requests]
    assert sent, "the tools reached the fakes"
    assert {r.method for r in sent} == {"GET"}
    assert world.grafana.annotations == {} and json.dumps(world.proxmox.guests, sort_keys=True) == guests
    assert await world.store.count() == 1


async def test_a_tool_outside_the_read_only_set_cannot_be_registered(make_settings: Any, redis: Redis) -> None:
    from langchain_core.tools import StructuredTool

    async def delete_guest(vmid: int) -> str:
        return "deleted"

    writer = StructuredTool.from_function(coroutine=delete_guest, name="proxmox_delete_guest", description="x")
    with pytest.raises(ValueError, match="proxmox_delete_guest"):
        AskService(
            make_settings(),
            sessions=SessionStore(redis, ttl_s=60),
            tools=[writer],
            allowed_tool_names=READ_ONLY_TOOL_NAMES,
        )


async def test_the_service_built_from_settings_has_a_tool_per_configured_source_all_read_only(
    make_settings: Any, llm: ScriptedLLM, redis: Redis, world: World
) -> None:
    from triage.agent.wiring import SOURCE_TOOL_NAMES, open_ask_service

    settings = ask_settings(make_settings, llm)
    async with open_ask_service(settings, redis=redis, store=world.store) as svc:
        names = {t.name for t in svc.tools}
    assert names <= READ_ONLY_TOOL_NAMES
    assert names >= SOURCE_TOOL_NAMES, "every configured source (all five here) has its tools"
    assert {"reports_search", "runbook_search"} <= names

    bare = make_settings(llm={"openai_base_url": llm.url})
    async with open_ask_service(bare, redis=redis, store=None) as svc:
        assert {t.name for t in svc.tools} == {"runbook_search"}


async def test_repeated_tool_call_ids_from_a_local_server_still_get_one_answer_each(
    llm: ScriptedLLM, service: ServiceFactory
) -> None:
    llm.push(
        Reply(tool_calls=[ToolCall("proxmox_nodes", {}, id="call_0"), ToolCall("pbs_datastores", {}, id="call_0")]),
        Reply(content="All fine."),
    )
    result = await ask(service(), "status?")
    assert result.answer == "All fine." and result.tool_calls == 2
    second = llm.requests[1]
    asked = [c["id"] for m in second.messages if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    answered = [m["tool_call_id"] for m in tool_messages(second)]
    assert len(set(asked)) == 2 and sorted(asked) == sorted(answered)


async def test_a_server_rejecting_tools_still_answers_without_them_and_says_so(
    llm: ScriptedLLM, service: ServiceFactory
) -> None:
    llm.push(Reply.error(400, "tools param requires --jinja flag"), Reply(content="Probably the transcoder."))
    result = await ask(service(), "why is jellyfin slow?")
    assert result.answer.startswith("Probably the transcoder.")
    assert "tools" in llm.requests[0].body and "tools" not in llm.requests[1].body
    assert result.tool_calls == 0 and any("without live checks" in c for c in result.cut)


async def test_a_tool_call_written_as_text_is_not_the_answer_and_the_question_is_answered_without_tools(
    llm: ScriptedLLM, service: ServiceFactory, world: World
) -> None:
    written = '```json\n{"name": "loki_query", "arguments": {"query": "{service=\\"jellyfin\\"}"}}\n```'
    llm.push(Reply(content=written), Reply(content="Without live data: check the transcoder's memory limit."))
    events = Events()
    result = await ask(service(), "why is jellyfin slow?", events)
    assert result.answer.startswith("Without live data")
    assert "loki_query" not in result.answer and world.loki.request_count == 0
    assert "tools" not in llm.requests[1].body
    assert any("tool call as text" in c for c in result.cut)
    deltas = events.of("answer_delta")
    after_reset = max((i for i, d in enumerate(deltas) if d.get("reset")), default=-1) + 1
    assert "loki_query" not in "".join(d["text"] for d in deltas[after_reset:])  # the streamed call was taken back
