"""The report store, both backends: idempotent writes, upserts, filters, history, search, retention, reopening."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from reports.models import Evidence, ReportStatus, SourceStatus
from tests.support import stores
from tests.support.stores import T0, make_alert, make_report

store_factory = stores.store_factory
store = stores.store


async def test_recording_the_same_alert_occurrence_twice_keeps_one_report(store: Any) -> None:
    alert = make_alert(1)
    first = await store.record_alert(alert)
    first.summary = "analysed"
    first.status = ReportStatus.triaged
    await store.save(first)

    again = await store.record_alert(alert)

    assert again.id == alert.occurrence_key
    assert again.status == ReportStatus.triaged
    assert again.summary == "analysed"
    assert await store.count() == 1


async def test_a_new_occurrence_of_the_same_alert_is_a_new_report(store: Any) -> None:
    await store.record_alert(make_alert(1, fingerprint="same"))
    later = make_alert(1, fingerprint="same").model_copy(update={"starts_at": T0 + timedelta(hours=5)})
    await store.record_alert(later)
    assert await store.count() == 2


async def test_save_replaces_the_report_and_round_trips_every_field(store: Any) -> None:
    report = make_report(
        2,
        summary="Disk full on pve1",
        evidence=[
            Evidence(
                id="e1",
                source="prometheus",
                kind="saturation",
                title="disk 98%",
                score=0.9,
                at=T0,
                series=[(1.0, 2.0), (3.0, 4.5)],
                data={"during": 98.0},
            )
        ],
        sources={"prometheus": SourceStatus(ok=True, ms=12.5, requests=3)},
    )
    await store.save(report)
    report.summary = "Disk full on pve1 (updated)"
    await store.save(report)

    loaded = await store.get(report.id)
    assert loaded == report
    assert await store.count() == 1


async def test_unknown_report_id_reads_as_none(store: Any) -> None:
    assert await store.get("does-not-exist") is None


async def test_secrets_in_evidence_are_redacted_before_they_are_stored(store: Any) -> None:
    report = make_report(
        3,
        summary="login failed with password=hunter2",
        evidence=[
            Evidence(
                id="log1",
                source="loki",
                kind="log",
                title="curl",
                detail="curl -H 'Authorization: PVEAPIToken=root@pam!ci=0b4f1c2e-aaaa-bbbb-cccc-1234567890ab' https://pve",
                data={"api_key": "sk-live-1234567890abcdef", "url": "https://admin:s3cret@db.lan/x"},
            )
        ],
    )
    await store.save(report)
    loaded = await store.get(report.id)
    dumped = loaded.model_dump_json()
    for secret in ("hunter2", "0b4f1c2e-aaaa", "sk-live-1234567890abcdef", "s3cret"):
        assert secret not in dumped
    assert "[REDACTED]" in loaded.summary
    assert loaded.id == report.id


async def test_list_filters_by_alertname_status_and_time_and_pages_newest_first(store: Any) -> None:
    for n in range(6):
        alertname = "HostHighCpu" if n % 2 == 0 else "DiskFull"
        status = ReportStatus.triaged if n < 4 else ReportStatus.resolved
        await store.save(make_report(n, alert=make_alert(n, alertname=alertname), status=status))

    cpu = await store.list(alertname="HostHighCpu")
    assert [r.alert.starts_at for r in cpu] == sorted((r.alert.starts_at for r in cpu), reverse=True)
    assert {r.alert.alertname for r in cpu} == {"HostHighCpu"}
    assert len(cpu) == 3
    assert await store.count(status=ReportStatus.resolved) == 2
    window = await store.list(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert sorted(r.alert.starts_at.minute for r in window) == [1, 2]
    page1 = await store.list(limit=4)
    page2 = await store.list(limit=4, offset=4)
    assert len(page1) == 4
    assert len(page2) == 2
    assert {r.id for r in page1}.isdisjoint({r.id for r in page2})


async def test_history_finds_earlier_firings_by_fingerprint_or_alertname(store: Any) -> None:
    current = make_report(10, alert=make_alert(10, fingerprint="fpA"))
    await store.save(current)
    await store.save(make_report(1, alert=make_alert(1, fingerprint="fpA", alertname="Renamed")))
    await store.save(make_report(2, alert=make_alert(2, fingerprint="fpB")))
    await store.save(make_report(3, alert=make_alert(3, fingerprint="fpC", alertname="Other")))

    found = await store.history(
        fingerprint="fpA", alertname="HostHighCpu", since=T0 - timedelta(days=1), exclude_id=current.id
    )

    assert [r.alert.starts_at.minute for r in found] == [2, 1]


async def test_search_matches_words_in_alertname_labels_and_summary(store: Any) -> None:
    await store.save(make_report(1, summary="ZFS pool degraded after disk replacement"))
    await store.save(make_report(2, alert=make_alert(2, alertname="BackupFailed"), summary="PBS job failed"))

    assert [r.summary for r in await store.search("zfs DEGRADED")] == ["ZFS pool degraded after disk replacement"]
    assert len(await store.search("instance=pve2")) == 1
    assert await store.search("100%_") == []
    assert await store.search("   ") == []


async def test_purge_applies_retention_by_age_and_count(store: Any) -> None:
    now = datetime.now(UTC)
    await store.save(make_report(1, created_at=now - timedelta(days=100)))
    for n in range(2, 6):
        await store.save(make_report(n, created_at=now - timedelta(minutes=n)))

    assert await store.purge(older_than_days=90, keep_count=0) == 1
    assert await store.purge(older_than_days=0, keep_count=3) == 1
    kept = await store.list()
    assert sorted(r.alert.starts_at.minute for r in kept) == [2, 3, 4]


async def test_concurrent_writers_lose_no_report(store: Any) -> None:
    async def writer(n: int) -> None:
        report = await store.record_alert(make_alert(n))
        report.summary = f"writer {n}"
        report.status = ReportStatus.triaged
        await store.save(report)

    await asyncio.gather(*(writer(n) for n in range(40)))

    assert await store.count() == 40
    reports = await store.list(limit=100)
    assert {r.summary for r in reports} == {f"writer {n}" for n in range(40)}


async def test_two_store_instances_on_one_database_see_each_others_writes(store_factory: Any) -> None:
    api = await store_factory()
    worker = await store_factory()

    await asyncio.gather(
        *(api.record_alert(make_alert(n)) for n in range(10)),
        *(worker.record_alert(make_alert(n)) for n in range(5, 15)),
    )

    assert await api.count() == 15
    assert await worker.count() == 15


async def test_a_reopened_database_keeps_its_reports(store_factory: Any) -> None:
    first = await store_factory()
    report = make_report(4, summary="kept across restarts")
    await first.save(report)
    await first.close()

    reopened = await store_factory()

    assert (await reopened.get(report.id)) == report
    assert await reopened.schema_version() == 2
    await reopened.ping()


async def test_many_concurrent_deliveries_of_one_alert_record_one_report(store: Any) -> None:
    alert = make_alert(7)
    reports = await asyncio.gather(*(store.record_alert(alert) for _ in range(20)))
    assert {r.id for r in reports} == {alert.occurrence_key}
    assert await store.count() == 1


async def test_nul_characters_and_100_kb_text_are_stored(store: Any) -> None:
    huge = "x" * 100_000
    report = make_report(
        8,
        summary="before\x00after",
        evidence=[Evidence(id="big", source="loki", kind="log", title="t\u0000", detail=huge)],
    )
    await store.save(report)
    loaded = await store.get(report.id)
    assert loaded.summary == "beforeafter"
    assert loaded.evidence[0].title == "t"
    assert loaded.evidence[0].detail == huge


async def test_list_filters_by_severity_and_target_label(store: Any) -> None:
    labels = [
        {"alertname": "DiskFull", "instance": "pve1:9100", "severity": "critical"},
        {"alertname": "DiskFull", "host": "pve12.lan", "severity": "warning"},
        {"alertname": "GuestDown", "guest": "jellyfin", "vmid": "105", "severity": "Critical"},
        {"alertname": "Backup", "job": "pve1", "severity": "info"},  # a job named like a host is no target
    ]
    for n, item in enumerate(labels):
        alert = make_alert(n, alertname=item["alertname"]).model_copy(update={"labels": item})
        await store.save(make_report(n, alert=alert))

    critical = await store.list(severity="critical")
    pve1 = await store.list(target="pve1")
    assert {r.alert.labels.get("instance") or r.alert.labels.get("guest") for r in critical} == {
        "pve1:9100",
        "jellyfin",
    }
    assert sorted(r.alert.labels.get("instance") or r.alert.labels["host"] for r in pve1) == ["pve12.lan", "pve1:9100"]
    assert await store.count(target="jelly") == 1
    assert await store.count(target="105", severity="critical") == 1
    assert await store.count(target="pve1:") == 1
    # LIKE wildcards in the text are literal
    assert await store.count(target="%") == 0
    assert await store.count(target="_ve1") == 0
