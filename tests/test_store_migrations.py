"""A database written by the previous release (schema version 1, report bodies of model version 0) opens migrated."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from reports.models import SCHEMA_VERSION, ReportStatus
from reports.store.postgres import PostgresStore
from reports.store.sqlite import SqliteStore
from tests.support.stores import PG_URL, postgres_unreachable_reason

# What the previous release stored: a received alert, before the analysis fields and schema_version existed.
V0_BODY = {
    "id": "old0000000000000000000001",
    "status": "received",
    "alert": {
        "fingerprint": "oldfp",
        "alertname": "NodeDown",
        "status": "firing",
        "labels": {"alertname": "NodeDown", "instance": "pve3:9100"},
        "annotations": {"summary": "pve3 unreachable"},
        "starts_at": "2025-12-24T08:00:00+00:00",
    },
    "summary": "pve3 stopped answering",
    "created_at": "2025-12-24T08:00:05+00:00",
}

V1_TABLE = """CREATE TABLE reports (
    id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, alertname TEXT NOT NULL, status TEXT NOT NULL,
    starts_at {ts} NOT NULL, created_at {ts} NOT NULL, body {body} NOT NULL)"""


def _row() -> tuple[str, str, str, str, str, str, str]:
    return (
        V0_BODY["id"],
        "oldfp",
        "NodeDown",
        "received",
        "2025-12-24T08:00:00.000000+00:00",
        "2025-12-24T08:00:05.000000+00:00",
        json.dumps(V0_BODY),
    )


async def _assert_migrated(store: SqliteStore | PostgresStore) -> None:
    assert await store.schema_version() == 2
    report = await store.get(str(V0_BODY["id"]))
    assert report is not None
    assert report.schema_version == SCHEMA_VERSION
    assert report.alert.alertname == "NodeDown"
    assert report.summary == "pve3 stopped answering"
    assert report.evidence == []
    assert [r.id for r in await store.list(alertname="NodeDown", status=ReportStatus.received)] == [report.id]
    assert [r.id for r in await store.search("stopped")] == [report.id]
    # the migrated row accepts the new release's writes
    report.summary = "pve3 lost power"
    await store.save(report)
    assert (await store.get(report.id)) == report


async def test_sqlite_database_of_the_previous_schema_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (1, '2025-12-01T00:00:00+00:00')")
        conn.execute(V1_TABLE.format(ts="TEXT", body="TEXT"))
        conn.execute("INSERT INTO reports VALUES (?,?,?,?,?,?,?)", _row())
    conn.close()

    store = SqliteStore(path)
    await store.init()
    try:
        await _assert_migrated(store)
    finally:
        await store.close()


async def test_postgres_database_of_the_previous_schema_is_migrated_on_open() -> None:
    reason = postgres_unreachable_reason()
    if reason:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (1, now())")
        conn.execute(V1_TABLE.format(ts="TIMESTAMPTZ", body="JSONB"))  # type: ignore[arg-type]
        conn.execute("INSERT INTO reports VALUES (%s,%s,%s,%s,%s,%s,%s)", _row())

    store = PostgresStore(PG_URL, schema=schema)
    try:
        await store.init()
        await _assert_migrated(store)
    finally:
        await store.close()
        await store.drop_schema()


async def test_opening_an_up_to_date_database_applies_no_migration_twice(tmp_path: Path) -> None:
    for _ in range(2):
        store = SqliteStore(tmp_path / "r.db")
        await store.init()
        await store.close()
    with sqlite3.connect(tmp_path / "r.db") as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    conn.close()
    assert versions == [1, 2]
