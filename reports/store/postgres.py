"""The PostgreSQL report store, for several API/worker hosts sharing one database.

A small ``psycopg_pool.AsyncConnectionPool``; every statement runs in its own short transaction. Migrations run under
a transaction-level advisory lock so hosts starting together apply each version exactly once. ``schema`` (a
PostgreSQL schema name) isolates one installation, or one test run, from another in the same database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from reports.store import StoreError
from reports.store._sql import SqlReportStore
from tools.http import strip_userinfo

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


class PostgresStore(SqlReportStore):
    """Reports in PostgreSQL. ``schema`` defaults to the connection's search path (normally ``public``)."""

    placeholder: LiteralString = "%s"

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
            raise StoreError(f"cannot connect to the report store at {strip_userinfo(self.url)}: {exc}") from exc
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

    async def _fetch(self, query: LiteralString, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        try:
            async with self._conn() as conn:
                cur = await conn.execute(query, params)
                return list(await cur.fetchall())
        except psycopg.Error as exc:
            raise StoreError(f"report store read failed: {type(exc).__name__}: {exc}") from exc

    async def _write(self, query: LiteralString, params: Sequence[Any] = ()) -> int:
        try:
            async with self._conn() as conn:
                cur = await conn.execute(query, params)
                return int(cur.rowcount)
        except psycopg.Error as exc:
            raise StoreError(f"report store write failed: {type(exc).__name__}: {exc}") from exc

    def _label(self, key: LiteralString) -> LiteralString:
        return "(body->'alert'->'labels'->>'" + key + "')"

    def _body(self, body: str) -> Jsonb:
        # PostgreSQL text cannot hold NUL; JSON escapes it, so the body goes in as JSON text.
        return Jsonb(body, dumps=lambda s: s)
