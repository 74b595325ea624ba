"""Helpers for the intake tests: the app in-process, notification bodies, signatures, arq job inspection."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from triage.constants import QUEUE_NAME
from triage.settings import Settings
from webhook.app import Routers, create_app, intake_routers

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads"
TOKEN = "test-webhook-token"


def load_payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    return data


@asynccontextmanager
async def api(
    settings: Settings, *, routers: Routers = intake_routers
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app (intake routes unless told otherwise) with its lifespan running, and an in-process client."""
    app = create_app(settings, routers=routers)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    signed = body if timestamp is None else timestamp.encode() + b":" + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def grafana_alert(
    name: str = "HighCPU",
    *,
    status: str = "firing",
    fingerprint: str | None = "fp-1",
    starts_at: str = "2026-11-26T10:00:00Z",
    ends_at: str = "0001-01-01T00:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "status": status,
        "labels": {"alertname": name, "instance": "pve1:9100", **labels},
        "annotations": {"summary": f"{name} on pve1"},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://grafana.local/alerting/grafana/abc/view",
        "values": {"A": 97.5},
    }
    if fingerprint is not None:
        alert["fingerprint"] = fingerprint
    return alert


def grafana_notification(*alerts: dict[str, Any], **fields: Any) -> dict[str, Any]:
    items = list(alerts) if alerts else [grafana_alert()]
    body = {
        "receiver": "sre-triage",
        "status": "resolved" if all(a["status"] == "resolved" for a in items) else "firing",
        "orgId": 1,
        "alerts": copy.deepcopy(items),
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://grafana.local/",
        "version": "1",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
    }
    body.update(fields)
    return body


async def queued_job_ids(redis: Any) -> list[str]:
    raw = await redis.zrange(QUEUE_NAME, 0, -1)
    return sorted(r.decode() if isinstance(r, bytes) else r for r in raw)
