"""``POST /webhook/grafana`` (or PUT) and ``POST /webhook/alertmanager``: authenticate, read, parse, normalise, enqueue.

The order matters. Header credentials are checked before the body is read, so an unauthenticated sender cannot make
us buffer anything; the body is read as a stream and abandoned as soon as it passes the limit; the HMAC signature
(which covers the raw bytes) is checked before the JSON is parsed.

Each alert becomes one arq job whose id is the dedup key (:func:`triage.worker.queue.job_for`): a second job with an id
that is queued, running or whose result is still kept is refused (:class:`triage.worker.queue.UniqueEnqueuer`, arq's
rule in one round trip), and that is a duplicate. Any Redis failure answers 503, so the sender retries; alerts
already enqueued by the failed attempt are duplicates on the retry, none is lost and none is triaged twice.

Grafana's contact-point test alert (:mod:`reports.sender_check`) is not enqueued: it is stored as a short ``test``
report and named in the answer (``tests``), so pressing "Test" shows end to end that the contact point reaches us.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from reports.models import Alert, Report
from reports.payloads import Notification, PayloadError, Source, normalise, parse_payload_json
from reports.sender_check import is_test_alert, receipt_report
from reports.store import ReportStore, StoreError
from tools.numbers import ascii_int
from triage.worker.queue import UniqueEnqueuer, job_for
from webhook.auth import WebhookAuth
from webhook.errors import ApiError, InvalidPayload, PayloadTooLarge, ServiceUnavailable, UnsupportedMediaType
from webhook.metrics import IntakeMetrics

log = logging.getLogger("webhook.intake")
router = APIRouter()


@dataclass(frozen=True)
class Enqueued:
    job_id: str
    alert: Alert
    duplicate: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.job_id,
            "fingerprint": self.alert.fingerprint,
            "alertname": self.alert.alertname,
            "status": self.alert.status.value,
            "duplicate": self.duplicate,
        }


def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        shown = media[:60] or "none"
        raise UnsupportedMediaType(f"Content-Type must be application/json (got {shown})")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing it as soon as it is known to be over ``limit`` bytes (before or while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        size = ascii_int(declared.strip(), max_digits=18)
        if size is None:
            raise InvalidPayload("Content-Length is not a number")
        if size > limit:
            raise PayloadTooLarge(f"the body is {size} bytes; the limit is {limit} (WEBHOOK_MAX_BODY_BYTES)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes (WEBHOOK_MAX_BODY_BYTES)")
    return bytes(body)


def parse_body(source: Source, body: bytes) -> Notification:
    """The validated notification; :class:`InvalidPayload` naming the problem (not JSON, or which field)."""
    if not body.strip():
        raise InvalidPayload("the body is empty; expected a JSON notification")
    try:
        return parse_payload_json(source, body)
    except PayloadError as exc:
        if exc.not_json:
            raise InvalidPayload(str(exc)) from None
        raise InvalidPayload(f"not a valid {source} notification: {exc}") from None


async def enqueue_alert(queue: UniqueEnqueuer, alert: Alert) -> Enqueued:
    function, job_id = job_for(alert)
    added = await queue.enqueue(function, alert.model_dump_json().encode(), job_id)
    return Enqueued(job_id=job_id, alert=alert, duplicate=not added)


async def enqueue_all(queue: UniqueEnqueuer, alerts: list[Alert]) -> list[Enqueued]:
    """Enqueue every alert; raise :class:`ServiceUnavailable` unless each is enqueued or a known duplicate."""
    # each Redis call is bounded by the pool's connect and socket timeouts (triage.worker.queue), so this cannot hang
    results: list[Enqueued | BaseException]
    if len(alerts) == 1:
        # the common case: no task per alert
        results = [await _attempt(queue, alerts[0])]
    else:
        results = await asyncio.gather(*(enqueue_alert(queue, a) for a in alerts), return_exceptions=True)
    done: list[Enqueued] = []
    for result in results:
        if isinstance(result, TimeoutError):
            raise ServiceUnavailable("the job queue (Redis) did not answer in time; retry later") from result
        if isinstance(result, RedisError | OSError):
            raise ServiceUnavailable("the job queue (Redis) is unavailable; retry later") from result
        if isinstance(result, BaseException):
            raise result
        done.append(result)
    return done


async def receive(request: Request, source: Source) -> JSONResponse:
    state = request.app.state
    metrics: IntakeMetrics = state.metrics
    started = time.perf_counter()
    receiver: str | None = None
    try:
        auth: WebhookAuth = state.webhook_auth
        auth.check_headers(request.headers)
        require_json(request)
        body = await read_body(request, state.settings.webhook.max_body_bytes)
        auth.check_body(request.headers, body)
        payload = parse_body(source, body)
        receiver = payload.receiver
        alerts, tests = split_tests(source, payload, normalise(source, payload))
        receipts = await store_receipts(getattr(state, "store", None), tests)
        try:
            results = await enqueue_all(state.enqueuer, alerts) if alerts else []
        except ServiceUnavailable:
            metrics.enqueue_failed(source)
            raise
    except ApiError as exc:
        metrics.notification(source, receiver, exc.code)
        log.warning(
            "notification refused",
            extra={
                "source": source,
                "status": exc.status,
                "code": exc.code,
                "reason": exc.message,
                "duration_ms": _ms_since(started),
            },
        )
        raise
    finally:
        metrics.intake_time(source, time.perf_counter() - started)
    return _accepted(metrics, source, receiver, payload.truncated_alerts, results, started, receipts)


def split_tests(source: Source, payload: Notification, alerts: list[Alert]) -> tuple[list[Alert], list[Alert]]:
    """The alerts to triage, and Grafana's contact-point test alerts (answered with a receipt, never triaged)."""
    if source != "grafana":
        return alerts, []
    kept: list[Alert] = []
    tests: list[Alert] = []
    for item, alert in zip(payload.alerts, alerts, strict=True):
        (tests if is_test_alert(item) else kept).append(alert)
    return kept, tests


async def store_receipts(store: ReportStore | None, tests: list[Alert]) -> list[Report]:
    """Store the short "test received" report of each test alert; 503 when the store cannot take it."""
    if not tests:
        return []
    if store is None:
        raise ServiceUnavailable("the report store is starting or stopping; retry in a moment")
    receipts = [receipt_report(alert) for alert in tests]
    try:
        for receipt in receipts:
            await store.save(receipt)
    except StoreError as exc:
        raise ServiceUnavailable("the report store is unavailable; retry later") from exc
    return receipts


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def _attempt(queue: UniqueEnqueuer, alert: Alert) -> Enqueued | BaseException:
    try:
        return await enqueue_alert(queue, alert)
    except (RedisError, OSError, TimeoutError) as exc:
        return exc


def _accepted(
    metrics: IntakeMetrics,
    source: Source,
    receiver: str | None,
    truncated: int,
    results: list[Enqueued],
    started: float,
    receipts: list[Report],
) -> JSONResponse:
    duplicates = sum(1 for r in results if r.duplicate)
    accepted = len(results) - duplicates
    metrics.notification(source, receiver, "accepted")
    if accepted:
        metrics.alerts_seen(source, "accepted", accepted)
    if duplicates:
        metrics.alerts_seen(source, "duplicate", duplicates)
    jobs = [r.as_json() for r in results]
    if log.isEnabledFor(logging.INFO):
        log.info(
            "notification accepted",
            extra={
                "source": source,
                "accepted": accepted,
                "duplicates": duplicates,
                "truncated_alerts": truncated,
                "duration_ms": _ms_since(started),
                "jobs": [
                    {"job_id": j["id"], "fingerprint": j["fingerprint"], "duplicate": j["duplicate"]} for j in jobs
                ],
            },
        )
    body: dict[str, Any] = {"accepted": accepted, "duplicates": duplicates, "jobs": jobs}
    if receipts:
        log.info("test notification received", extra={"source": source, "reports": [r.id for r in receipts]})
        body["tests"] = [{"report_id": r.id, "url": f"/reports/{r.id}"} for r in receipts]
    if truncated:
        # the sender dropped alerts to respect its max_alerts; say so rather than pretend we saw everything
        body["truncated_alerts"] = truncated
    return JSONResponse(body, status_code=202)


async def grafana_webhook(request: Request) -> JSONResponse:
    """Grafana unified alerting webhook (payload version 1); POST, or PUT when the contact point is set to PUT."""
    return await receive(request, "grafana")


async def alertmanager_webhook(request: Request) -> JSONResponse:
    """Alertmanager webhook (payload version 4)."""
    return await receive(request, "alertmanager")


# Plain Starlette routes: the handlers read the raw body themselves (auth covers the bytes), so FastAPI's
# per-request dependency and body machinery would only add latency on the hottest path.
router.add_route("/webhook/grafana", grafana_webhook, methods=["POST", "PUT"], include_in_schema=False)
router.add_route("/webhook/alertmanager", alertmanager_webhook, methods=["POST"], include_in_schema=False)
