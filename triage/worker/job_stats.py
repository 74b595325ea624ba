"""Job outcome counters and duration histogram, kept in one Redis hash.

Workers come and go (``deploy.replicas``) and expose no port; they add to a hash in the Redis they already use, and
the API's ``/metrics`` reads it. Counters therefore survive worker restarts and add up across replicas, like a
Prometheus counter scraped from one place. Hash fields::

    <function>|outcome|<success|retry|failure>   count
    <function>|le|<bucket upper bound>            cumulative count of jobs at most that long
    <function>|sum                                total seconds
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from redis.asyncio import Redis

from triage.constants import JOB_STATS_KEY, job_stats_field, parse_job_stats_field

DURATION_BUCKETS_S: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, math.inf)


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(value)


async def record_job(redis: Redis, function: str, outcome: str, duration_s: float) -> None:
    """Count one finished attempt of ``function`` with its outcome and duration."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(JOB_STATS_KEY, job_stats_field(function, "outcome", outcome), 1)
        pipe.hincrbyfloat(JOB_STATS_KEY, job_stats_field(function, "sum"), duration_s)
        for bound in DURATION_BUCKETS_S:
            if duration_s <= bound:
                pipe.hincrby(JOB_STATS_KEY, job_stats_field(function, "le", _bound(bound)), 1)
        await pipe.execute()


@dataclass
class FunctionStats:
    outcomes: dict[str, int] = field(default_factory=dict)
    buckets: dict[str, int] = field(default_factory=dict)
    sum_s: float = 0.0

    @property
    def count(self) -> int:
        return self.buckets.get("+Inf", 0)


async def read_job_stats(redis: Redis) -> dict[str, FunctionStats]:
    """Per job function: outcome counts, cumulative duration buckets and total seconds."""
    raw: dict[bytes | str, bytes | str] = await redis.hgetall(JOB_STATS_KEY)  # type: ignore[misc]
    stats: dict[str, FunctionStats] = {}
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else key
        text = value.decode() if isinstance(value, bytes) else value
        function, kind, label = parse_job_stats_field(name)
        entry = stats.setdefault(function, FunctionStats())
        if kind == "outcome":
            entry.outcomes[label] = int(text)
        elif kind == "le":
            entry.buckets[label] = int(text)
        elif kind == "sum":
            entry.sum_s = float(text)
    return stats


def bucket_labels() -> list[str]:
    return [_bound(b) for b in DURATION_BUCKETS_S]
