"""``sre-triage ask QUESTION``: the same agent and events in the terminal, progress on stderr, answer on stdout."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reports.store.sqlite import SqliteStore
from tests.support.ask import recent_report
from tests.support.llm_server import Reply, ScriptedLLM, ToolCall
from triage.cli import cmd_ask
from triage.cli.main import main
from triage.settings import Settings


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


async def seeded(settings: Settings) -> None:
    store = SqliteStore(settings.storage.database_url.removeprefix("sqlite:///"))
    await store.init()
    await store.save(recent_report(1, alertname="HighMemory", hours_ago=30))
    await store.close()


def cli_settings(make_settings: Any, llm: ScriptedLLM | None) -> Settings:
    llm_group = {"openai_base_url": llm.url, "llm_model": "test-model"} if llm else {}
    return make_settings(llm=llm_group, api={"api_token": "cli-token-123456", "public_url": "http://sre.test"})  # type: ignore[no-any-return]


async def test_the_terminal_shows_progress_then_the_answer_sources_and_session(
    make_settings: Any, llm: ScriptedLLM
) -> None:
    settings = cli_settings(make_settings, llm)
    await seeded(settings)
    llm.push(
        Reply(tool_calls=[ToolCall("reports_search", {"query": "HighMemory"})]),
        Reply(content="HighMemory fired yesterday on infra."),
        Reply(content="Once."),
    )
    out, err = io.StringIO(), io.StringIO()
    status = await cmd_ask.ask(settings, "what happened with HighMemory?", out=out, err=err)

    assert status == 0
    text = out.getvalue()
    assert text.startswith("HighMemory fired yesterday on infra.")
    assert "[tool] reports_search" in text and "[report] HighMemory" in text and "http://sre.test/reports/" in text
    session_id = text.strip().rsplit("session: ", 1)[1]
    assert "→ reports_search" in err.getvalue() and "← reports_search ok" in err.getvalue()

    again = io.StringIO()
    status = await cmd_ask.ask(
        settings, "how often?", session_id=session_id, as_json=True, out=again, err=io.StringIO()
    )
    assert status == 0
    answer = json.loads(again.getvalue())
    assert answer["answer"] == "Once." and answer["session_id"] == session_id
    assert [m["role"] for m in llm.requests[2].messages] == ["system", "user", "assistant", "user"]


class TimedOut(io.StringIO):
    """stdout that notes when each piece of text was written."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.writes.append((time.monotonic(), text))
        return super().write(text)


async def test_the_terminal_prints_the_answer_as_the_model_writes_it_and_only_once(
    make_settings: Any, llm: ScriptedLLM
) -> None:
    chunks = ["Backups ", "overlapped ", "the nightly ", "scrub, so ", "disk latency ", "peaked at 2 s."]
    llm.push(Reply(chunks=chunks, chunk_delay_s=0.15))
    out = TimedOut()
    status = await cmd_ask.ask(cli_settings(make_settings, llm), "why was the disk slow?", out=out, err=io.StringIO())

    assert status == 0
    answer = "".join(chunks)
    assert out.getvalue().startswith(answer + "\n") and out.getvalue().count("Backups") == 1
    pieces = [(at, text) for at, text in out.writes if text.strip() and text in answer]
    assert len(pieces) >= 4, "the answer was printed in one piece at the end"
    # the first words were on the terminal while the model was still writing the rest
    assert pieces[-1][0] - pieces[0][0] > 0.5


async def test_without_a_model_the_terminal_says_what_to_set(make_settings: Any) -> None:
    err = io.StringIO()
    status = await cmd_ask.ask(cli_settings(make_settings, None), "anything?", out=io.StringIO(), err=err)
    assert status == 1
    assert "OPENAI_BASE_URL" in err.getvalue() and "LLM_MODEL" in err.getvalue()


async def test_a_model_failure_is_an_error_line_and_exit_status_1(make_settings: Any, llm: ScriptedLLM) -> None:
    llm.responder = lambda request: Reply.error(500, "boom")
    out, err = io.StringIO(), io.StringIO()
    status = await cmd_ask.ask(cli_settings(make_settings, llm), "anything?", out=out, err=err)
    assert status == 1
    assert out.getvalue() == "" and "error: the model endpoint answered HTTP 500" in err.getvalue()


def test_the_ask_subcommand_is_wired_into_the_cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    llm: ScriptedLLM,
    redis_url: str,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    monkeypatch.setenv("LLM_MODEL", "test-model")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/reports.db")
    monkeypatch.setenv("CHROMA_DIR", str(tmp_path / "chroma"))
    llm.push(Reply(content="All quiet."))
    assert main(["ask", "--quiet", "anything", "new?"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("All quiet.")
    assert llm.requests[0].messages[-1]["content"] == "anything new?"
