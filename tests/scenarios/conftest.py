"""Fixtures of the scenario suite: one real Prometheus with every world's series, one scripted LLM server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scenarios import all_scenarios
from tests.scenarios.llm_script import ScenarioResponder
from tests.scenarios.runner import Suite
from tests.support.llm_server import ScriptedLLM


@pytest.fixture(scope="session")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """One real Prometheus holding every scenario's series (backfilled once: seconds on two cores)."""
    running = Suite(all_scenarios(), Path(tmp_path_factory.mktemp("scenarios")))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def llm() -> Iterator[ScriptedLLM]:
    """The scripted OpenAI-compatible server, answering at once."""
    with ScriptedLLM(responder=ScenarioResponder(delay_s=0.0)) as server:
        yield server
