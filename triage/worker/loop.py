"""arq's worker, made to ride out Redis outages of any length and to stop on SIGTERM whatever Redis does.

arq 0.28 lets a connection error escape its poll loop: ``main()`` ends, ``close()`` fails on the same error, and
the process no longer takes jobs. :class:`ResilientWorker` keeps polling instead: an iteration that fails on Redis
is logged once per outage, then retried with exponential backoff; once Redis answers again the worker says so and
rewrites its health key at once (a restarted Redis lost it). A shutdown that cannot reach Redis is logged and
finishes anyway.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from arq.worker import Worker
from redis.exceptions import RedisError

from tools.backoff import backoff_delay_s

log = logging.getLogger("triage.worker.arq_settings")

# What a Redis outage raises: redis-py's errors, and socket errors raised before redis-py wraps them.
REDIS_DOWN = (RedisError, OSError, asyncio.TimeoutError)
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
# On shutdown, how long deleting the health key may take before the worker stops without it.
CLOSE_REDIS_TIMEOUT_S = 3.0


def backoff_s(failures: int) -> float:
    """Wait before the next poll after ``failures`` failed ones in a row: 0.5 s, 1 s, 2 s … capped at 30 s."""
    return backoff_delay_s(failures, first_s=BACKOFF_FIRST_S, cap_s=BACKOFF_MAX_S)


class ResilientWorker(Worker):
    """An arq worker whose poll loop survives Redis errors and whose shutdown never fails on them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poll_failures = 0
        self._redis_down = False
        self._outage_started = 0.0

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            await self._back_off(exc, redis=True)
        except Exception as exc:
            # anything else arq raises here (a job task's bookkeeping) must not end the loop either
            log.exception("worker poll failed", extra={"error_type": type(exc).__name__})
            await self._back_off(exc, redis=False)
        else:
            if self.poll_failures:
                self._recovered()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        try:
            await super().start_jobs(job_ids)
        except REDIS_DOWN:
            # arq counted the job it was claiming (counter and semaphore) before Redis failed; give the slot back
            self.job_counter -= 1
            self.sem.release()
            raise

    async def _back_off(self, exc: BaseException, *, redis: bool) -> None:
        self.poll_failures += 1
        delay_s = backoff_s(self.poll_failures)
        if redis and not self._redis_down:
            # once per outage, not once per poll
            self._redis_down = True
            self._outage_started = time.monotonic()
            log.warning(
                "redis unreachable, polling again with backoff",
                extra={"error_type": type(exc).__name__, "retry_in_s": delay_s},
            )
        # a SIGTERM meanwhile cancels this sleep (arq cancels the main task), so the worker still stops
        await asyncio.sleep(delay_s)

    def _recovered(self) -> None:
        if self._redis_down:
            outage_s = round(time.monotonic() - self._outage_started, 1)
            log.info("redis reachable again", extra={"failed_polls": self.poll_failures, "outage_s": outage_s})
        self._redis_down = False
        self.poll_failures = 0
        # the health key expired during the outage (or vanished with a restarted Redis): write it on the next poll
        self._last_health_check = 0

    async def close(self) -> None:
        """arq's ``close()``, except that an unreachable Redis is logged instead of failing the shutdown."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        try:
            await asyncio.wait_for(self.pool.delete(self.health_check_key), CLOSE_REDIS_TIMEOUT_S)
        except REDIS_DOWN as exc:
            log.warning("could not remove the health key on shutdown", extra={"error_type": type(exc).__name__})
        try:
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)
        finally:
            await self.pool.aclose(close_connection_pool=True)
            self._pool = None
