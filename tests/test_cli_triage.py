"""``sre-triage`` end to end: the installed command in a subprocess, as an operator runs it.

``triage`` runs once with every data source unset (each check says it is not configured) and once against a real
Prometheus loaded with a memory shift; the printed JSON must follow the Report JSON contract of docs/architecture.md and
the Markdown must read as a report.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from reports.links import LinkSigner
from reports.store.sqlite import SqliteStore
from tests.support.prometheus import PrometheusWorld, SyntheticSeries
from triage.cli.main import COMMANDS
from triage.settings import load_settings

SRE_TRIAGE = Path(sys.executable).parent / "sre-triage"
REPO = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT_S = 90
GIB = 1 << 30
SHIFT_MIN = 12  # db1's memory started filling this many minutes before "now"
EXPR = 'node_memory_MemAvailable_bytes{instance="db1:9100"} / node_memory_MemTotal_bytes{instance="db1:9100"} < 0.2'

REPORT_KEYS = {
    "id",
    "status",
    "alert",
    "summary",
    "hypotheses",
    "evidence",
    "runbooks",
    "history",
    "sources",
    "llm",
    "annotation",
    "created_at",
    "updated_at",
}
ALERT_KEYS = {"fingerprint", "alertname", "labels", "annotations", "starts_at", "ends_at", "status"}
EVIDENCE_KEYS = {"id", "source", "kind", "title", "detail", "at", "score"}
CHECKS_NEEDING_A_SOURCE = {"alert_signal", "saturation", "log_errors", "changes", "guest_status", "backups"}


def cli_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The test process's environment (already cleared of our settings) with a private store and index."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        DATABASE_URL=f"sqlite:///{workdir}/reports.db",
        CHROMA_DIR=str(workdir / "chroma"),
        PYTHONPATH=str(REPO),
        **extra,
    )
    return env


def run_cli(*args: str | Path, workdir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # run from the temp dir: a developer's .env in the checkout must not change what the command sees
    return subprocess.run(
        [str(SRE_TRIAGE), *map(str, args)],
        cwd=workdir,
        env=env or cli_env(workdir),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


def alertmanager_payload(path: Path, *, starts_at: datetime, generator_url: str) -> Path:
    labels = {"alertname": "HostMemoryLow", "instance": "db1:9100", "job": "node", "severity": "warning"}
    body = {
        "receiver": "sre-triage",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": "db1 has less than 20% memory available"},
                "startsAt": starts_at.isoformat().replace("+00:00", "Z"),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": generator_url,
                "fingerprint": "7d1c0ffee0ddba11",
            }
        ],
        "groupLabels": {"alertname": "HostMemoryLow"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="HostMemoryLow"}',
        "truncatedAlerts": 0,
    }
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def generator(expr: str) -> str:
    return f"http://prometheus:9090/graph?g0.expr={quote(expr)}&g0.tab=1"


def assert_report_contract(report: dict[str, Any]) -> None:
    """The Report JSON contract of docs/architecture.md (further keys are allowed)."""
    assert set(report) >= REPORT_KEYS, f"missing: {REPORT_KEYS - set(report)}"
    assert report["status"] in {"received", "triaged", "partial", "failed", "resolved"}
    assert set(report["alert"]) >= ALERT_KEYS
    assert isinstance(report["summary"], str) and report["summary"].strip()
    for hypothesis in report["hypotheses"]:
        assert {"title", "confidence", "evidence"} <= set(hypothesis)
    for item in report["evidence"]:
        assert set(item) >= EVIDENCE_KEYS
        assert 0.0 <= item["score"] <= 1.0
    scores = [item["score"] for item in report["evidence"]]
    assert scores == sorted(scores, reverse=True), "evidence must be ranked by score"
    for match in report["runbooks"]:
        assert {"title", "source", "section", "score"} <= set(match)
    assert isinstance(report["history"], dict)
    for name, source in report["sources"].items():
        assert {"ok", "ms", "error"} <= set(source), name
    if report["llm"] is not None:
        assert {"model", "calls", "input_tokens", "output_tokens"} <= set(report["llm"])
    assert report["annotation"] is None or "id" in report["annotation"]
    created = datetime.fromisoformat(report["created_at"])
    assert datetime.fromisoformat(report["updated_at"]) >= created
    assert created.tzinfo is not None


def test_help_lists_all_seven_commands(tmp_path: Path) -> None:
    result = run_cli("--help", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(COMMANDS) == ["serve", "worker", "ingest", "search", "triage", "ask", "digest"]
    for name, description in COMMANDS.items():
        assert name in result.stdout and description in result.stdout


def test_help_does_not_load_the_llm_client_or_the_runbook_index(tmp_path: Path) -> None:
    # building the parser imports every command module; what they need to run must wait until they run
    probe = (
        "import sys, triage.cli.main; triage.cli.main.build_parser(); "
        "print(','.join(sorted(m for m in ('langchain_core', 'langchain_openai', 'openai', 'chromadb') "
        "if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_explains_itself_with_help(command: str, tmp_path: Path) -> None:
    result = run_cli(command, "--help", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: sre-triage {command}")
    assert COMMANDS[command] in result.stdout
    assert result.stderr == ""


def test_triage_with_no_source_configured_prints_a_contract_report_and_stores_it(tmp_path: Path) -> None:
    payload = alertmanager_payload(
        tmp_path / "alert.json", starts_at=datetime.now(UTC) - timedelta(minutes=10), generator_url=generator(EXPR)
    )
    result = run_cli("triage", payload, "--json", "--no-deliver", workdir=tmp_path)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert_report_contract(report)
    assert report["alert"]["alertname"] == "HostMemoryLow"
    assert report["alert"]["labels"]["instance"] == "db1:9100"
    assert report["alert"]["status"] == "firing"
    assert report["evidence"] == [] and report["hypotheses"] == []
    for name in CHECKS_NEEDING_A_SOURCE & set(report["sources"]):
        source = report["sources"][name]
        assert source["ok"] is False and source["error"].startswith("not configured"), name
    assert {"alert_signal", "saturation"} <= set(report["sources"])
    assert report["llm"] is None or report["llm"]["calls"] == 0
    assert report["annotation"] is None  # --no-deliver
    assert report["history"]["count"] == 0
    stored = read_stored(tmp_path, report["id"])
    assert stored["summary"] == report["summary"]


def read_stored(workdir: Path, report_id: str) -> dict[str, Any]:
    async def get() -> dict[str, Any]:
        store = SqliteStore(workdir / "reports.db")
        await store.init()
        try:
            found = await store.get(report_id)
            assert found is not None, "the report was not stored"
            return dict(json.loads(found.model_dump_json()))
        finally:
            await store.close()

    return asyncio.run(get())


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, datetime]]:
    """db1's available memory falls from 6 GiB to under 1 GiB in the last minutes; web1 stays calm."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=2)
    turn = (now - start).total_seconds() - SHIFT_MIN * 60

    def available(t: float) -> float:
        if t < turn:
            return 6 * GIB + 2e7 * math.sin(t / 90)
        return max(0.4 * GIB, 6 * GIB - (t - turn) / 240 * 5.6 * GIB)

    series = [
        SyntheticSeries.constant(
            "node_memory_MemTotal_bytes", {"instance": "db1:9100", "job": "node"}, 8 * GIB, start, now
        ),
        SyntheticSeries.from_fn(
            "node_memory_MemAvailable_bytes", {"instance": "db1:9100", "job": "node"}, start, now, fn=available
        ),
        SyntheticSeries.constant(
            "node_memory_MemTotal_bytes", {"instance": "web1:9100", "job": "node"}, 8 * GIB, start, now
        ),
        SyntheticSeries.constant(
            "node_memory_MemAvailable_bytes", {"instance": "web1:9100", "job": "node"}, 6 * GIB, start, now
        ),
    ]
    with PrometheusWorld(tmp_path_factory.mktemp("prom"), series=series) as world:
        yield world.url, now


def test_triage_against_a_real_prometheus_ranks_the_memory_shift_it_found(
    tmp_path: Path, prometheus: tuple[str, datetime]
) -> None:
    url, now = prometheus
    payload = alertmanager_payload(
        tmp_path / "alert.json", starts_at=now - timedelta(minutes=SHIFT_MIN - 2), generator_url=generator(EXPR)
    )
    result = run_cli(
        "triage", payload, "--json", "--no-deliver", workdir=tmp_path, env=cli_env(tmp_path, PROMETHEUS_URL=url)
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert_report_contract(report)
    assert report["sources"]["alert_signal"]["ok"] is True, report["sources"]["alert_signal"]
    assert report["sources"]["saturation"]["ok"] is True, report["sources"]["saturation"]
    assert report["sources"]["log_errors"]["ok"] is False  # Loki is still unset
    from_prometheus = [e for e in report["evidence"] if e["source"] == "prometheus"]
    assert from_prometheus, report["evidence"]
    assert any("memory" in (e["title"] + e["detail"]).lower() for e in from_prometheus)
    assert "db1" in report["summary"] or "HostMemoryLow" in report["summary"]


def test_the_markdown_report_reads_as_a_report_with_a_signed_link(tmp_path: Path) -> None:
    payload = alertmanager_payload(
        tmp_path / "alert.json", starts_at=datetime.now(UTC) - timedelta(minutes=10), generator_url=generator(EXPR)
    )
    env = cli_env(tmp_path, LINK_SIGNING_KEY="cli-link-key-for-tests", PUBLIC_URL="https://sre.example.net")
    result = run_cli("triage", payload, "--no-deliver", workdir=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("# HostMemoryLow")
    for heading in ("## Summary", "## Evidence", "## History", "## Data sources"):
        assert f"\n{heading}\n" in text
    assert "not configured" in text
    assert "{{" not in text and "{%" not in text and "None" not in text
    assert not text.lstrip().startswith("{")  # Markdown, not JSON
    link = next(line for line in text.splitlines() if "full report" in line)
    url = link[link.index("(<") + 2 : link.index(">)")]
    parts = urlsplit(url)
    assert url.startswith("https://sre.example.net/reports/")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    report_id = parts.path.rsplit("/", 1)[1]
    signer = LinkSigner.from_settings(load_settings(api={"link_signing_key": "cli-link-key-for-tests"}))
    assert signer.verify(report_id, query.get("exp"), query.get("sig"))


def test_no_deliver_marks_the_report_skipped_instead_of_pending(tmp_path: Path) -> None:
    payload = alertmanager_payload(
        tmp_path / "alert.json", starts_at=datetime.now(UTC) - timedelta(minutes=10), generator_url=generator(EXPR)
    )
    result = run_cli("triage", payload, "--no-deliver", workdir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Delivery: skipped" in result.stdout
    assert "pending" not in result.stdout
    link = next(line for line in result.stdout.splitlines() if "full report" in line)
    report_id = urlsplit(link[link.index("(<") + 2 : link.index(">)")]).path.rsplit("/", 1)[1]
    stored = read_stored(tmp_path, report_id)
    assert stored["delivery"] == "skipped" and stored["delivery_error"] is None
    assert stored["annotation"] is None


def test_triage_of_a_missing_or_broken_file_exits_2_with_a_reason(tmp_path: Path) -> None:
    missing = run_cli("triage", tmp_path / "nope.json", "--json", "--no-deliver", workdir=tmp_path)
    broken_path = tmp_path / "broken.json"
    broken_path.write_text('{"version": "4", "alerts": [', encoding="utf-8")
    broken = run_cli("triage", broken_path, "--json", "--no-deliver", workdir=tmp_path)

    assert missing.returncode == 2 and "nope.json" in missing.stderr and missing.stdout == ""
    assert broken.returncode == 2 and "is not JSON" in broken.stderr and broken.stdout == ""
