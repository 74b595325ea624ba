"""The scenario suite: every incident world triaged with the LLM disabled, its causal evidence in the top 3.

The worlds' series live in one real Prometheus for the whole module (``slow``); the definitions themselves are
checked without it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reports.models import Evidence
from tests.scenarios import all_scenarios, select
from tests.scenarios.model import Expect, Scenario
from tests.scenarios.runner import TOP_K, Suite
from tests.scenarios.world import anchors, make_alert, suite_series
from tests.support.llm_server import ScriptedLLM
from triage.analysis.analyser import Analyser
from triage.pipeline.checks import CHECKS
from triage.settings import LlmSettings

SCENARIOS = all_scenarios()
# Scenarios the engine does not solve yet, with the reason; strict, so a fix shows up as XPASS and must be removed here.
KNOWN_GAPS: dict[str, str] = {}
MAX_LLM_CALLS = 2
MAX_PROMPT_TOKENS = 6000
REQUIRED_INCIDENTS = {
    "backup_io",
    "oom_leak",
    "bad_deploy_5xx",
    "config_change_5xx",
    "upgrade_reboot",
    "node_down_storm",
    "disk_fill_logs",
    "cert_expiry",
    "dns_cascade",
    "noisy_neighbour",
    "flapping_history",
    "datasource_error",
    "loki_down",
    "red_herring",
    "missing_labels",
    "odd_labels",
}


def _evidence(title: str, source: str = "loki", kind: str = "log_pattern") -> Evidence:
    return Evidence(id=title[:8], source=source, kind=kind, title=title)


def test_the_suite_covers_every_required_incident_with_at_least_15_worlds() -> None:
    names = {s.name for s in SCENARIOS}
    assert len(SCENARIOS) >= 15
    assert names >= REQUIRED_INCIDENTS, REQUIRED_INCIDENTS - names


def test_every_scenario_tells_its_story_and_names_a_causal_expectation() -> None:
    for scenario in SCENARIOS:
        assert len(scenario.story) > 40, scenario.name
        assert scenario.causal.why and (scenario.causal.words or scenario.causal.sources), scenario.name


def test_scenarios_never_share_a_series_in_the_shared_prometheus() -> None:
    placed = anchors(SCENARIOS, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    series = suite_series(SCENARIOS, placed)
    assert len({(s.name, tuple(sorted(s.labels.items()))) for s in series}) == len(series)
    t0s = sorted(a.t0 for a in placed.values())
    assert len(set(t0s)) == len(t0s)


def test_two_scenarios_defining_the_same_series_are_refused() -> None:
    first, second = select(["loki_down"]) * 2
    clone = Scenario(**{**second.__dict__, "name": "loki_down_copy"})
    placed = anchors([first, clone], datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    with pytest.raises(ValueError, match="both define"):
        suite_series([first, clone], placed)


def test_an_unknown_scenario_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="oom_leak"):
        select(["no_such_incident"])


def test_an_expectation_matches_by_source_kind_and_title_words_case_insensitively() -> None:
    expect = Expect("oom", sources=("loki",), words=(("out of", "memory"), ("oom-killer",)))
    assert expect.matches(_evidence("kernel: Out of Memory: Killed process 12"))
    assert expect.matches(_evidence("immich-server invoked OOM-killer"))
    assert not expect.matches(_evidence("out of disk"))
    assert not expect.matches(_evidence("Out of memory", source="prometheus"))
    ranked = [_evidence("CPU busy", source="prometheus"), _evidence("x invoked oom-killer")]
    assert expect.rank_in(ranked) == 2
    assert expect.rank_in(ranked[:1]) is None


def test_the_alert_of_a_grafana_rule_names_the_rule_by_its_url_not_an_internal_label() -> None:
    (scenario,) = select(["bad_deploy_5xx"])
    alert = make_alert(scenario, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    assert "__alert_rule_uid__" not in alert.labels
    assert alert.generator_url is not None and "/alerting/grafana/shop-5xx/view" in alert.generator_url
    assert alert.labels["alertname"] == "Shop5xxRate"


def _ranking(evidence: list[Evidence]) -> str:
    return "\n".join(f"  {i}. [{e.source}/{e.kind}] {e.score:.3f} {e.title[:140]}" for i, e in enumerate(evidence, 1))


def _with_known_gaps(scenarios: list[Scenario]) -> list[object]:
    return [
        pytest.param(s, id=s.name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[s.name]))
        if s.name in KNOWN_GAPS
        else pytest.param(s, id=s.name)
        for s in scenarios
    ]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", _with_known_gaps(SCENARIOS))
async def test_causal_evidence_ranks_in_the_top_3(suite: Suite, scenario: Scenario) -> None:
    outcome = await suite.run(scenario)
    shown = _ranking(outcome.top(8))
    assert outcome.causal_rank is not None and outcome.causal_rank <= TOP_K, (
        f"{scenario.name}: expected '{scenario.causal.why}' in the top {TOP_K}, got rank {outcome.causal_rank}\n{shown}"
    )
    assert outcome.herrings_below, f"{scenario.name}: a red herring outranks the cause\n{shown}"


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_every_triage_completes_its_report_without_an_llm(suite: Suite, scenario: Scenario) -> None:
    outcome = await suite.run(scenario)
    report = outcome.report
    assert report.summary.strip()
    assert report.llm is not None and report.llm.calls == 0 and report.llm.skipped_reason
    assert report.evidence == sorted(report.evidence, key=lambda e: e.score, reverse=True)
    for name in scenario.down:
        # a check that reads only the dead source fails as a whole; one that reads several names it in a sub-entry
        readers = {spec.name for spec in CHECKS.values() if name in spec.sources}
        failing = [key for key in outcome.failed_sources if key in readers or name in key.split(":")]
        assert failing, f"{scenario.name}: {name} is down but every source reports ok: {report.sources}"
    if scenario.expect_history is not None:
        assert outcome.history_ok, f"history says {report.history.frequency}, expected {scenario.expect_history}"


@pytest.mark.slow
async def test_every_triage_asks_the_llm_at_most_twice_with_a_bounded_prompt(suite: Suite, llm: ScriptedLLM) -> None:
    # one test for all scenarios: langchain-openai caches its HTTP client per base URL, bound to the first event loop
    settings = LlmSettings(openai_base_url=llm.url, openai_api_key="test", llm_model="test-model", llm_timeout_s=30)
    analyser = Analyser(settings, None)
    for scenario in SCENARIOS:
        calls_before = llm.calls
        outcome = await suite.run(scenario, analyser=analyser)
        usage = outcome.report.llm
        assert usage is not None and usage.skipped_reason is None, (scenario.name, usage)
        assert 1 <= usage.calls <= MAX_LLM_CALLS, scenario.name
        assert llm.calls - calls_before == usage.calls, scenario.name
        assert 0 < usage.input_tokens <= MAX_PROMPT_TOKENS * usage.calls, (scenario.name, usage)
        cited = {i for h in outcome.report.hypotheses for i in h.evidence}
        assert cited and cited <= {e.id for e in outcome.report.evidence}, scenario.name
