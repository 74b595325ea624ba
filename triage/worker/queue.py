"""The job queue as the API and the worker share it: connection settings, job encoding, job ids, enqueueing.

Jobs are encoded as JSON, not arq's default pickle: a job body is only the normalised alert (plain data), and
unpickling whatever sits in Redis would let anyone who can write to Redis run code in the worker.

:class:`UniqueEnqueuer` writes a job exactly as arq's ``enqueue_job(_job_id=…)`` does (same keys, same encoding, so
the arq worker runs it unchanged) and refuses it on the same condition (a job or a kept result with that id
exists), but as one Lua script: one round trip instead of arq's WATCH / EXISTS / MULTI…EXEC, and atomic without
optimistic-locking retries when many notifications for one alert arrive at once.
"""

from __future__ import annotations

import json
import time
from typing import Any

from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix, result_key_prefix
from redis.asyncio import ConnectionPool
from redis.commands.core import AsyncScript

from reports.models import Alert, AlertStatus
from triage.constants import JOB_RESOLVE, JOB_TRIAGE, QUEUE_NAME, resolve_job_id, triage_job_id

# Short timeouts, no start-up retries: the API must answer 503 quickly instead of hanging the sender.
CONNECT_TIMEOUT_S = 2
COMMAND_TIMEOUT_S = 5
# A queued job is dropped by arq when it waits longer than this; a week rides out a long worker outage.
JOB_EXPIRES_MS = 7 * 24 * 3600 * 1000


def dump_job(value: dict[str, Any]) -> bytes:
    """arq job/result serializer: JSON, with unserialisable results (exceptions) as their text."""
    return json.dumps(value, default=str, separators=(",", ":")).encode()


def encode_job(function: str, argument_json: bytes, enqueue_time_ms: int) -> bytes:
    """What ``serialize_job(function, (argument,), {}, None, t, serializer=dump_job)`` encodes, built from the
    argument's JSON (``Alert.model_dump_json()``) without decoding and re-encoding it."""
    return b"".join(
        (
            b'{"t":null,"f":',
            json.dumps(function).encode(),
            b',"a":[',
            argument_json,
            b'],"k":{},"et":',
            str(int(enqueue_time_ms)).encode(),
            b"}",
        )
    )


def load_job(raw: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(raw)
    return loaded


def redis_settings(redis_url: str, *, conn_retries: int = 0) -> RedisSettings:
    settings = RedisSettings.from_dsn(redis_url)
    settings.conn_timeout = CONNECT_TIMEOUT_S
    settings.conn_retries = conn_retries
    return settings


def queue_client(redis_url: str) -> ArqRedis:
    """A lazily connecting pool able to enqueue jobs: the API starts even while Redis is down, and answers 503.

    Close it with ``await client.aclose(close_connection_pool=True)``.
    """
    pool = ConnectionPool.from_url(
        redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=COMMAND_TIMEOUT_S
    )
    return ArqRedis(
        pool,
        job_serializer=dump_job,
        job_deserializer=load_job,
        default_queue_name=QUEUE_NAME,
        expires_extra_ms=JOB_EXPIRES_MS,
    )


def job_for(alert: Alert) -> tuple[str, str]:
    """(function name, job id) for an alert: the job id is the dedup key of that occurrence and status."""
    if alert.status is AlertStatus.resolved:
        return JOB_RESOLVE, resolve_job_id(alert.occurrence_key)
    return JOB_TRIAGE, triage_job_id(alert.occurrence_key)


# KEYS: job key, result key, queue. ARGV: expiry (ms), encoded job, score (ms), job id.
_ENQUEUE_LUA = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
  return 0
end
redis.call('PSETEX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


class UniqueEnqueuer:
    """Enqueue a job unless one with its id is queued, running or still has its result kept (the dedup window)."""

    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis
        self._script: AsyncScript = redis.register_script(_ENQUEUE_LUA)

    async def enqueue(self, function: str, argument_json: bytes, job_id: str) -> bool:
        """Enqueue ``function(argument)`` given the argument as JSON; False when the id is known (a duplicate)."""
        now_ms = int(time.time() * 1000)
        job = encode_job(function, argument_json, now_ms)
        keys = [job_key_prefix + job_id, result_key_prefix + job_id, QUEUE_NAME]
        added = await self._script(keys=keys, args=[JOB_EXPIRES_MS, job, now_ms, job_id])
        return bool(added)
