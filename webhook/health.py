"""Operations endpoints: ``/healthz`` (alive), ``/readyz`` (can take work), ``/health`` (each dependency), ``/metrics``.

``/readyz`` gates traffic: Redis (the queue) and the report store must answer, else 503 naming what failed.
Components add their own readiness check (the runbook index, for one) by registering an async callable that raises
when not ready: ``app.state.ready_checks["runbooks"] = partial(runbook_readiness, index)`` (in their router's
lifespan). A check raises :class:`NotReady` with a sentence that says what to fix (shown as is; any other exception
shows only its type, since its text may hold a URL with credentials), and may return :class:`Degraded`: ready, but
``/health`` reports the component as degraded with the reason.
``/health`` is for people and dashboards: every configured dependency is ``healthy``, ``degraded`` or ``unhealthy``
with a short reason, and the overall status is the worst of them. Probes run concurrently, each with a deadline.
The data sources probed, and where, come from the source registry (:data:`triage.sources.SOURCES`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from reports.store import ReportStore, StoreError
from tools.errors import SourceError
from tools.http import tls_verify
from triage.constants import HEALTH_CHECK_KEY, QUEUE_NAME
from triage.settings import Settings
from triage.sources import SOURCE_BY_NAME, SOURCES
from webhook.errors import error_body

router = APIRouter()

PROBE_TIMEOUT_S = 3.0
# A queue this deep with a live worker means the workers cannot keep up.
BACKLOG_DEGRADED = 1000

Status = Literal["healthy", "degraded", "unhealthy"]
ReadyCheck = Callable[[], Awaitable[Any]]
_RANK: dict[Status, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}


@dataclass
class Check:
    status: Status
    detail: str = ""
    ms: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, "ms": round(self.ms, 1)}


async def _timed(name: str, probe: Awaitable[Check]) -> tuple[str, Check]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            result = await probe
    except TimeoutError:
        result = Check("unhealthy", f"no answer within {PROBE_TIMEOUT_S:g}s")
    result.ms = (time.perf_counter() - started) * 1000
    return name, result


async def probe_redis(request: Request) -> Check:
    try:
        await request.app.state.arq.ping()
    except (RedisError, OSError) as exc:
        return Check("unhealthy", f"unreachable ({type(exc).__name__})")
    return Check("healthy")


async def probe_store(store: ReportStore) -> Check:
    try:
        await store.ping()
    except (StoreError, OSError) as exc:
        return Check("unhealthy", f"not answering ({type(exc).__name__})")
    return Check("healthy")


async def probe_worker(request: Request) -> Check:
    """A worker rewrites the health-check key every 30 s; no key means no worker is running."""
    arq = request.app.state.arq
    try:
        alive = await arq.exists(HEALTH_CHECK_KEY)
        depth = await arq.zcard(QUEUE_NAME)
    except (RedisError, OSError):
        return Check("unhealthy", "cannot read the worker health key: Redis is unreachable")
    if not alive:
        return Check("degraded", f"no worker has reported in the last minute; {depth} job(s) waiting")
    if depth > BACKLOG_DEGRADED:
        return Check("degraded", f"{depth} jobs waiting: the workers are not keeping up")
    return Check("healthy", f"{depth} job(s) waiting")


async def probe_http(url: str, *, verify: Any) -> Check:
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, verify=verify, follow_redirects=False) as client:
            response = await client.get(url)
    except httpx.TimeoutException:
        return Check("unhealthy", "timed out")
    except httpx.HTTPError as exc:
        return Check("unhealthy", f"unreachable ({type(exc).__name__})")
    if response.status_code >= 500:
        return Check("degraded", f"answered HTTP {response.status_code}")
    return Check("healthy", f"answered HTTP {response.status_code}")


def source_probes(settings: Settings) -> dict[str, str]:
    """Source name → the URL ``/health`` probes, for every registered source with an address (in registry order).

    A source with an address is probed even when its client is not opened for want of a token (Grafana): the
    address is configured, and whether it answers is worth knowing.
    """
    probes: dict[str, str] = {}
    for spec in SOURCES:
        group = spec.group(settings)
        if group.configured and group.url is not None:
            probes[spec.name] = group.url + spec.health_path
    return probes


class NotReady(Exception):
    """A component cannot do its work; the message says what to fix and is safe to show."""


@dataclass(frozen=True)
class Degraded:
    """What a readiness check returns when the component works, but not fully (``/health`` says why)."""

    reason: str


class RunbookIndexLike(Protocol):
    async def count(self) -> int: ...


REBUILD_HINT = (
    "rebuild it with `sre-triage ingest --rebuild` (remove CHROMA_DIR first if the embedded store is damaged)"
)
NEVER_BUILT = "the runbook index is empty or was never built: run `sre-triage ingest` (triage and /ask work without it)"


async def runbook_readiness(index: RunbookIndexLike) -> Degraded | None:
    """Readiness of the runbook index (:class:`tools.runbooks.index.RunbookIndex`); opens it, never embeds.

    Decision: an index that was never built, or holds nothing, is ready but degraded. Triage and /ask work without
    runbooks (reports just list none), so failing readiness would take a fresh install, and with it the webhook
    intake, out of service until someone runs ``sre-triage ingest``; ``/health`` shows it as degraded with that fix.
    An index that exists but cannot be opened (built with another embedding model, a corrupt store, a Chroma server
    that does not answer) raises :class:`NotReady`: every runbook search would fail, so it must be fixed, and the
    message says how.
    """
    try:
        chunks = await index.count()
    except SourceError as exc:
        # our own errors name the problem without secrets; the model-mismatch one carries the rebuild command
        message = str(exc.args[0]) if exc.args else type(exc).__name__
        hint = "" if "ingest --rebuild" in message else f"; {REBUILD_HINT}"
        raise NotReady(f"the runbook index cannot be opened: {message}{hint}") from exc
    except Exception as exc:  # Chroma raises sqlite, OS and its own errors on a damaged store
        raise NotReady(f"the runbook index cannot be opened ({type(exc).__name__}); {REBUILD_HINT}") from exc
    if chunks == 0:
        return Degraded(NEVER_BUILT)
    return None


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def probe_extra(check: ReadyCheck) -> Check:
    """A registered component check: unhealthy when it raises, degraded when it returns :class:`Degraded`."""
    try:
        outcome = await check()
    except NotReady as exc:
        return Check("unhealthy", str(exc))
    except Exception as exc:  # a component's own check may fail in any way; the name of the failure is the answer
        return Check("unhealthy", f"not ready ({type(exc).__name__})")
    if isinstance(outcome, Degraded):
        return Check("degraded", outcome.reason)
    return Check("healthy")


@router.get("/readyz", summary="Redis, the report store and every registered component answer")
async def readyz(request: Request) -> JSONResponse:
    extra: dict[str, ReadyCheck] = getattr(request.app.state, "ready_checks", {})
    results = dict(
        await asyncio.gather(
            _timed("redis", probe_redis(request)),
            _timed("store", probe_store(request.app.state.store)),
            *(_timed(name, probe_extra(check)) for name, check in extra.items()),
        )
    )
    # degraded components still do their work: they show in /health, they do not take the API out of service
    failed = [name for name, check in results.items() if check.status == "unhealthy"]
    checks = {name: check.as_json() for name, check in results.items()}
    if failed:
        body = error_body(503, "not_ready", "not ready: " + ", ".join(f"{n} {results[n].detail}" for n in failed))
        return JSONResponse({**body, "checks": checks}, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})


@dataclass
class _HealthCache:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    at: float = float("-inf")
    answer: tuple[dict[str, Any], int] | None = None


@router.get("/health", summary="Status of every configured dependency (cached for a few seconds)")
async def health(request: Request) -> JSONResponse:
    # /health needs no authentication and probes every upstream: its answer is reused for API_HEALTH_CACHE_S, and
    # calls that arrive while it is computed wait for that one, so a flood of calls costs one round of probes
    settings: Settings = request.app.state.settings
    cache: _HealthCache | None = getattr(request.app.state, "health_cache", None)
    if cache is None:
        cache = request.app.state.health_cache = _HealthCache()
    async with cache.lock:
        if cache.answer is None or time.monotonic() - cache.at >= settings.api.api_health_cache_s:
            cache.answer = await _health(request)
            cache.at = time.monotonic()
        body, status = cache.answer
    return JSONResponse(body, status_code=status)


async def _health(request: Request) -> tuple[dict[str, Any], int]:
    settings: Settings = request.app.state.settings
    probes = [
        _timed("redis", probe_redis(request)),
        _timed("store", probe_store(request.app.state.store)),
        _timed("worker", probe_worker(request)),
    ]
    for name, url in source_probes(settings).items():
        group = SOURCE_BY_NAME[name].group(settings)
        probes.append(_timed(name, probe_http(url, verify=tls_verify(group.verify_tls, group.ca_file))))
    if settings.llm.openai_base_url:
        probes.append(_timed("llm", probe_http(settings.llm.openai_base_url.rstrip("/") + "/models", verify=True)))
    extra: dict[str, ReadyCheck] = getattr(request.app.state, "ready_checks", {})
    probes.extend(_timed(name, probe_extra(check)) for name, check in extra.items())
    results = dict(await asyncio.gather(*probes))
    overall: Status = max((c.status for c in results.values()), key=lambda s: _RANK[s], default="healthy")
    body = {"status": overall, "dependencies": {name: check.as_json() for name, check in results.items()}}
    return body, 503 if overall == "unhealthy" else 200


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    text, content_type = await request.app.state.metrics.render(request.app.state.arq)
    return Response(text, media_type=content_type)
