"""The SQLite report store: one file, WAL journal, one writer path.

The API process and the worker process may both open the file. WAL lets readers run while one connection writes;
inside a process an asyncio lock serialises writes on the single write connection, and ``busy_timeout`` waits out
the other process's write instead of failing with "database is locked".

Timestamps are stored as fixed-width UTC ISO-8601 text, so text order is time order.
"""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from reports.models import Alert, Report, ReportStatus, utcnow
from reports.store import StoreError
from reports.store._rows import Filters, from_body, like_pattern, received_report, search_words, to_row, utc

BUSY_TIMEOUT_MS = 10_000

# Each entry is one schema version; a database records the versions it has applied.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS reports (
                id TEXT PRIMARY KEY,
                fingerprint TEXT NOT NULL,
                alertname TEXT NOT NULL,
                status TEXT NOT NULL,
                starts_at TEXT NOT NULL,
                created_at TEXT NOT NULL,
                body TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS reports_alertname ON reports (alertname, starts_at)",
        ],
    ),
    (
        2,
        [
            "ALTER TABLE reports ADD COLUMN updated_at TEXT",
            "ALTER TABLE reports ADD COLUMN group_id TEXT",
            "ALTER TABLE reports ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE reports ADD COLUMN search_text TEXT NOT NULL DEFAULT ''",
            "UPDATE reports SET updated_at = created_at WHERE updated_at IS NULL",
            """UPDATE reports SET
                 group_id = json_extract(body, '$.group_id'),
                 search_text = lower(alertname || ' ' || coalesce(json_extract(body, '$.summary'), ''))""",
            "CREATE INDEX IF NOT EXISTS reports_fingerprint ON reports (fingerprint, starts_at)",
            "CREATE INDEX IF NOT EXISTS reports_starts_at ON reports (starts_at)",
            "CREATE INDEX IF NOT EXISTS reports_created_at ON reports (created_at)",
            "CREATE INDEX IF NOT EXISTS reports_status ON reports (status, starts_at)",
            "CREATE INDEX IF NOT EXISTS reports_group ON reports (group_id)",
        ],
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

_COLUMNS = (
    "id, fingerprint, alertname, status, starts_at, created_at, updated_at, group_id, schema_version, search_text, body"
)


def _ts(value: datetime) -> str:
    return utc(value).isoformat(timespec="microseconds")


def _where(filters: Filters) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.alertname:
        clauses.append("alertname = ?")
        params.append(filters.alertname)
    if filters.status:
        clauses.append("status = ?")
        params.append(ReportStatus(filters.status).value)
    if filters.since:
        clauses.append("starts_at >= ?")
        params.append(_ts(filters.since))
    if filters.until:
        clauses.append("starts_at < ?")
        params.append(_ts(filters.until))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class SqliteStore:
    """Reports in a SQLite file. ``path`` may not exist yet; its parent folders are created."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        await self._pragma(conn, f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    @staticmethod
    async def _pragma(conn: aiosqlite.Connection, statement: str) -> None:
        # A PRAGMA that answers a row keeps a read transaction open until its cursor is drained and closed; an
        # open read transaction pins an old snapshot, so this connection would stop seeing other writers.
        async with conn.execute(statement) as cur:
            await cur.fetchall()

    async def init(self) -> None:
        """Open the file (creating it and its folder), switch to WAL and apply pending migrations."""
        if self._writer is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            writer = await self._connect()
            try:
                await self._pragma(writer, "PRAGMA journal_mode = WAL")
                await self._pragma(writer, "PRAGMA synchronous = NORMAL")
                await self._migrate(writer)
                reader = await self._connect()
            except BaseException:
                await writer.close()
                raise
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the report store at {self.path}: {exc}") from exc
        self._writer, self._reader = writer, reader

    @staticmethod
    async def _migrate(conn: aiosqlite.Connection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        # IMMEDIATE takes the write lock first, so two processes starting together apply each version once.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            async with conn.execute("SELECT version FROM schema_migrations") as cur:
                applied = {int(row[0]) for row in await cur.fetchall()}
            for version, statements in MIGRATIONS:
                if version in applied:
                    continue
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (version, _ts(utcnow()))
                )
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    def _conns(self) -> tuple[aiosqlite.Connection, aiosqlite.Connection]:
        if self._writer is None or self._reader is None:
            raise StoreError("the report store is not open (call init() first)")
        return self._writer, self._reader

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        _, reader = self._conns()
        try:
            # One call on the connection's thread: a cursor left open between two awaits would hold a read
            # transaction, and every other read sharing this connection would see its stale snapshot.
            return list(await reader.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"report store read failed: {exc}") from exc

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        writer, _ = self._conns()
        async with self._write_lock:
            try:
                cur = await writer.execute(sql, params)
                count = cur.rowcount
                await cur.close()
                return count
            except sqlite3.Error as exc:
                raise StoreError(f"report store write failed: {exc}") from exc

    async def ping(self) -> None:
        await self._fetch("SELECT 1")

    async def schema_version(self) -> int:
        """The highest migration this database has applied."""
        rows = await self._fetch("SELECT max(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

    @staticmethod
    def _params(report: Report) -> tuple[Any, ...]:
        row = to_row(report)
        return (
            row.id,
            row.fingerprint,
            row.alertname,
            row.status,
            _ts(row.starts_at),
            _ts(row.created_at),
            _ts(row.updated_at),
            row.group_id,
            row.schema_version,
            row.search_text,
            row.body,
        )

    async def record_alert(self, alert: Alert) -> Report:
        params = self._params(received_report(alert))
        await self._write(
            f"INSERT INTO reports ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING", params
        )
        report = await self.get(alert.occurrence_key)
        if report is None:  # deleted by a concurrent purge between the two statements
            raise StoreError(f"report {alert.occurrence_key} vanished while it was recorded")
        return report

    async def save(self, report: Report) -> None:
        await self._write(
            f"INSERT INTO reports ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET fingerprint = excluded.fingerprint, alertname = excluded.alertname, "
            "status = excluded.status, starts_at = excluded.starts_at, updated_at = excluded.updated_at, "
            "group_id = excluded.group_id, schema_version = excluded.schema_version, "
            "search_text = excluded.search_text, body = excluded.body",
            self._params(report),
        )

    async def get(self, report_id: str) -> Report | None:
        rows = await self._fetch("SELECT id, body FROM reports WHERE id = ?", (report_id,))
        return from_body(rows[0][1], rows[0][0]) if rows else None

    async def list(
        self,
        *,
        alertname: str | None = None,
        status: ReportStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Report]:
        where, params = _where(Filters(alertname, status, since, until))
        rows = await self._fetch(
            f"SELECT id, body FROM reports{where} ORDER BY starts_at DESC, id LIMIT ? OFFSET ?",
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
    ) -> int:
        where, params = _where(Filters(alertname, status, since, until))
        rows = await self._fetch(f"SELECT count(*) FROM reports{where}", params)
        return int(rows[0][0])

    async def history(
        self, *, fingerprint: str, alertname: str, since: datetime, exclude_id: str | None = None
    ) -> builtins.list[Report]:
        rows = await self._fetch(
            "SELECT id, body FROM reports WHERE (fingerprint = ? OR alertname = ?) AND starts_at >= ? AND id != ? "
            "ORDER BY starts_at DESC, id LIMIT 500",
            (fingerprint, alertname, _ts(since), exclude_id or ""),
        )
        return [from_body(body, rid) for rid, body in rows]

    async def search(self, text: str, *, limit: int = 10) -> builtins.list[Report]:
        words = search_words(text)
        if not words:
            return []
        where = " AND ".join("search_text LIKE ? ESCAPE '!'" for _ in words)
        rows = await self._fetch(
            f"SELECT id, body FROM reports WHERE {where} ORDER BY starts_at DESC, id LIMIT ?",
            [*(like_pattern(w) for w in words), max(0, limit)],
        )
        return [from_body(body, rid) for rid, body in rows]

    async def purge(self, *, older_than_days: int, keep_count: int) -> int:
        deleted = 0
        if older_than_days > 0:
            cutoff = _ts(datetime.now(UTC) - timedelta(days=older_than_days))
            deleted += await self._write("DELETE FROM reports WHERE created_at < ?", (cutoff,))
        if keep_count > 0:
            deleted += await self._write(
                "DELETE FROM reports WHERE id NOT IN (SELECT id FROM reports ORDER BY created_at DESC, id LIMIT ?)",
                (keep_count,),
            )
        return deleted
