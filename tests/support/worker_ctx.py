"""arq's job context as the worker's start-up leaves it, for calling job functions directly."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from reports.store import ReportStore
from triage.analysis.analyser import Analyser
from triage.deps import Deps
from triage.settings import Settings
from triage.worker.state import WorkerContext


def job_ctx(settings: Settings, store: ReportStore, redis: Redis, deps: Deps | None = None) -> dict[str, Any]:
    """A job context holding a :class:`WorkerContext` (no data sources and no LLM unless ``deps`` says so)."""
    ctx: dict[str, Any] = {"redis": redis}
    deps = deps or Deps(analyser=Analyser(settings.llm, None), store=store)
    WorkerContext.install(ctx, settings=settings, store=store, redis=redis, deps=deps)
    return ctx
