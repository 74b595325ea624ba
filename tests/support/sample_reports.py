"""A realistic triaged report (evidence with series, hypotheses, runbooks, history) for page and delivery tests."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from reports.models import (
    Alert,
    AlertStatus,
    DeliveryState,
    Evidence,
    History,
    Hypothesis,
    LlmUsage,
    Report,
    ReportStatus,
    RunbookMatch,
    SourceStatus,
)

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _series(base: float, jump: float, *, noise: float = 0.02) -> list[tuple[float, float]]:
    start_s = START.timestamp()
    points = []
    for i in range(-60, 21):
        t = start_s + i * 30
        value = base + (jump if i >= -4 else 0.0) * min(1.0, (i + 5) / 5 if i >= -4 else 0)
        points.append((t, value + noise * base * math.sin(i / 3)))
    return points


def sample_alert(**fields: Any) -> Alert:
    data: dict[str, Any] = {
        "fingerprint": "9f2c1d7e4a5b6c3d",
        "alertname": "HostMemoryPressure",
        "status": AlertStatus.firing,
        "labels": {
            "alertname": "HostMemoryPressure",
            "instance": "pve2:9100",
            "job": "node",
            "severity": "critical",
            "guest": "nextcloud (lxc/115)",
        },
        "annotations": {
            "summary": "Memory available below 5% on pve2",
            "runbook_url": "https://runbooks.lan/memory",
        },
        "starts_at": START,
        "generator_url": "https://grafana.lan/alerting/grafana/abc123/view",
        "dashboard_uid": "node-exporter",
        "panel_id": 4,
    }
    data.update(fields)
    return Alert(**data)


def sample_report(**fields: Any) -> Report:
    alert = fields.pop("alert", None) or sample_alert()
    data: dict[str, Any] = {
        "id": alert.occurrence_key,
        "status": ReportStatus.triaged,
        "alert": alert,
        "summary": (
            "pve2 ran out of memory 4 minutes after the nightly PBS backup of nextcloud (lxc/115) started; "
            "the container's memory grew from 3.1 GiB to 7.8 GiB and the kernel OOM-killed php-fpm twice."
        ),
        "hypotheses": [
            Hypothesis(
                title="Backup snapshot of lxc/115 doubled the container's page cache",
                confidence=0.72,
                evidence=["ev-mem", "ev-backup", "ev-oom"],
                next_steps=["Move the nextcloud backup out of the 12:00 window", "Set a memory limit on lxc/115"],
            ),
            Hypothesis(
                title="php-fpm worker leak after the upgrade at 11:40",
                confidence=0.31,
                evidence=["ev-upgrade"],
                next_steps=["Compare php-fpm RSS before and after the upgrade"],
            ),
        ],
        "evidence": [
            Evidence(
                id="ev-signal",
                source="prometheus",
                kind="signal",
                title="node_memory_MemAvailable_bytes / MemTotal (pve2)",
                detail="fell from 38% to 3.9% in 4 minutes",
                at=START,
                score=0.95,
                ref='node_memory_MemAvailable_bytes{instance="pve2:9100"} / node_memory_MemTotal_bytes',
                # available memory falls as the container grows
                series=[(t, max(0.039, 0.40 - (v - 3.1e9) / 4.7e9 * 0.37)) for t, v in _series(3.1e9, 4.7e9)],
            ),
            Evidence(
                id="ev-mem",
                source="prometheus",
                kind="saturation",
                title="lxc/115 memory usage 3.1 GiB → 7.8 GiB",
                detail="container memory during the alert is 2.5× the hour before",
                at=START - timedelta(minutes=4),
                score=0.88,
                series=_series(3.1e9, 4.7e9),
            ),
            Evidence(
                id="ev-backup",
                source="pbs",
                kind="backup",
                title="PBS backup of ct/115 started",
                detail="UPID:pbs:0000A1B2:vzdump:115:root@pam: started 11:56:00, still running",
                at=START - timedelta(minutes=4),
                score=0.81,
            ),
            Evidence(
                id="ev-oom",
                source="loki",
                kind="log",
                title="kernel: Out of memory: Killed process 23117 (php-fpm)",
                detail="Mar 01 12:01:13 pve2 kernel: Out of memory: Killed process 23117 (php-fpm) total-vm:812344kB",
                at=START + timedelta(minutes=1, seconds=13),
                score=0.77,
            ),
            Evidence(
                id="ev-upgrade",
                source="proxmox",
                kind="change",
                title="apt upgrade on lxc/115 (php8.2-fpm)",
                at=START - timedelta(minutes=20),
                score=0.35,
            ),
        ],
        "runbooks": [
            RunbookMatch(
                title="Memory pressure on a Proxmox node",
                source="runbooks/memory.md",
                section="Find the guest",
                score=0.83,
                url="https://runbooks.lan/memory#find-the-guest",
                excerpt="Sort guests by RSS: pvesh get /nodes/pve2/lxc --output-format json …",
            ),
        ],
        "history": History(
            frequency="rare",
            count=2,
            window_days=30,
            last_report_id="0123456789abcdef01234567",
            last_fired_at=START - timedelta(days=6),
            last_summary="backup overlap on pve2",
        ),
        "sources": {
            "prometheus": SourceStatus(ok=True, ms=84.0, requests=6),
            "loki": SourceStatus(ok=True, ms=212.0, requests=3),
            "pbs": SourceStatus(ok=True, ms=95.0, requests=2),
            "proxmox": SourceStatus(ok=False, ms=5000.0, error="timed out after 5 s", requests=1),
        },
        "llm": LlmUsage(model="qwen2.5:7b-instruct", calls=1, input_tokens=3120, output_tokens=412),
        "delivery": DeliveryState.pending,
        "created_at": START + timedelta(seconds=9),
        "updated_at": START + timedelta(seconds=14),
    }
    data.update(fields)
    return Report(**data)
