"""The arq worker: its settings, built from :class:`~triage.settings.Settings`, and its start-up and shutdown.

Start-up opens what jobs share for the life of the process (the report store, the data-source clients) and puts it
in the job context as one :class:`~triage.worker.state.WorkerContext`; shutdown closes it. arq handles SIGINT/SIGTERM: with
``WORKER_SHUTDOWN_GRACE_S`` > 0 it stops taking jobs and lets running ones finish for that long before cancelling
them; a cancelled job is re-queued (it is retried, never lost).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from arq.cron import CronJob, cron
from redis.exceptions import RedisError

from reports.store import open_store
from triage.analysis.budget import RedisTokenBudget
from triage.constants import HEALTH_CHECK_KEY, QUEUE_NAME
from triage.deps import build_deps, close_deps
from triage.settings import Settings
from triage.worker.digest_job import send_digest
from triage.worker.jobs import purge_reports, resolve_alert, triage_alert
from triage.worker.loop import ResilientWorker
from triage.worker.queue import JOB_EXPIRES_MS, dump_job, load_job, queue_client, redis_settings
from triage.worker.state import WorkerContext

log = logging.getLogger("triage.worker.arq_settings")

# The health-check key is rewritten this often and expires just after, so a stale key means a dead worker.
HEALTH_CHECK_INTERVAL_S = 30
# At start-up, wait this long for Redis (compose may start the worker first).
STARTUP_CONN_RETRIES = 30

FUNCTIONS = (triage_alert, resolve_alert)
PURGE_MINUTE = 17
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


async def startup(settings: Settings, ctx: dict[str, Any]) -> None:
    """Open the long-lived resources jobs use (the report store, the triage's clients) into arq's ``ctx``."""
    store = open_store(settings.storage.database_url)
    await store.init()
    redis = ctx["redis"]  # arq's pool, there before start-up
    try:
        deps = build_deps(settings, budget=RedisTokenBudget(redis), store=store)
    except BaseException:
        await store.close()
        raise
    WorkerContext.install(ctx, settings=settings, store=store, redis=redis, deps=deps)
    log.info("worker started", extra={"queue": QUEUE_NAME, "max_jobs": settings.redis.worker_max_jobs})


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close what :func:`startup` opened, in reverse order."""
    worker = WorkerContext.uninstall(ctx)
    if worker is not None:
        await close_deps(worker.deps)
        await worker.store.close()
    log.info("worker stopped")


def cron_jobs(settings: Settings) -> list[CronJob]:
    """Retention hourly and at start-up; the weekly digest unless ``DIGEST_WEEKDAY=off``.

    ``unique`` keeps several worker replicas from running the same tick twice. No own timeout: arq leases every job
    for the longest function timeout, so a longer one would delay the pick-up of a dead worker's jobs.
    """
    jobs = [cron(purge_reports, minute=PURGE_MINUTE, run_at_startup=True, unique=True)]
    digest = settings.digest
    if digest.weekday != "off":
        weekday = WEEKDAYS.index(digest.weekday)  # arq spells days its own way ("tues"); its numbers are Monday=0
        jobs.append(cron(send_digest, weekday=weekday, hour=digest.hour, minute=0, second=0, unique=True))
    return jobs


def worker_settings(settings: Settings, *, conn_retries: int = STARTUP_CONN_RETRIES) -> dict[str, Any]:
    """Keyword arguments of :class:`arq.worker.Worker` for these settings (arq's ``WorkerSettings``)."""
    redis = settings.redis
    return {
        "functions": list(FUNCTIONS),
        "cron_jobs": cron_jobs(settings),
        "queue_name": QUEUE_NAME,
        "redis_settings": redis_settings(redis.redis_url, conn_retries=conn_retries),
        "on_startup": partial(startup, settings),
        "on_shutdown": shutdown,
        "max_jobs": redis.worker_max_jobs,
        "job_timeout": redis.job_timeout_s,
        "max_tries": redis.job_max_tries,
        # A finished job's result blocks its job id (the dedup key) for as long as it is kept.
        "keep_result": redis.dedup_window_s,
        "health_check_key": HEALTH_CHECK_KEY,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "job_completion_wait": redis.worker_shutdown_grace_s,
        "job_serializer": dump_job,
        "job_deserializer": load_job,
        "expires_extra_ms": JOB_EXPIRES_MS,
        "log_results": False,
    }


def build_worker(settings: Settings, **overrides: Any) -> ResilientWorker:
    """A ready-to-run worker (``burst=True`` in ``overrides`` drains the queue and returns); it rides out Redis
    outages (:mod:`triage.worker.loop`)."""
    return ResilientWorker(**{**worker_settings(settings), **overrides})


async def check_worker_health(settings: Settings) -> int:
    """0 when a worker wrote its health-check key recently (the key expires otherwise), else 1."""
    client = queue_client(settings.redis.redis_url)
    try:
        return 0 if await client.exists(HEALTH_CHECK_KEY) else 1
    except (RedisError, OSError):
        return 1
    finally:
        await client.aclose(close_connection_pool=True)
