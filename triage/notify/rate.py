"""A per-channel rate limit shared by every worker through Redis: during a storm a channel gets one message.

The first report of a window takes the channel's slot (``SET NX`` with the window as expiry); later reports in the
window are counted instead of sent, and the next message that goes out says how many were held back. A retried
job of the report that holds the slot may send (its first attempt failed); a failed send gives the slot back so
another report can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from reports.models import NotifyEvent
from triage.constants import notify_held_key, notify_slot_key

# Give the slot back only if this report still holds it (a later report may have taken it after expiry).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class RateLimiter:
    """At most one message per ``window_s`` per channel and event kind (``window_s`` 0: no limit)."""

    redis: Redis
    window_s: int

    def _slot(self, channel: str, event: NotifyEvent) -> str:
        return notify_slot_key(channel, event)

    def _held(self, channel: str, event: NotifyEvent) -> str:
        return notify_held_key(channel, event)

    async def acquire(self, channel: str, event: NotifyEvent, report_id: str) -> bool:
        """True when ``report_id`` may send now; False when another report sent in this window (it is counted)."""
        if self.window_s <= 0:
            return True
        slot = self._slot(channel, event)
        if await self.redis.set(slot, report_id, nx=True, ex=self.window_s):
            return True
        holder = await self.redis.get(slot)
        if holder is not None and holder.decode() == report_id:
            return True
        held = self._held(channel, event)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(held)
            # the count outlives a few windows, so a quiet spell after a storm still reports it
            pipe.expire(held, self.window_s * 4)
            await pipe.execute()
        return False

    async def take_held(self, channel: str, event: NotifyEvent) -> int:
        """How many messages were held back since the last one that went out (and reset the count)."""
        if self.window_s <= 0:
            return 0
        value = await self.redis.getdel(self._held(channel, event))
        return int(value) if value else 0

    async def release(self, channel: str, event: NotifyEvent, report_id: str) -> None:
        """Give the slot back after a failed send, if ``report_id`` still holds it."""
        if self.window_s > 0:
            await self.redis.eval(_RELEASE, 1, self._slot(channel, event), report_id)  # type: ignore[misc]

    async def put_back(self, channel: str, event: NotifyEvent, count: int) -> None:
        """Return ``count`` held-back messages to the tally (the message that was to mention them failed)."""
        if self.window_s > 0 and count > 0:
            held = self._held(channel, event)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incrby(held, count)
                pipe.expire(held, self.window_s * 4)
                await pipe.execute()
