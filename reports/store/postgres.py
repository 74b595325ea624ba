"""The PostgreSQL report store, for several API/worker hosts sharing one database.

A small ``psycopg_pool.AsyncConnectionPool``; every statement runs in its own short transaction. Migrations run under
a transaction-level advisory lock so hosts starting together apply each version exactly once. ``schema`` (a
PostgreSQL schema name) isolates one installation, or one test run, from another in the same database.
"""

from __future__ import annotations

import builtins
import re
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from reports.models import Alert, Report, ReportStatus
from reports.store import StoreError
from reports.store._rows import Filters, from_body, like_pattern, received_report, search_words, to_row

POOL_MIN = 1
POOL_MAX = 8
CONNECT_TIMEOUT_S = 10.0
# Arbitrary but fixed: the advisory lock id that serialises migrations of this store.
MIGRATION_LOCK_ID = 0x5E7E_7A6E

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

MIGRATIONS: list[tuple[int, list[LiteralString]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS reports (
                id TEXT PRIMARY KEY,
                fingerprint TEXT NOT NULL,
                alertname TEXT NOT NULL,
                status TEXT NOT NULL,
                starts_at TIMESTAMPTZ NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                body JSONB NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS reports_alertname ON reports (alertname, starts_at)",
        ],
    ),
    (
        2,
        [
            "ALTER TABLE reports ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ",
            "ALTER TABLE reports ADD COLUMN IF NOT EXISTS group_id TEXT",
            "ALTER TABLE reports ADD COLUMN IF NOT EXISTS schema_version INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE reports ADD COLUMN IF NOT EXISTS search_text TEXT NOT NULL DEFAULT ''",
            """UPDATE reports SET updated_at = coalesce(updated_at, created_at),
                 group_id = body->>'group_id',
                 search_text = lower(alertname || ' ' || coalesce(body->>'summary', ''))""",
            "ALTER TABLE reports ALTER COLUMN updated_at SET NOT NULL",
            "CREATE INDEX IF NOT EXISTS reports_fingerprint ON reports (fingerprint, starts_at)",
            "CREATE INDEX IF NOT EXISTS reports_starts_at ON reports (starts_at)",
            "CREATE INDEX IF NOT EXISTS reports_created_at ON reports (created_at)",
            "CREATE INDEX IF NOT EXISTS reports_status ON reports (status, starts_at)",
            "CREATE INDEX IF NOT EXISTS reports_group ON reports (group_id)",
        ],
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

_COLUMNS: LiteralString = (
    "id, fingerprint, alertname, status, starts_at, created_at, updated_at, group_id, schema_version, search_text, body"
)
_VALUES: LiteralString = "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s"


def _where(filters: Filters) -> tuple[LiteralString, list[Any]]:
    clauses: list[LiteralString] = []
    params: list[Any] = []
    if filters.alertname:
        clauses.append("alertname = %s")
        params.append(filters.alertname)
    if filters.status:
        clauses.append("status = %s")
        params.append(ReportStatus(filters.status).value)
    if filters.since:
        clauses.append("starts_at >= %s")
        params.append(filters.since)
    if filters.until:
        clauses.append("starts_at < %s")
        params.append(filters.until)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _safe_url(url: str) -> str:
    """The URL without its password, for error messages."""
    return re.sub(r"://([^/:@]*):[^/@]*@", r"://\1:***@", url)


class PostgresStore:
    """Reports in PostgreSQL. ``schema`` defaults to the connection's search path (normally ``public``)."""

    def __init__(self, url: str, *, schema: str | None = None, pool_max: int = POOL_MAX) -> None:
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise StoreError(f"invalid PostgreSQL schema name {schema!r}: use lower-case letters, digits, _")
        self.url = url
        self.schema = schema
        self._pool_max = pool_max
        self._pool: AsyncConnectionPool | None = None

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self.schema:
            await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            await conn.commit()

    async def init(self) -> None:
        """Open the pool and apply pending migrations (creating ``schema`` when given)."""
        if self._pool is not None:
            return
        try:
            if self.schema:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S)
                ) as conn:
                    await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            pool = AsyncConnectionPool(
                self.url,
                min_size=POOL_MIN,
                max_size=self._pool_max,
                configure=self._configure,
                timeout=CONNECT_TIMEOUT_S,
                open=False,
            )
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except (psycopg.Error, OSError) as exc:  # PoolTimeout is a psycopg.OperationalError
            raise StoreError(f"cannot connect to the report store at {_safe_url(self.url)}: {exc}") from exc
        self._pool = pool
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def _migrate(self) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ "
                "NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT version FROM schema_migrations")
            applied = {int(row[0]) for row in await cur.fetchall()}
            for version, statements in MIGRATIONS:
                if version in applied:
                    continue
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, now())", (version,))

    def _conn(self) -> Any:
        if self._pool is None:
            raise StoreError("the report store is not open (call init() first)")
        return self._pool.connection()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def drop_schema(self) -> None:
        """Drop ``schema`` and everything in it (tests; uninstall). Only for a store opened with a schema."""
        if not self.schema:
            raise StoreError("drop_schema needs a store opened with an explicit schema")
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))

    async def _fetch(self, query: LiteralString, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            async with self._conn() as conn:
                cur = await conn.execute(query, params)
                return list(await cur.fetchall())
        except psycopg.Error as exc:
            raise StoreError(f"report store read failed: {type(exc).__name__}: {exc}") from exc

    async def _write(self, query: LiteralString, params: list[Any] | tuple[Any, ...] = ()) -> int:
        try:
            async with self._conn() as conn:
                cur = await conn.execute(query, params)
                return int(cur.rowcount)
        except psycopg.Error as exc:
            raise StoreError(f"report store write failed: {type(exc).__name__}: {exc}") from exc

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
            row.starts_at,
            row.created_at,
            row.updated_at,
            row.group_id,
            row.schema_version,
            row.search_text,
            # PostgreSQL text cannot hold NUL; JSON escapes it, so the body goes in as JSON text.
            Jsonb(row.body, dumps=lambda s: s),
        )

    async def record_alert(self, alert: Alert) -> Report:
        await self._write(
            "INSERT INTO reports (" + _COLUMNS + ") VALUES (" + _VALUES + ") ON CONFLICT (id) DO NOTHING",
            self._params(received_report(alert)),
        )
        report = await self.get(alert.occurrence_key)
        if report is None:
            raise StoreError(f"report {alert.occurrence_key} vanished while it was recorded")
        return report

    async def save(self, report: Report) -> None:
        await self._write(
            "INSERT INTO reports (" + _COLUMNS + ") VALUES (" + _VALUES + ") "
            "ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, alertname = excluded.alertname, "
            "status = excluded.status, starts_at = excluded.starts_at, updated_at = excluded.updated_at, "
            "group_id = excluded.group_id, schema_version = excluded.schema_version, "
            "search_text = excluded.search_text, body = excluded.body",
            self._params(report),
        )

    async def get(self, report_id: str) -> Report | None:
        rows = await self._fetch("SELECT id, body FROM reports WHERE id = %s", (report_id,))
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
    ) -> builtins.list[Report]:
        where, params = _where(Filters(alertname, status, since, until))
        rows = await self._fetch(
            "SELECT id, body FROM reports" + where + " ORDER BY starts_at DESC, id LIMIT %s OFFSET %s",
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
        rows = await self._fetch("SELECT count(*) FROM reports" + where, params)
        return int(rows[0][0])

    async def history(
        self, *, fingerprint: str, alertname: str, since: datetime, exclude_id: str | None = None
    ) -> builtins.list[Report]:
        rows = await self._fetch(
            "SELECT id, body FROM reports WHERE (fingerprint = %s OR alertname = %s) AND starts_at >= %s "
            "AND id <> %s ORDER BY starts_at DESC, id LIMIT 500",
            (fingerprint, alertname, since, exclude_id or ""),
        )
        return [from_body(body, rid) for rid, body in rows]

    async def search(self, text: str, *, limit: int = 10) -> builtins.list[Report]:
        words = search_words(text)
        if not words:
            return []
        where: LiteralString = " AND ".join(["search_text LIKE %s ESCAPE '!'"] * len(words))
        rows = await self._fetch(
            "SELECT id, body FROM reports WHERE " + where + " ORDER BY starts_at DESC, id LIMIT %s",
            [*(like_pattern(w) for w in words), max(0, limit)],
        )
        return [from_body(body, rid) for rid, body in rows]

    async def purge(self, *, older_than_days: int, keep_count: int) -> int:
        deleted = 0
        if older_than_days > 0:
            cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
            deleted += await self._write("DELETE FROM reports WHERE created_at < %s", (cutoff,))
        if keep_count > 0:
            deleted += await self._write(
                "DELETE FROM reports WHERE id NOT IN (SELECT id FROM reports ORDER BY created_at DESC, id LIMIT %s)",
                (keep_count,),
            )
        return deleted
