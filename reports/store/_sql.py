"""The report queries both SQL backends run: the same statements, differing only in the parameter placeholder and in
how a timestamp or a body is handed to the driver.

A backend supplies ``_fetch`` and ``_write`` (one statement each, driver errors translated to StoreError), its
``placeholder`` (``?`` for SQLite, ``%s`` for psycopg), and the ``_time``/``_body`` conversions; the schema and its
migrations stay with the backend, since their DDL is dialect-specific.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

from reports.models import Alert, Report, ReportStatus
from reports.store import StoreError
from reports.store._rows import Filters, from_body, like_pattern, received_report, search_words, to_row
from reports.targets import TARGET_LABELS

COLUMNS: LiteralString = (
    "id, fingerprint, alertname, status, starts_at, created_at, updated_at, group_id, schema_version, search_text, body"
)
_UPSERT: LiteralString = (
    " ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, alertname = excluded.alertname, "
    "status = excluded.status, starts_at = excluded.starts_at, updated_at = excluded.updated_at, "
    "group_id = excluded.group_id, schema_version = excluded.schema_version, "
    "search_text = excluded.search_text, body = excluded.body"
)


class SqlReportStore(ABC):
    """The ReportStore operations over a ``reports`` table with the columns in :data:`COLUMNS`."""

    placeholder: LiteralString = "?"

    @abstractmethod
    async def _fetch(self, query: LiteralString, params: Sequence[Any] = ()) -> builtins.list[Sequence[Any]]:
        """Run one read and return every row."""

    @abstractmethod
    async def _write(self, query: LiteralString, params: Sequence[Any] = ()) -> int:
        """Run one write and return the number of rows it changed."""

    def _time(self, value: datetime) -> Any:
        """A timestamp as the driver takes it for a ``starts_at``/``created_at`` comparison or column."""
        return value

    def _body(self, body: str) -> Any:
        """The report JSON as the driver takes it for the ``body`` column."""
        return body

    def _label(self, key: LiteralString) -> LiteralString:
        """SQL reading the alert label ``key`` from the stored body (SQLite's JSON1; PostgreSQL overrides)."""
        return "json_extract(body, '$.alert.labels." + key + "')"

    def _values(self, count: int) -> LiteralString:
        return ", ".join([self.placeholder] * count)

    def _where(self, filters: Filters) -> tuple[LiteralString, builtins.list[Any]]:
        p = self.placeholder
        clauses: builtins.list[LiteralString] = []
        params: builtins.list[Any] = []
        if filters.alertname:
            clauses.append("alertname = " + p)
            params.append(filters.alertname)
        if filters.status:
            clauses.append("status = " + p)
            params.append(ReportStatus(filters.status).value)
        if filters.since:
            clauses.append("starts_at >= " + p)
            params.append(self._time(filters.since))
        if filters.until:
            clauses.append("starts_at < " + p)
            params.append(self._time(filters.until))
        if filters.severity:
            clauses.append("lower(" + self._label("severity") + ") = " + p)
            params.append(filters.severity.strip().lower())
        if filters.target:
            # a label starting with the text (``pve1`` finds ``pve1:9100``, ``pve1.lan``); labels are not indexed
            # columns, so this reads the bodies, which is fine for a homelab's report count
            pattern = like_pattern(filters.target.strip().lower()).removeprefix("%")
            matches = ["lower(" + self._label(key) + ") LIKE " + p + " ESCAPE '!'" for key in TARGET_LABELS]
            clauses.append("(" + " OR ".join(matches) + ")")
            params.extend([pattern] * len(TARGET_LABELS))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def _params(self, report: Report) -> tuple[Any, ...]:
        row = to_row(report)
        return (
            row.id,
            row.fingerprint,
            row.alertname,
            row.status,
            self._time(row.starts_at),
            self._time(row.created_at),
            self._time(row.updated_at),
            row.group_id,
            row.schema_version,
            row.search_text,
            self._body(row.body),
        )

    def _insert(self) -> LiteralString:
        return "INSERT INTO reports (" + COLUMNS + ") VALUES (" + self._values(11) + ")"

    async def ping(self) -> None:
        """Raise StoreError when the store cannot answer (readiness)."""
        await self._fetch("SELECT 1")

    async def schema_version(self) -> int:
        """The highest migration this database has applied."""
        rows = await self._fetch("SELECT max(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

    async def record_alert(self, alert: Alert) -> Report:
        """Store a received alert as a ``received`` report, or return the existing report of that occurrence."""
        await self._write(self._insert() + " ON CONFLICT (id) DO NOTHING", self._params(received_report(alert)))
        report = await self.get(alert.occurrence_key)
        if report is None:  # deleted by a concurrent purge between the two statements
            raise StoreError(f"report {alert.occurrence_key} vanished while it was recorded")
        return report

    async def save(self, report: Report) -> None:
        """Insert or replace a report by id (secrets are redacted before it is written)."""
        await self._write(self._insert() + _UPSERT, self._params(report))

    async def get(self, report_id: str) -> Report | None:
        """The report with this id, or None."""
        rows = await self._fetch("SELECT id, body FROM reports WHERE id = " + self.placeholder, (report_id,))
        return from_body(rows[0][1], rows[0][0]) if rows else None

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
    ) -> builtins.list[Report]:
        """Reports, newest first, filtered."""
        where, params = self._where(Filters(alertname, status, since, until, severity, target))
        p = self.placeholder
        rows = await self._fetch(
            "SELECT id, body FROM reports" + where + " ORDER BY starts_at DESC, id LIMIT " + p + " OFFSET " + p,
            [*params, max(0, limit), max(0, offset)],
        )
        return [from_body(body, rid) for rid, body in rows]

    async def count(
        self,
        *,
        alertname: str | None = None,
        status: ReportStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        severity: str | None = None,
        target: str | None = None,
    ) -> int:
        """How many reports match the filters."""
        where, params = self._where(Filters(alertname, status, since, until, severity, target))
        rows = await self._fetch("SELECT count(*) FROM reports" + where, params)
        return int(rows[0][0])

    async def history(
        self, *, fingerprint: str, alertname: str, since: datetime, exclude_id: str | None = None
    ) -> builtins.list[Report]:
        """Earlier reports of the same alert (same fingerprint, or same alertname), newest first."""
        p = self.placeholder
        rows = await self._fetch(
            "SELECT id, body FROM reports WHERE (fingerprint = " + p + " OR alertname = " + p + ") "
            "AND starts_at >= " + p + " AND id <> " + p + " ORDER BY starts_at DESC, id LIMIT 500",
            (fingerprint, alertname, self._time(since), exclude_id or ""),
        )
        return [from_body(body, rid) for rid, body in rows]

    async def search(self, text: str, *, limit: int = 10) -> builtins.list[Report]:
        """Reports whose alert name, labels or summary contain the words of ``text``, newest first."""
        words = search_words(text)
        if not words:
            return []
        p = self.placeholder
        where: LiteralString = " AND ".join(["search_text LIKE " + p + " ESCAPE '!'"] * len(words))
        rows = await self._fetch(
            "SELECT id, body FROM reports WHERE " + where + " ORDER BY starts_at DESC, id LIMIT " + p,
            [*(like_pattern(w) for w in words), max(0, limit)],
        )
        return [from_body(body, rid) for rid, body in rows]

    async def purge(self, *, older_than_days: int, keep_count: int) -> int:
        """Apply retention; return how many reports were deleted."""
        p = self.placeholder
        deleted = 0
        if older_than_days > 0:
            cutoff = self._time(datetime.now(UTC) - timedelta(days=older_than_days))
            deleted += await self._write("DELETE FROM reports WHERE created_at < " + p, (cutoff,))
        if keep_count > 0:
            deleted += await self._write(
                "DELETE FROM reports WHERE id NOT IN "
                "(SELECT id FROM reports ORDER BY created_at DESC, id LIMIT " + p + ")",
                (keep_count,),
            )
        return deleted
