"""The hourly LLM token budget: one counter per clock hour, shared by every worker through Redis.

A triage reserves its estimated tokens before the call (atomically, so concurrent triages of a storm cannot all
pass a nearly spent budget) and settles the difference with the real usage afterwards. The CLI, which runs without
Redis, uses :class:`MemoryTokenBudget`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol

from redis.asyncio import Redis

from triage.constants import llm_budget_key

# a key outlives its hour a little so a reservation made at :59 can still be settled
KEY_TTL_S = 2 * 3600


def resets_at(now: datetime) -> datetime:
    """When the budget of ``now``'s hour is replaced by a fresh one: the next full hour, UTC."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


class TokenBudget(Protocol):
    async def reserve(self, tokens: int, limit: int, now: datetime) -> bool:
        """Take ``tokens`` from this hour's budget unless that would pass ``limit``; say whether it was taken."""

    async def settle(self, delta: int, now: datetime) -> None:
        """Correct this hour's spend by ``delta`` tokens (real usage minus the reservation)."""

    async def spent(self, now: datetime) -> int: ...


class MemoryTokenBudget:
    """A per-process budget (the CLI, tests)."""

    def __init__(self) -> None:
        self._spent: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def reserve(self, tokens: int, limit: int, now: datetime) -> bool:
        async with self._lock:
            key = llm_budget_key(now)
            current = self._spent.get(key, 0)
            if current + tokens > limit:
                return False
            self._spent[key] = current + tokens
            return True

    async def settle(self, delta: int, now: datetime) -> None:
        async with self._lock:
            key = llm_budget_key(now)
            self._spent[key] = max(0, self._spent.get(key, 0) + delta)

    async def spent(self, now: datetime) -> int:
        return self._spent.get(llm_budget_key(now), 0)


class RedisTokenBudget:
    """The shared budget: ``INCRBY`` on the hour's key, given back when the reservation would pass the limit."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def reserve(self, tokens: int, limit: int, now: datetime) -> bool:
        key = llm_budget_key(now)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, tokens)
            pipe.expire(key, KEY_TTL_S)
            total, _ = await pipe.execute()
        if int(total) > limit:
            await self._redis.decrby(key, tokens)
            return False
        return True

    async def settle(self, delta: int, now: datetime) -> None:
        if delta:
            key = llm_budget_key(now)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, delta)
                pipe.expire(key, KEY_TTL_S)
                await pipe.execute()

    async def spent(self, now: datetime) -> int:
        value = await self._redis.get(llm_budget_key(now))
        return int(value or 0)
