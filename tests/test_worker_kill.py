"""A worker process killed in the middle of a triage: the job is retried by another worker and yields one report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from reports.models import ReportStatus
from reports.payloads import parse_alerts
from reports.store import open_store
from tests.support.intake import grafana_alert, grafana_notification
from tests.support.llm_server import RecordedRequest, Reply, ScriptedLLM
from triage.settings import Settings
from triage.worker.arq_settings import build_worker
from triage.worker.queue import job_for, queue_client

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 10  # arq lets another worker take a job this long (+10 s) after its worker vanished


def _answer(title: str) -> dict[str, object]:
    return {"hypotheses": [{"title": title, "confidence": 0.5, "evidence_ids": ["e1"], "next_steps": []}]}


async def test_a_killed_worker_s_job_is_retried_and_produces_one_report(
    make_settings: Callable[..., Settings], redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    answers = iter(
        [
            Reply.structured_output(_answer("first try"), delay_s=60),
            Reply.structured_output(_answer("second try")),
        ]
    )

    def responder(request: RecordedRequest) -> Reply:
        return next(answers)

    with ScriptedLLM(responder=responder) as llm:
        llm_group = {"openai_base_url": llm.url, "llm_model": "test-model", "llm_timeout_s": 120}
        settings = make_settings(redis={"job_timeout_s": JOB_TIMEOUT_S}, llm=llm_group)
        alert = parse_alerts("grafana", grafana_notification(grafana_alert("DiskFull")))[0]
        queue = queue_client(redis_url)
        function, job_id = job_for(alert)
        await queue.enqueue_job(function, alert.model_dump(mode="json"), _job_id=job_id)
        await queue.aclose(close_connection_pool=True)

        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "REDIS_URL": redis_url,
            "DATABASE_URL": settings.storage.database_url,
            "CHROMA_DIR": str(tmp_path / "chroma"),
            "OPENAI_BASE_URL": llm.url,
            "LLM_MODEL": "test-model",
            "LLM_TIMEOUT_S": "120",
            "JOB_TIMEOUT_S": str(JOB_TIMEOUT_S),
        }
        first = subprocess.Popen(
            [sys.executable, "-m", "triage.cli.main", "worker"],
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while llm.calls == 0 and time.monotonic() < deadline and first.poll() is None:
                time.sleep(0.1)
            assert llm.calls == 1, "the first worker should be waiting on the LLM mid-triage"
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(10)

        second = build_worker(settings, burst=True, poll_delay=0.2, handle_signals=False)
        try:
            await second.main()
        finally:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Call to deprecated close", DeprecationWarning)
                await second.close()

        # the retention cron job (queued by the first worker at start-up) may complete too
        assert second.jobs_failed == 0 and second.jobs_complete >= 1
        assert llm.calls == 2
        store = open_store(settings.storage.database_url)
        await store.init()
        try:
            assert await store.count() == 1
            report = await store.get(alert.occurrence_key)
        finally:
            await store.close()
        assert report is not None and report.status is ReportStatus.triaged
        # the report holds the answer of the second worker's one call: the killed worker's call never returned
        assert report.llm is not None and report.llm.calls == 1
        assert report.llm.answer_json == "first_try" and report.llm.skipped_reason is None
