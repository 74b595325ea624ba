"""Time to build the alert digest of a week from the report store (what ``/digest`` and the weekly job do).

Seeds a fresh SQLite store (or PostgreSQL with ``--postgres URL``, in a throwaway schema) with ``--reports`` reports
spread over 7 days across 200 alert/target groups, each with three evidence items and a hypothesis, then times
``load_digest`` plus the Markdown and HTML rendering (median of ``--runs`` runs).

    .venv/bin/python -m bench.digest_speed
    .venv/bin/python -m bench.digest_speed --reports 20000 --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reports.digest import load_digest
from reports.models import Alert, AlertStatus, Evidence, Hypothesis, Report, ReportStatus
from reports.render import render_digest_html, render_digest_markdown
from reports.store.postgres import PostgresStore
from reports.store.sqlite import SqliteStore

GROUPS = 200
KINDS = ("backup", "deploy", "saturation", "log_pattern", "guest_status")


def _report(n: int, start: datetime) -> Report:
    group = n % GROUPS
    alert = Alert(
        fingerprint=f"fp-{group}",
        alertname=f"Alert{group % 40}",
        status=AlertStatus.firing,
        labels={"alertname": f"Alert{group % 40}", "vmid": str(100 + group), "severity": "warning"},
        starts_at=start,
    )
    evidence = [
        Evidence(id=f"e{i}", source="bench", kind=KINDS[(n + i) % len(KINDS)], title=f"finding {i}", score=0.2 * i)
        for i in range(3)
    ]
    return Report(
        id=alert.occurrence_key,
        alert=alert,
        status=ReportStatus.resolved,
        resolved_at=start + timedelta(minutes=1 + n % 50),
        summary="bench report " * 10,
        evidence=evidence,
        hypotheses=[Hypothesis(title="a cause", confidence=(n % 10) / 10)],
    )


async def run(count: int, runs: int, postgres: str | None) -> None:
    store: Any
    with tempfile.TemporaryDirectory() as tmp:
        if postgres:
            store = PostgresStore(postgres, schema=f"bench_{uuid.uuid4().hex[:10]}")
        else:
            store = SqliteStore(Path(tmp) / "reports.db")
        await store.init()
        until = datetime.now(UTC)
        since = until - timedelta(days=7)
        step = (until - since) / count
        for n in range(count):
            await store.save(_report(n, since + step * n))
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            digest = await load_digest(store, since, until)
            render_digest_markdown(digest)
            render_digest_html(digest)
            timings.append(time.perf_counter() - started)
        backend = "postgresql" if postgres else "sqlite"
        print(
            f"{backend}: {digest.total} reports, {len(digest.groups)} groups: digest built and rendered in "
            f"{statistics.median(timings) * 1000:.0f} ms (median of {runs})"
        )
        if postgres:
            await store.drop_schema()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    asyncio.run(run(args.reports, args.runs, args.postgres))


if __name__ == "__main__":
    main()
