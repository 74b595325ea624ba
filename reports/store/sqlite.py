"""The SQLite report store: one file, WAL journal, one writer path.

The API process and the worker process may both open the file. WAL lets readers run while one connection writes;
inside a process an asyncio lock serialises writes on the single write connection, and ``busy_timeout`` waits out
the other process's write instead of failing with "database is locked".

Timestamps are stored as fixed-width UTC ISO-8601 text, so text order is time order.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from reports.models import utcnow
from reports.store import StoreError
from reports.store._rows import utc
from reports.store._sql import SqlReportStore

BUSY_TIMEOUT_MS = 10_000
# Readiness: below this much free space on the store's filesystem a write (a WAL frame, a grown -shm) will fail.
MIN_FREE_BYTES = 1024 * 1024

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


def _ts(value: datetime) -> str:
    return utc(value).isoformat(timespec="microseconds")


class SqliteStore(SqlReportStore):
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

    async def ping(self) -> None:
        """Raise StoreError when the store cannot answer a read, or could not take a write: its filesystem is
        read-only or (almost) full. Readiness runs in every process, so it looks at the file system, not at the
        last write this process made."""
        await super().ping()
        try:
            stats = await asyncio.to_thread(os.statvfs, self.path.parent)
        except OSError as exc:
            raise StoreError(f"cannot inspect the report store's folder: {exc}") from exc
        if stats.f_flag & os.ST_RDONLY:
            raise StoreError("the report store's filesystem is read-only")
        free = stats.f_bavail * stats.f_frsize
        if free < MIN_FREE_BYTES:
            raise StoreError(f"the report store's filesystem is full ({free} bytes free)")

    def _conns(self) -> tuple[aiosqlite.Connection, aiosqlite.Connection]:
        if self._writer is None or self._reader is None:
            raise StoreError("the report store is not open (call init() first)")
        return self._writer, self._reader

    async def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        _, reader = self._conns()
        try:
            # One call on the connection's thread: a cursor left open between two awaits would hold a read
            # transaction, and every other read sharing this connection would see its stale snapshot.
            return list(await reader.execute_fetchall(query, params))
        except sqlite3.Error as exc:
            raise StoreError(f"report store read failed: {exc}") from exc

    async def _write(self, query: str, params: Sequence[Any] = ()) -> int:
        writer, _ = self._conns()
        async with self._write_lock:
            try:
                cur = await writer.execute(query, params)
                count = cur.rowcount
                await cur.close()
                return count
            except sqlite3.Error as exc:
                raise StoreError(f"report store write failed: {exc}") from exc

    def _time(self, value: datetime) -> str:
        return _ts(value)
