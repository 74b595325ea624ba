"""The worker's poll loop and shutdown with Redis gone, in-process: a failed job claim gives its slot back, polls
back off, and closing does not fail."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import RedisError

from tests.support.procs import RedisServer
from triage.worker.arq_settings import build_worker
from triage.worker.loop import BACKOFF_MAX_S, backoff_s


def test_backoff_doubles_from_half_a_second_up_to_the_cap() -> None:
    assert [backoff_s(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_s(50) == BACKOFF_MAX_S


async def test_with_redis_gone_the_worker_keeps_its_slots_keeps_polling_and_closes(
    make_settings: Any, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(redis={"redis_url": redis_server.url, "worker_max_jobs": 2})
    worker = build_worker(settings, burst=True, poll_delay=0.01, handle_signals=False, cron_jobs=[])
    await worker.main()  # connects, finds the queue empty, returns
    redis_server.stop()
    free_slots = worker.sem._value

    with pytest.raises((RedisError, OSError)):
        await worker.start_jobs([b"some-job"])
    assert worker.job_counter == 0
    assert worker.sem._value == free_slots  # the slot the failed claim took is free again

    # a poll that fails is absorbed: it backs off instead of raising out of the loop
    started = asyncio.get_running_loop().time()
    await worker._poll_iteration()
    await worker._poll_iteration()
    assert worker.poll_failures == 2
    assert asyncio.get_running_loop().time() - started >= backoff_s(1) + backoff_s(2) - 0.05
    assert [r.getMessage() for r in caplog.records].count("redis unreachable, polling again with backoff") == 1

    await worker.close()  # the health key cannot be removed; the shutdown still completes
    assert worker._pool is None
