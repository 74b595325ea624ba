"""Hypotheses that explain the alert come before those that only restate its own signal or symptom."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from reports.models import Evidence, History, Hypothesis
from tests.support.llm_server import Reply, ScriptedLLM
from tests.test_analysis import NOW, START, alert, answer, hyp
from triage.analysis.analyser import Analyser
from triage.analysis.hypothesis_order import (
    NOTE_REORDERED,
    NOTE_WEIGHED,
    best_supported_first,
    explaining_first,
    explains,
    restates_alert,
    support,
)
from triage.analysis.triage_prompt import evidence_aliases, prompt_evidence
from triage.pipeline.checks._families import as_symptom
from triage.pipeline.ranking import rank
from triage.settings import LlmSettings

SIGNAL = Evidence(id="sig-query-1", source="prometheus", kind="alert_signal", title="Alert query rose", score=0.6)
NODATA = Evidence(id="sig-nodata-2", source="prometheus", kind="alert_signal", title="no data", score=0.5)
CPU = as_symptom(
    Evidence(id="sat-cpu", source="prometheus", kind="saturation", title="CPU 98 %", score=0.8),
    "the resource the alert measures",
)
DEPLOY = Evidence(id="chg-deploy", source="proxmox", kind="change", title="v2 deployed", score=0.5)
PART = Evidence(id="sig-part-3", source="prometheus", kind="breakdown", title="Alert query by db=app", score=0.4)
BY_ID = {e.id: e for e in (SIGNAL, NODATA, CPU, DEPLOY, PART)}


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def analyser(llm: ScriptedLLM) -> Callable[[], Analyser]:
    def factory() -> Analyser:
        return Analyser(LlmSettings(openai_base_url=llm.url, llm_model="small", llm_timeout_s=5.0), None)

    return factory


def h(title: str, *ids: str) -> Hypothesis:
    return Hypothesis(title=title, confidence=0.5, evidence=list(ids))


def titles(hypotheses: list[Hypothesis]) -> list[str]:
    return [x.title for x in hypotheses]


def test_the_alert_signal_and_symptoms_restate_the_alert_other_evidence_does_not() -> None:
    assert restates_alert(SIGNAL) and restates_alert(NODATA) and restates_alert(CPU)
    assert not restates_alert(DEPLOY)
    assert not restates_alert(PART)  # which part carries the change is more than the alert says


def test_a_symptom_only_top_hypothesis_moves_below_one_citing_a_cause() -> None:
    ordered, changed = explaining_first(
        [h("CPU saturated", "sat-cpu", "sig-query-1"), h("deploy", "chg-deploy")], BY_ID
    )
    assert titles(ordered) == ["deploy", "CPU saturated"]
    assert changed


def test_the_order_within_each_group_is_kept() -> None:
    given = [
        h("signal", "sig-query-1"),
        h("deploy", "chg-deploy"),
        h("cpu", "sat-cpu"),
        h("database", "sig-part-3"),
        h("no data", "sig-nodata-2"),
    ]
    ordered, changed = explaining_first(given, BY_ID)
    assert titles(ordered) == ["deploy", "database", "signal", "cpu", "no data"]
    assert changed


def test_an_answer_citing_only_the_symptom_is_unchanged() -> None:
    given = [h("cpu", "sat-cpu"), h("signal", "sig-query-1"), h("both", "sig-query-1", "sat-cpu")]
    ordered, changed = explaining_first(given, BY_ID)
    assert ordered == given
    assert not changed


def test_a_hypothesis_citing_both_a_symptom_and_a_cause_explains() -> None:
    mixed = h("deploy loads the CPU", "sat-cpu", "chg-deploy")
    assert explains(mixed, BY_ID)
    given = [mixed, h("cpu", "sat-cpu")]
    assert explaining_first(given, BY_ID) == (given, False)


def test_an_id_of_evidence_not_given_counts_as_explaining() -> None:
    assert explains(h("tool result", "tool-1"), BY_ID)


def test_every_hypothesis_is_kept() -> None:
    given = [h("cpu", "sat-cpu"), h("signal", "sig-query-1"), h("deploy", "chg-deploy")]
    ordered, _ = explaining_first(given, BY_ID)
    assert sorted(titles(ordered)) == sorted(titles(given))
    assert explaining_first([], BY_ID) == ([], False)


async def test_the_analysis_puts_the_cause_first_and_notes_it(
    llm: ScriptedLLM, analyser: Callable[[], Analyser]
) -> None:
    at = START - timedelta(minutes=5)
    items = rank(
        [
            SIGNAL.model_copy(update={"at": START}),
            CPU.model_copy(update={"at": START}),
            DEPLOY.model_copy(update={"at": at}),
        ],
        START,
    )
    aliases = evidence_aliases(prompt_evidence(items))
    llm.push(
        Reply.structured_output(
            answer(
                hyp("CPU saturation", [aliases["sat-cpu"], aliases["sig-query-1"]], 0.9),
                hyp("the deploy", [aliases["chg-deploy"]], 0.6),
            )
        )
    )
    result = await analyser().analyse(alert(), items, [], History(), now=NOW)
    assert [x.title for x in result.hypotheses] == ["the deploy", "CPU saturation"]
    assert result.llm is not None and NOTE_REORDERED in result.llm.notes
    # the summary leads with the hypothesis the report leads with, not the one the model put first
    assert "most likely the deploy (confidence 60%). Also possible: CPU saturation." in result.summary


async def test_the_analysis_notes_nothing_when_the_cause_is_already_first(
    llm: ScriptedLLM, analyser: Callable[[], Analyser]
) -> None:
    items = rank([CPU.model_copy(update={"at": START}), DEPLOY.model_copy(update={"at": START})], START)
    aliases = evidence_aliases(prompt_evidence(items))
    llm.push(
        Reply.structured_output(
            answer(hyp("the deploy", [aliases["chg-deploy"]], 0.8), hyp("CPU", [aliases["sat-cpu"]], 0.5))
        )
    )
    result = await analyser().analyse(alert(), items, [], History(), now=NOW)
    assert [x.title for x in result.hypotheses] == ["the deploy", "CPU"]
    assert result.llm is not None and NOTE_REORDERED not in result.llm.notes


def test_a_hypothesis_naming_only_what_followed_from_a_cause_in_the_evidence_comes_after() -> None:
    restart = Evidence(id="log-restart", source="loki", kind="log_pattern", title="nginx restarted", score=0.9)
    config = Evidence(
        id="chg-config",
        source="loki",
        kind="change",
        title="nginx.conf edited",
        score=0.91,
        data={"consequence": "log-restart"},
    )
    by_id = {**BY_ID, restart.id: restart, config.id: config}
    ordered, changed = explaining_first([h("restarts", "log-restart"), h("config edit", "chg-config")], by_id)
    assert titles(ordered) == ["config edit", "restarts"] and changed
    # a consequence is only known as one when what explains it is in the evidence
    alone = {**BY_ID, restart.id: restart}
    ordered, changed = explaining_first([h("restarts", "log-restart"), h("deploy", "chg-deploy")], alone)
    assert titles(ordered) == ["restarts", "deploy"] and not changed


STRONG = Evidence(id="log-panic", source="loki", kind="log_pattern", title="panic", score=0.94)
WEAK = Evidence(id="met-clients", source="prometheus", kind="metric_shift", title="clients rose", score=0.3)
WEIGHED = {e.id: e for e in (STRONG, WEAK, DEPLOY, SIGNAL)}


def sure(title: str, confidence: float, *ids: str) -> Hypothesis:
    return Hypothesis(title=title, confidence=confidence, evidence=list(ids))


def test_support_is_the_confidence_times_the_strongest_cited_score() -> None:
    assert support(sure("panic", 0.5, "met-clients", "log-panic"), WEIGHED) == pytest.approx(0.47)
    # an id the report does not hold weighs as a follow-up result
    assert support(sure("other", 1.0, "followup-1"), WEIGHED) == pytest.approx(0.5)


def test_of_two_about_as_sure_hypotheses_the_one_on_stronger_evidence_comes_first() -> None:
    ordered, notes = best_supported_first(
        [sure("clients", 0.8, "met-clients"), sure("panic", 0.7, "log-panic")], WEIGHED
    )
    assert titles(ordered) == ["panic", "clients"]
    assert notes == [NOTE_WEIGHED]


def test_a_model_clearly_surer_of_one_hypothesis_still_decides() -> None:
    given = [sure("clients", 0.9, "met-clients"), sure("panic", 0.2, "log-panic")]
    ordered, notes = best_supported_first(given, WEIGHED)
    assert titles(ordered) == ["clients", "panic"] and notes == []


def test_weighing_comes_before_moving_restating_hypotheses_down() -> None:
    given = [sure("signal", 0.9, "sig-query-1"), sure("clients", 0.6, "met-clients"), sure("deploy", 0.5, "chg-deploy")]
    ordered, notes = best_supported_first(given, WEIGHED)
    # deploy (0.25) outweighs clients (0.18); the signal, though weighed highest, only restates the alert
    assert titles(ordered) == ["deploy", "clients", "signal"]
    assert notes == [NOTE_WEIGHED, NOTE_REORDERED]
    assert best_supported_first([], WEIGHED) == ([], [])
