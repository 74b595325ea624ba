"""The pieces the triage benchmarks stand on: the agent baseline's tool calls and the scripted LLM's answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from bench.local_model import ServerCounters
from bench.real_llm import save_report, score_deterministic, score_llm
from reports.models import Evidence, Hypothesis, LlmUsage
from tests.fakes.grafana import FakeGrafana
from tests.fakes.loki import FakeLoki
from tests.fakes.pbs import FakePbs
from tests.fakes.proxmox import FakeProxmox
from tests.scenarios import all_scenarios, select
from tests.scenarios.llm_script import ScenarioResponder, agent_tool_plan
from tests.scenarios.world import make_alert
from tests.support.llm_server import RecordedRequest
from tests.support.sample_reports import sample_report
from tools.langchain_tools import build_tools
from tools.prometheus import PrometheusClient

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_the_agent_baseline_makes_a_valid_call_to_every_tool_for_every_scenario() -> None:
    prometheus = PrometheusClient("http://127.0.0.1:9")
    loki, grafana, proxmox, pbs = (
        FakeLoki().client(),
        FakeGrafana().client(),
        FakeProxmox().client(),
        FakePbs().client(),
    )
    clients = [prometheus, loki, grafana, proxmox, pbs]
    try:
        tools = build_tools(prometheus=prometheus, loki=loki, grafana=grafana, proxmox=proxmox, pbs=pbs)
        by_name = {tool.name: tool for tool in tools}
        for scenario in all_scenarios():
            plan = agent_tool_plan(make_alert(scenario, T0), T0, list(by_name), "backup")
            assert [name for name, _ in plan] == list(by_name)
            for name, args in plan:
                schema = by_name[name].args_schema
                assert isinstance(schema, type) and issubclass(schema, BaseModel)
                schema.model_validate(args)
    finally:
        for client in clients:
            await client.aclose()


def _request(body: dict[str, object]) -> RecordedRequest:
    return RecordedRequest("/v1/chat/completions", {}, body)


def test_the_scripted_llm_answers_a_triage_request_citing_evidence_ids_of_the_prompt() -> None:
    responder = ScenarioResponder(delay_s=0)
    prompt = json.dumps({"evidence": [{"id": "sat-cpu-1"}, {"id": "log-oom-2"}]}, indent=1)
    reply = responder(
        _request({"messages": [{"role": "user", "content": prompt}], "response_format": {"type": "json_schema"}})
    )
    assert reply.structured["hypotheses"][0]["evidence_ids"] == ["sat-cpu-1", "log-oom-2"]
    assert responder.triage_calls == 1 and responder.agent_calls == 0


def test_the_scripted_agent_calls_each_planned_tool_once_then_answers() -> None:
    (scenario,) = select(["oom_leak"])
    responder = ScenarioResponder(delay_s=0)
    responder.plan = agent_tool_plan(make_alert(scenario, T0), T0, ["proxmox_nodes", "loki_query"], None)
    tools = [{"type": "function", "function": {"name": "proxmox_nodes"}}]
    history: list[dict[str, object]] = [{"role": "user", "content": "alert"}]
    first = responder(_request({"messages": history, "tools": tools}))
    assert [c.name for c in first.tool_calls] == ["proxmox_nodes"]
    history.append({"role": "tool", "content": "nodes"})
    second = responder(_request({"messages": history, "tools": tools}))
    assert [c.name for c in second.tool_calls] == ["loki_query"]
    history.append({"role": "tool", "content": "lines"})
    final = responder(_request({"messages": history, "tools": tools}))
    assert not final.tool_calls and final.content
    assert responder.agent_calls == 3


def test_the_real_llm_bench_scores_a_hypothesis_by_the_evidence_it_cites(tmp_path: Path) -> None:
    scenario = select(["oom_leak"])[0]
    oom = Evidence(
        id="chg-oom-1", source="loki", kind="oom", title="oom: Killed process 4821 (immich-server)", score=0.8
    )
    mem = Evidence(id="sat-mem-1", source="prometheus", kind="saturation", title="memory used rose", score=0.9)
    usage = LlmUsage(model="m", calls=1, input_tokens=900, output_tokens=150, answer_json="first_try")
    report = sample_report(
        evidence=[mem, oom],
        hypotheses=[
            Hypothesis(title="memory pressure", confidence=0.8, evidence=["sat-mem-1"]),
            Hypothesis(title="OOM kill", confidence=0.6, evidence=["chg-oom-1"]),
        ],
        llm=usage,
    )
    side = score_llm(scenario, report, 12.5)
    assert (side.top_cites_causal, side.any_cites_causal, side.hypotheses) == (False, True, 2)
    assert (side.prompt_tokens, side.completion_tokens, side.answer_json) == (900, 150, "first_try")
    plain = score_deterministic(scenario, report, 0.4)
    # the summary names the strongest items: memory first, the OOM kill second
    assert (plain.top_cites_causal, plain.any_cites_causal) == (False, True)
    # the report as the bench saves it to be studied offline: whole, with the ids the scenario calls causal
    save_report(tmp_path / "reports", scenario, report)
    saved = json.loads((tmp_path / "reports" / "oom_leak.json").read_text())
    assert saved["scenario"] == "oom_leak" and saved["causal_ids"] == ["chg-oom-1"]
    assert saved["report"]["hypotheses"][1]["evidence"] == ["chg-oom-1"]


def test_the_real_model_bench_charges_each_report_the_server_counters_it_moved() -> None:
    before = ServerCounters.parse(
        "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
        "# TYPE llamacpp:prompt_tokens_total counter\n"
        "llamacpp:prompt_tokens_total 1200\n"
        "llamacpp:prompt_seconds_total 20.5\n"
        "llamacpp:tokens_predicted_total 300\n"
        "llamacpp:tokens_predicted_seconds_total 30\n"
        "llamacpp:requests_processing 0\n"
    )
    after = ServerCounters.parse(
        "llamacpp:prompt_tokens_total 1900\nllamacpp:prompt_seconds_total 32.5\n"
        "llamacpp:tokens_predicted_total 480\nllamacpp:tokens_predicted_seconds_total 48.25\n"
    )
    spent = after - before
    assert spent == ServerCounters(prompt_tokens=700, prompt_s=12.0, generated_tokens=180, generation_s=18.25)
    scenario = select(["oom_leak"])[0]
    usage = LlmUsage(model="m", calls=1, input_tokens=1100, cached_input_tokens=400, output_tokens=180)
    side = score_llm(scenario, sample_report(llm=usage), 31.0, spent)
    assert (side.cached_tokens, side.processed_tokens, side.prompt_s, side.generation_s) == (400, 700, 12.0, 18.2)
