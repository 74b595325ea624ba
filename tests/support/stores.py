"""Report-store fixtures shared by the store tests: both backends through one parametrized fixture."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reports.models import Alert, AlertStatus, Report
from reports.store.postgres import PostgresStore
from reports.store.sqlite import SqliteStore

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

StoreFactory = Callable[[], Awaitable[Any]]


def postgres_unreachable_reason() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {PG_URL} ({type(exc).__name__}); set TEST_POSTGRES_URL"
    return None


def make_alert(n: int = 0, *, alertname: str = "HostHighCpu", fingerprint: str | None = None, **extra: Any) -> Alert:
    return Alert(
        fingerprint=fingerprint or f"fp{n:04d}",
        alertname=alertname,
        status=AlertStatus.firing,
        labels={"alertname": alertname, "instance": f"pve{n % 3}:9100", "severity": "warning"},
        annotations={"summary": f"CPU high on pve{n % 3}"},
        starts_at=T0 + timedelta(minutes=n),
        **extra,
    )


def make_report(n: int = 0, **fields: Any) -> Report:
    alert = fields.pop("alert", None) or make_alert(n)
    return Report(id=alert.occurrence_key, alert=alert, **fields)


@pytest.fixture(params=["sqlite", "postgres"])
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Factory of opened stores on ONE database (call twice to reopen it). Closed and dropped afterwards."""
    opened: list[Any] = []
    schema = f"t_{uuid.uuid4().hex[:12]}"
    if request.param == "postgres":
        reason = postgres_unreachable_reason()
        if reason:
            pytest.skip(reason)

    async def factory() -> Any:
        store: Any
        if request.param == "sqlite":
            store = SqliteStore(tmp_path / "nested" / "dir" / "reports.db")
        else:
            store = PostgresStore(PG_URL, schema=schema)
        await store.init()
        opened.append(store)
        return store

    try:
        yield factory
    finally:
        for store in opened:
            await store.close()
        if request.param == "postgres" and opened:
            await opened[0].drop_schema()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Any:
    return await store_factory()
