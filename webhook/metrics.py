"""``GET /metrics``: intake counters of this API process, plus queue depth, worker job stats, report deliveries per
channel and the hour's LLM token spend read from Redis.

Each app has its own :class:`~prometheus_client.CollectorRegistry`, so several apps in one process (tests) do not
clash. The worker's job outcomes and durations come from the Redis hash of :mod:`triage.worker.job_stats`, read at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from redis.exceptions import RedisError

from triage.analysis.budget import RedisTokenBudget
from triage.constants import QUEUE_NAME
from triage.notify.stats import read_delivery_stats
from triage.worker.job_stats import FunctionStats, bucket_labels, read_job_stats

# receiver names come from the payload: cap how many distinct label values one process creates
MAX_RECEIVERS = 50
MAX_RECEIVER_CHARS = 64
OTHER = "other"


class WorkerJobsCollector(Collector):
    """Exposes the last snapshot of worker job stats (refreshed by each scrape before rendering)."""

    def __init__(self) -> None:
        self.snapshot: dict[str, FunctionStats] = {}

    def collect(self) -> Iterable[Metric]:
        jobs = CounterMetricFamily(
            "sre_triage_jobs",
            "Job attempts finished by the workers, by function and outcome.",
            labels=["function", "outcome"],
        )
        durations = HistogramMetricFamily(
            "sre_triage_job_duration_seconds", "Duration of job attempts, by function.", labels=["function"]
        )
        for function, stats in sorted(self.snapshot.items()):
            for outcome, count in sorted(stats.outcomes.items()):
                jobs.add_metric([function, outcome], count)
            buckets = [(bound, float(stats.buckets.get(bound, 0))) for bound in bucket_labels()]
            durations.add_metric([function], buckets, stats.sum_s)
        yield jobs
        yield durations


class DeliveriesCollector(Collector):
    """Delivery attempts per channel (``grafana``, ``notify-1`` …) and resulting state, from the workers' hash."""

    def __init__(self) -> None:
        self.snapshot: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "sre_triage_deliveries",
            "Report delivery attempts by channel and resulting state (pending: will be retried).",
            labels=["channel", "state"],
        )
        for (channel, state), count in sorted(self.snapshot.items()):
            family.add_metric([channel, state], count)
        yield family


class IntakeMetrics:
    """The API's metrics; ``render`` refreshes the Redis-backed ones and returns the exposition text."""

    def __init__(self, llm_hourly_token_budget: int = 0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.notifications = Counter(
            "sre_triage_notifications",
            "Webhook notifications received, by sender, receiver and outcome.",
            ["source", "receiver", "outcome"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "sre_triage_alerts",
            "Alerts in accepted notifications: enqueued as a new job, or a duplicate of a known job.",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.enqueue_failures = Counter(
            "sre_triage_enqueue_failures",
            "Notifications answered 503 because Redis could not take the job.",
            ["source"],
            registry=self.registry,
        )
        self.intake_seconds = Histogram(
            "sre_triage_intake_duration_seconds",
            "Time from request to response of webhook notifications.",
            ["source"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "sre_triage_queue_depth", "Jobs waiting in the queue (including deferred retries).", registry=self.registry
        )
        self.redis_up = Gauge("sre_triage_redis_up", "1 when the last scrape could read Redis.", registry=self.registry)
        self.llm_tokens_spent = Gauge(
            "sre_triage_llm_tokens_spent",
            "LLM tokens triage and /ask spent in the current clock hour (UTC), all workers together.",
            registry=self.registry,
        )
        self.llm_token_budget = Gauge(
            "sre_triage_llm_token_budget", "LLM_HOURLY_TOKEN_BUDGET: tokens allowed per hour.", registry=self.registry
        )
        self.llm_token_budget.set(llm_hourly_token_budget)
        self.worker_jobs = WorkerJobsCollector()
        self.registry.register(self.worker_jobs)
        self.deliveries = DeliveriesCollector()
        self.registry.register(self.deliveries)
        self._receivers: set[str] = set()
        # labelled children by label values: prometheus-client's labels() validates and locks on every call
        self._children: dict[tuple[object, ...], Any] = {}

    def receiver_label(self, receiver: str | None) -> str:
        name = (receiver or "")[:MAX_RECEIVER_CHARS]
        if name in self._receivers:
            return name
        if len(self._receivers) >= MAX_RECEIVERS:
            return OTHER
        self._receivers.add(name)
        return name

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def notification(self, source: str, receiver: str | None, outcome: str) -> None:
        self._child(self.notifications, source, self.receiver_label(receiver), outcome).inc()

    def alerts_seen(self, source: str, outcome: str, count: int) -> None:
        self._child(self.alerts, source, outcome).inc(count)

    def enqueue_failed(self, source: str) -> None:
        self._child(self.enqueue_failures, source).inc()

    def intake_time(self, source: str, seconds: float) -> None:
        self._child(self.intake_seconds, source).observe(seconds)

    async def refresh(self, redis: Redis) -> None:
        try:
            depth: Any = await redis.zcard(QUEUE_NAME)
            self.worker_jobs.snapshot = await read_job_stats(redis)
            self.deliveries.snapshot = await read_delivery_stats(redis)
            spent = await RedisTokenBudget(redis).spent(datetime.now(UTC))
        except (RedisError, OSError):
            self.redis_up.set(0)
            return
        self.queue_depth.set(int(depth))
        self.llm_tokens_spent.set(spent)
        self.redis_up.set(1)

    async def render(self, redis: Redis) -> tuple[bytes, str]:
        await self.refresh(redis)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
