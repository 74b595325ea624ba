"""The alert digest: grouping, counts, time firing, MTTR, noisiest, flapping, no-cause and top causes, read from both
store backends; the ``sre-triage digest`` command, the ``/digest`` page and the weekly message to the channels."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from reports.digest import DigestPeriodError, build_digest, load_digest, parse_since
from reports.models import Alert, AlertStatus, Evidence, Hypothesis, Report, ReportStatus
from reports.store import open_store
from tests.support import stores
from tests.support.receivers import http_receiver
from tests.support.worker_ctx import job_ctx
from triage.cli.main import main
from triage.settings import Settings
from triage.worker.arq_settings import cron_jobs
from triage.worker.digest_job import send_digest
from webhook.app import create_app

store_factory = stores.store_factory
store = stores.store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def _report(
    alertname: str,
    labels: dict[str, str],
    start: datetime,
    *,
    minutes: float | None = None,
    evidence: Sequence[tuple[str, float]] = (),
    confidence: float | None = None,
    status: ReportStatus | None = None,
) -> Report:
    alert = Alert(
        fingerprint=f"{alertname}-{sorted(labels.items())}",
        alertname=alertname,
        status=AlertStatus.firing,
        labels={"alertname": alertname, **labels},
        starts_at=start,
    )
    resolved_at = start + timedelta(minutes=minutes) if minutes is not None else None
    return Report(
        id=alert.occurrence_key,
        alert=alert,
        status=status or (ReportStatus.resolved if resolved_at else ReportStatus.triaged),
        resolved_at=resolved_at,
        evidence=[
            Evidence(id=f"e{i}", source="test", kind=kind, title=f"{kind} finding {i}", score=score)
            for i, (kind, score) in enumerate(evidence)
        ],
        hypotheses=[Hypothesis(title="likely cause", confidence=confidence)] if confidence is not None else [],
    )


def week_of_alerts(t0: datetime) -> list[Report]:
    cpu = {"vmid": "105", "severity": "warning"}
    return [
        _report("DiskFull", {"instance": "nas:9100", "severity": "critical"}, t0 + timedelta(hours=1),
                evidence=[("backup", 0.9)], confidence=0.8),
        *(
            _report("HostHighCpu", cpu, t0 + timedelta(days=1, hours=i), minutes=3, evidence=[("saturation", 0.2)])
            for i in range(4)
        ),
        _report("BackupFailed", {"vmid": "200"}, t0 + timedelta(days=3), minutes=30, evidence=[("backup", 0.7)]),
        _report("BackupFailed", {"vmid": "200"}, t0 + timedelta(days=4), minutes=90,
                evidence=[("deploy", 0.5), ("history", 0.9)]),
        _report("Probe", {"job": "blackbox"}, t0 + timedelta(days=2), status=ReportStatus.received),
    ]  # fmt: skip


def test_the_digest_groups_counts_and_flags_alerts_for_tuning() -> None:
    digest = build_digest(week_of_alerts(T0), T0, T0 + WEEK)

    assert (digest.total, digest.resolved, digest.firing) == (8, 6, 2)
    assert digest.mttr_s == (4 * 180 + 1800 + 5400) / 6
    rows = [(g.alertname, g.target, g.count, g.resolved, g.firing_s, g.mttr_s) for g in digest.groups]
    assert rows == [
        ("HostHighCpu", "vmid 105", 4, 4, 720.0, 180.0),
        ("BackupFailed", "vmid 200", 2, 2, 7200.0, 3600.0),
        ("DiskFull", "instance nas:9100", 1, 0, (WEEK - timedelta(hours=1)).total_seconds(), None),
        ("Probe", "job blackbox", 1, 0, (WEEK - timedelta(days=2)).total_seconds(), None),
    ]
    assert [g.alertname for g in digest.noisiest] == ["HostHighCpu", "BackupFailed"]
    assert [g.alertname for g in digest.flapping] == ["HostHighCpu"]
    # a received (not yet triaged) alert says nothing about causes; the CPU alert never had one
    assert [g.alertname for g in digest.without_cause] == ["HostHighCpu"]
    assert [(c.kind, c.count) for c in digest.causes] == [("backup", 2), ("deploy", 1)]


async def test_the_digest_reads_the_period_from_either_store(store: Any) -> None:
    reports = week_of_alerts(T0)
    before = _report("OldAlert", {"vmid": "1"}, T0 - timedelta(hours=1), minutes=5)
    after = _report("NextWeek", {"vmid": "1"}, T0 + WEEK + timedelta(hours=1), minutes=5)
    for report in [*reports, before, after]:
        await store.save(report)
    digest = await load_digest(store, T0, T0 + WEEK)
    assert digest.to_json() == build_digest(reports, T0, T0 + WEEK).to_json()


def test_periods_are_durations_or_dates_and_bad_ones_say_what_is_accepted() -> None:
    now = T0 + WEEK
    assert parse_since("7d", now) == T0
    assert parse_since("36h", now) == now - timedelta(hours=36)
    assert parse_since("2w", now) == now - 2 * WEEK
    assert parse_since("2026-03-01", now) == T0 - timedelta(hours=12)
    for bad in ("seven days", "0d", "400d", "2027-01-01"):
        with pytest.raises(DigestPeriodError):
            parse_since(bad, now)


def _seed(settings: Settings, reports: list[Report]) -> None:
    async def save() -> None:
        db = open_store(settings.storage.database_url)
        await db.init()
        for report in reports:
            await db.save(report)
        await db.close()

    asyncio.run(save())


def _recent_week() -> tuple[datetime, list[Report]]:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=6, hours=23)
    return t0, week_of_alerts(t0)


def test_the_cli_prints_the_digest_as_markdown_json_and_html(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings()
    monkeypatch.setenv("DATABASE_URL", settings.storage.database_url)
    monkeypatch.setenv("PUBLIC_URL", "https://triage.lan")
    _, reports = _recent_week()
    _seed(settings, reports)

    assert main(["digest"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# Alert digest ")
    assert "8 alerts in 4 groups: 6 resolved, 2 still firing; mean time to resolve 22 min." in markdown
    assert "## Flapping" in markdown and "## Fired without an actionable cause" in markdown
    cpu_row = next(line for line in markdown.splitlines() if line.startswith("| HostHighCpu (flapping) |"))
    assert "| vmid 105 | warning | 4 | 4 | 12 min | 3 min | 4 |" in cpu_row
    assert f"(https://triage.lan/reports/{reports[4].id})" in cpu_row

    assert main(["digest", "--since", "7d", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"] == 8 and data["causes"][0] == {"kind": "backup", "count": 2, "example": "backup finding 0"}

    assert main(["digest", "--format", "html"]) == 0
    html = capsys.readouterr().out
    assert "<h1>Alert digest</h1>" in html and '<section id="flapping">' in html

    assert main(["digest", "--since", "a week"]) == 2
    assert "use a duration such as 7d" in capsys.readouterr().err


def test_the_digest_page_needs_the_api_token_and_serves_html_json_and_markdown(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    _, reports = _recent_week()
    _seed(settings, reports)
    auth = {"Authorization": "Bearer test-api-token"}
    with TestClient(create_app(settings)) as client:
        assert client.get("/digest").status_code == 401
        assert client.get("/digest", headers={"Authorization": "Bearer wrong"}).status_code == 401
        page = client.get("/digest?since=7d", headers={**auth, "Accept": "text/html"})
        data = client.get("/digest", headers=auth).json()
        markdown = client.get("/digest.md?since=30d", headers=auth)
        bad = client.get("/digest.json?since=soon", headers=auth)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in page.headers
    assert f'<a href="/reports/{reports[4].id}">' in page.text
    assert data["total"] == 8 and [g["alertname"] for g in data["flapping"]] == ["HostHighCpu"]
    assert markdown.text.startswith("# Alert digest ")
    assert bad.status_code == 422 and "use a duration such as 7d" in bad.json()["error"]["message"]


async def test_the_weekly_job_sends_the_digest_to_every_channel(
    make_settings: Callable[..., Settings], redis: Redis
) -> None:
    with http_receiver() as first, http_receiver() as second:
        settings = make_settings(
            notify={"urls": f"json://{first.hostport}/a,json://{second.hostport}/b"},
            api={"public_url": "https://triage.lan"},
        )
        _, reports = _recent_week()
        db = open_store(settings.storage.database_url)
        await db.init()
        for report in reports:
            await db.save(report)
        sent = await send_digest(job_ctx(settings, db, redis))
        await db.close()
    assert sent == 2
    assert first.requests[0].body == second.requests[0].body
    message = json.loads(first.requests[0].body)
    now = datetime.now(UTC)
    assert message["title"] == f"Alert digest {now - WEEK:%Y-%m-%d} – {now:%Y-%m-%d}: 8 alerts"
    assert message["type"] == "info"
    assert message["message"] == (
        "8 alerts in 4 groups, 2 still firing; mean time to resolve 22 min.\n"
        "Noisiest: HostHighCpu on vmid 105 (4x), BackupFailed on vmid 200 (2x)\n"
        "Flapping: HostHighCpu on vmid 105 (4x)\n"
        "No actionable cause found (tuning candidates): HostHighCpu on vmid 105 (4x)\n"
        "Top causes: backup 2, deploy 1\n"
        "Digest: https://triage.lan/digest?since=7d"
    )


async def test_no_channel_means_no_digest_is_built(make_settings: Callable[..., Settings], redis: Redis) -> None:
    settings = make_settings()
    db = open_store(settings.storage.database_url)
    await db.init()
    try:
        assert await send_digest(job_ctx(settings, db, redis)) == 0
    finally:
        await db.close()


def test_the_worker_schedules_the_digest_weekly_unless_it_is_off(make_settings: Callable[..., Settings]) -> None:
    scheduled = cron_jobs(make_settings(digest={"weekday": "fri", "hour": 17}))
    digest = next(job for job in scheduled if job.name == "cron:send_digest")
    assert (digest.weekday, digest.hour, digest.minute, digest.unique) == (4, 17, 0, True)
    assert [job.name for job in cron_jobs(make_settings(digest={"weekday": "off"}))] == ["cron:purge_reports"]
