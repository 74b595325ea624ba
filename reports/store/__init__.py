"""The report store: one interface, two backends (SQLite file by default, PostgreSQL via DATABASE_URL).

Writes are idempotent per alert occurrence: the report id is ``Alert.occurrence_key``.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Protocol

from reports.models import Alert, Report, ReportStatus


class StoreError(Exception):
    """The report store failed (cannot open, cannot write, corrupt row)."""


class ReportStore(Protocol):
    async def init(self) -> None:
        """Open connections and apply migrations."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreError when the store cannot answer (readiness)."""

    async def record_alert(self, alert: Alert) -> Report:
        """Store a received alert as a ``received`` report, or return the existing report of that occurrence."""

    async def save(self, report: Report) -> None:
        """Insert or replace a report by id (secrets are redacted before it is written)."""

    async def get(self, report_id: str) -> Report | None: ...

    async def list(
        self,
        *,
        alertname: str | None = None,
        status: ReportStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        severity: str | None = None,
        target: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Report]:
        """Reports, newest first, filtered (``target``: a host/node/guest/instance label starting with it)."""

    async def count(
        self,
        *,
        alertname: str | None = None,
        status: ReportStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        severity: str | None = None,
        target: str | None = None,
    ) -> int: ...

    async def history(
        self, *, fingerprint: str, alertname: str, since: datetime, exclude_id: str | None = None
    ) -> builtins.list[Report]:
        """Earlier reports of the same alert (same fingerprint, or same alertname), newest first."""

    async def search(self, text: str, *, limit: int = 10) -> builtins.list[Report]:
        """Reports whose alert name, labels or summary contain the words of ``text``, newest first."""

    async def purge(self, *, older_than_days: int, keep_count: int) -> int:
        """Apply retention; return how many reports were deleted."""


def open_store(database_url: str) -> ReportStore:
    """Build the store a DATABASE_URL names (not yet initialised: call ``await store.init()``)."""
    if database_url.startswith("sqlite:///"):
        from reports.store.sqlite import SqliteStore

        return SqliteStore(database_url.removeprefix("sqlite:///"))
    if database_url.startswith(("postgresql://", "postgres://")):
        from reports.store.postgres import PostgresStore

        return PostgresStore(database_url)
    raise StoreError(f"unsupported DATABASE_URL scheme: {database_url.split(':', 1)[0]}")
