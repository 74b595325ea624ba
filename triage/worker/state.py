"""What the jobs of one worker share: settings, the report store, Redis, the triage's clients, the channels.

arq hands every job a dict (its ``ctx``) holding arq's own keys (``redis``, ``job_id``, ``job_try`` …). The worker's
start-up puts one :class:`WorkerContext` there under :data:`KEY` (:meth:`WorkerContext.install`); jobs take it back
with :meth:`WorkerContext.from_ctx` and read nothing else from the dict but the attempt arq is on.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from redis.asyncio import Redis

from reports.store import ReportStore
from triage.deps import Deps
from triage.notify.base import Notifier
from triage.notify.build import build_notifiers
from triage.settings import Settings

KEY = "sre_triage"


class WorkerNotStarted(RuntimeError):
    """A job ran in a context the worker's start-up did not prepare."""


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    store: ReportStore
    redis: Redis
    # the clients every triage uses; ``deps.store`` is ``store``
    deps: Deps

    @classmethod
    def install(
        cls, ctx: MutableMapping[str, Any], *, settings: Settings, store: ReportStore, redis: Redis, deps: Deps
    ) -> WorkerContext:
        """Make the worker context and put it into arq's ``ctx``, where every job finds it."""
        worker = cls(settings=settings, store=store, redis=redis, deps=deps)
        ctx[KEY] = worker
        return worker

    @classmethod
    def from_ctx(cls, ctx: Mapping[str, Any]) -> WorkerContext:
        """The worker context in arq's ``ctx``; :class:`WorkerNotStarted` when start-up did not put one there."""
        worker = ctx.get(KEY)
        if not isinstance(worker, cls):
            raise WorkerNotStarted(
                f"the job context has no {cls.__name__} under {KEY!r}: the worker's start-up did not run"
            )
        return worker

    @staticmethod
    def uninstall(ctx: MutableMapping[str, Any]) -> WorkerContext | None:
        """Take the worker context out of ``ctx`` (at shutdown); None when there was none."""
        worker = ctx.pop(KEY, None)
        return worker if isinstance(worker, WorkerContext) else None

    @cached_property
    def notifiers(self) -> list[Notifier]:
        """The delivery channels, made when the first job delivers and kept for the worker's life."""
        return build_notifiers(self.settings, self.deps.grafana, self.redis)


def job_try(ctx: Mapping[str, Any]) -> int:
    """The attempt arq is on (1 for the first)."""
    return int(ctx.get("job_try", 1))
