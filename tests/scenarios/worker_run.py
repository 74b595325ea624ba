"""Run alerts through the real arq worker, as production does: enqueue like the webhook, drain in burst mode.

The worker is ``triage.worker.arq_settings.build_worker`` with its start-up replaced so that its store and data-source clients
are the scenario world's (fakes and the suite's Prometheus) instead of ones built from URLs in the settings.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis, create_pool

from reports.models import Alert
from reports.store import ReportStore
from triage.analysis.analyser import Analyser
from triage.constants import QUEUE_NAME
from triage.deps import Deps
from triage.settings import Settings
from triage.worker.arq_settings import build_worker
from triage.worker.queue import JOB_EXPIRES_MS, UniqueEnqueuer, dump_job, load_job, redis_settings
from triage.worker.state import WorkerContext
from webhook.intake import enqueue_alert

POLL_DELAY_S = 0.05


@dataclass
class WorkerRun:
    wall_s: float
    complete: int
    failed: int
    retried: int


async def open_queue(redis_url: str) -> ArqRedis:
    """A connection pool able to enqueue jobs (pings Redis once; raises when it is unreachable)."""
    return await create_pool(
        redis_settings(redis_url),
        job_serializer=dump_job,
        job_deserializer=load_job,
        default_queue_name=QUEUE_NAME,
        expires_extra_ms=JOB_EXPIRES_MS,
    )


async def enqueue(redis_url: str, alerts: list[Alert]) -> None:
    """Enqueue one triage job per alert through the webhook's own enqueue (job id = the occurrence's dedup key)."""
    queue = await open_queue(redis_url)
    try:
        enqueuer = UniqueEnqueuer(queue)
        for alert in alerts:
            enqueued = await enqueue_alert(enqueuer, alert)
            if enqueued.duplicate:
                raise RuntimeError(f"job {enqueued.job_id} was refused as a duplicate")
    finally:
        await queue.aclose(close_connection_pool=True)


async def drain(settings: Settings, store: ReportStore, deps: Callable[[Analyser], Deps]) -> WorkerRun:
    """Run one worker in burst mode until the queue is empty; ``deps`` builds its clients around an analyser."""

    async def startup(ctx: dict[str, Any]) -> None:
        clients = deps(Analyser(settings.llm, None))
        WorkerContext.install(ctx, settings=settings, store=store, redis=ctx["redis"], deps=clients)

    async def shutdown(ctx: dict[str, Any]) -> None:
        # the world owns the store and the clients and closes them itself
        WorkerContext.uninstall(ctx)

    worker = build_worker(
        settings, burst=True, on_startup=startup, on_shutdown=shutdown, poll_delay=POLL_DELAY_S, handle_signals=False
    )
    started = time.perf_counter()
    try:
        await worker.async_run()
    finally:
        with warnings.catch_warnings():
            # arq 0.28 closes its pool with redis-py's deprecated close()
            warnings.filterwarnings("ignore", "Call to deprecated close", DeprecationWarning)
            await worker.close()
    return WorkerRun(time.perf_counter() - started, worker.jobs_complete, worker.jobs_failed, worker.jobs_retried)
