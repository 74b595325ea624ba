"""Delivery counters per channel and state, in a Redis hash the API's ``/metrics`` reads (like :mod:`triage.worker.job_stats`).

Hash fields are ``<channel>|<state>`` (``grafana|delivered``, ``notify-1|pending``): channel keys, never URLs.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from triage.constants import DELIVERY_STATS_KEY, delivery_stats_field, parse_delivery_stats_field


async def record_deliveries(redis: Redis, attempted: Mapping[str, str]) -> None:
    """Count one delivery attempt per channel with the state it ended in."""
    if not attempted:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for channel, state in attempted.items():
            pipe.hincrby(DELIVERY_STATS_KEY, delivery_stats_field(channel, state), 1)
        await pipe.execute()


async def read_delivery_stats(redis: Redis) -> dict[tuple[str, str], int]:
    """``(channel, state) -> count`` of every delivery attempt the workers recorded."""
    raw: dict[bytes | str, bytes | str] = await redis.hgetall(DELIVERY_STATS_KEY)  # type: ignore[misc]
    stats: dict[tuple[str, str], int] = {}
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else key
        stats[parse_delivery_stats_field(name)] = int(value)
    return stats
