"""A small time-limited cache for API answers that many callers want at nearly the same moment.

One triage asks Proxmox VE for the cluster listing from several checks at once, and a storm of alerts asks for it
from every job. Within ``ttl_s`` the answer is reused; concurrent callers of a key wait on one lock so only the
first one sends the request. Failures are not cached: the next caller tries again.

    cache: TtlCache[str, list[Resource]] = TtlCache(10.0)
    rows = await cache.get("resources", fetch_resources)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 256


class TtlCache(Generic[K, V]):
    """Answers by key for ``ttl_s`` seconds (0 or less: no caching, every call loads).

    ``clock`` is the monotonic clock the expiry uses; ``max_entries`` bounds memory when callers use many keys.
    """

    def __init__(
        self,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_entries = max(1, max_entries)
        self._entries: dict[K, tuple[V, float]] = {}
        self._locks: dict[K, asyncio.Lock] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The fresh answer for ``key``, else ``await load()`` (once, however many callers wait) and keep it."""
        if self.ttl_s <= 0:
            return await load()
        entry = self._fresh(key)
        if entry is not None:
            return entry[0]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            # a caller that held the lock before us may have loaded it meanwhile
            entry = self._fresh(key)
            if entry is not None:
                return entry[0]
            value = await load()
            self._entries[key] = (value, self.clock() + self.ttl_s)
        self._prune()
        return value

    def clear(self) -> None:
        """Forget every answer (locks held by running loads stay valid)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _fresh(self, key: K) -> tuple[V, float] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self.clock():
            del self._entries[key]
            return None
        return entry

    def _prune(self) -> None:
        now = self.clock()
        for key in [k for k, (_, expires) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) > self.max_entries:
            # dicts keep insertion order: the first entry is the oldest load
            del self._entries[next(iter(self._entries))]
        for key in [k for k, lock in self._locks.items() if k not in self._entries and not lock.locked()]:
            del self._locks[key]
