"""The alert digest of a period: which alerts fired, how often, for how long, and which ones need tuning.

Built from stored reports only (no data source is asked), so it is as cheap to show on a page as to send weekly.

* Alerts are grouped by alert name and target (:attr:`~reports.models.Alert.target`), each group with its count,
  the time it spent firing inside the period, and its MTTR (mean time from start to resolve of its resolved
  occurrences).
* **Noisiest**: the groups that fired most often.
* **Flapping**: groups that fired at least :data:`FLAP_MIN_COUNT` times with most of their resolved occurrences over
  within :data:`FLAP_MAX_S` — an alert that clears itself before anyone could act.
* **Without an actionable cause**: groups none of whose occurrences had a likely cause (no hypothesis of at least
  :data:`CAUSE_MIN_CONFIDENCE` and no evidence of a cause kind scoring at least :data:`CAUSE_MIN_SCORE`): candidates
  for a threshold, a ``for:`` duration or removal.
* **Top causes by kind**: how often each kind of evidence (``backup``, ``deploy``, ``saturation`` …) was the
  strongest cause found.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from reports.models import Evidence, Report, ReportStatus
from reports.store import ReportStore

FLAP_MIN_COUNT = 3
FLAP_MAX_S = 600.0
CAUSE_MIN_SCORE = 0.3
CAUSE_MIN_CONFIDENCE = 0.5
TOP_NOISIEST = 5
# Evidence kinds that describe the alert itself or the tooling, never why it fired.
NON_CAUSE_KINDS = frozenset({"note", "history", "alert_signal", "datasource", "annotation"})


@dataclass(frozen=True)
class AlertGroup:
    """One alert name on one target over the period."""

    alertname: str
    target: str
    severity: str
    count: int
    resolved: int
    firing_s: float
    mttr_s: float | None
    flapping: bool
    without_cause: int
    last_report_id: str
    last_started_at: datetime


@dataclass(frozen=True)
class CauseCount:
    kind: str
    count: int
    example: str


@dataclass(frozen=True)
class Digest:
    since: datetime
    until: datetime
    total: int
    resolved: int
    firing: int
    mttr_s: float | None
    groups: list[AlertGroup]
    noisiest: list[AlertGroup]
    flapping: list[AlertGroup]
    without_cause: list[AlertGroup]
    causes: list[CauseCount]
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        """The digest as JSON-ready data (times as ISO 8601)."""
        data: dict[str, Any] = _iso(asdict(self))
        return data


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    return value


def cause_evidence(report: Report) -> Evidence | None:
    """The strongest evidence of a cause kind scoring at least :data:`CAUSE_MIN_SCORE`, or None."""
    for item in report.ranked_evidence():
        if item.kind not in NON_CAUSE_KINDS and item.score >= CAUSE_MIN_SCORE:
            return item
    return None


def has_cause(report: Report) -> bool:
    """Whether the triage found an actionable cause: a confident hypothesis or strong cause evidence."""
    confident = any(h.confidence >= CAUSE_MIN_CONFIDENCE for h in report.hypotheses)
    return confident or cause_evidence(report) is not None


def _end(report: Report) -> datetime | None:
    return report.resolved_at or report.alert.ends_at


def _firing_s(report: Report, since: datetime, until: datetime) -> float:
    start = max(report.alert.starts_at, since)
    end = min(_end(report) or until, until)
    return max(0.0, (end - start).total_seconds())


def _is_resolved(report: Report) -> bool:
    return report.status == ReportStatus.resolved or report.resolved_at is not None


def _group(reports: list[Report], since: datetime, until: datetime) -> AlertGroup:
    last = max(reports, key=lambda r: r.alert.starts_at)
    durations = [r.duration_s for r in reports if _is_resolved(r) and r.duration_s is not None]
    short = sum(1 for d in durations if d <= FLAP_MAX_S)
    return AlertGroup(
        alertname=last.alert.alertname,
        target=last.alert.target,
        severity=last.alert.severity,
        count=len(reports),
        resolved=sum(1 for r in reports if _is_resolved(r)),
        firing_s=sum(_firing_s(r, since, until) for r in reports),
        mttr_s=sum(durations) / len(durations) if durations else None,
        flapping=len(reports) >= FLAP_MIN_COUNT and bool(durations) and short * 2 >= len(durations),
        without_cause=sum(1 for r in reports if r.status != ReportStatus.received and not has_cause(r)),
        last_report_id=last.id,
        last_started_at=last.alert.starts_at,
    )


def build_digest(reports: list[Report], since: datetime, until: datetime, *, truncated: bool = False) -> Digest:
    """The digest of ``reports`` (the alerts that started in ``[since, until)``)."""
    buckets: dict[tuple[str, str], list[Report]] = defaultdict(list)
    for report in reports:
        buckets[(report.alert.alertname, report.alert.target)].append(report)
    groups = sorted(
        (_group(members, since, until) for members in buckets.values()),
        key=lambda g: (-g.count, -g.firing_s, g.alertname, g.target),
    )
    causes: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for report in reports:
        evidence = cause_evidence(report)
        if evidence is not None:
            causes[evidence.kind] += 1
            examples.setdefault(evidence.kind, evidence.title)
    durations = [r.duration_s for r in reports if _is_resolved(r) and r.duration_s is not None]
    resolved = sum(1 for r in reports if _is_resolved(r))
    return Digest(
        since=since,
        until=until,
        total=len(reports),
        resolved=resolved,
        firing=len(reports) - resolved,
        mttr_s=sum(durations) / len(durations) if durations else None,
        groups=groups,
        noisiest=[g for g in groups if g.count > 1][:TOP_NOISIEST],
        flapping=[g for g in groups if g.flapping],
        # only groups that were triaged at all: a report still being triaged says nothing about causes yet
        without_cause=[g for g in groups if g.without_cause and g.without_cause == g.count],
        causes=[CauseCount(kind, count, examples[kind]) for kind, count in causes.most_common()],
        truncated=truncated,
    )


PAGE_SIZE = 500
MAX_REPORTS = 20_000
_SINCE = re.compile(r"^\s*(\d{1,5})\s*([mhdw])\s*$", re.IGNORECASE)
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_SINCE = timedelta(days=366)


class DigestPeriodError(ValueError):
    """A ``--since``/``since`` value that is not a duration (``7d``) or a date; the message says what is accepted."""


def parse_since(text: str, now: datetime) -> datetime:
    """``7d``, ``24h``, ``90m``, ``2w`` (before ``now``) or an ISO date/time (UTC when it has no zone)."""
    match = _SINCE.match(text)
    if match:
        delta = timedelta(seconds=int(match.group(1)) * _UNIT_S[match.group(2).lower()])
    else:
        try:
            at = datetime.fromisoformat(text.strip())
        except ValueError:
            raise DigestPeriodError(
                f"cannot read the period {text[:40]!r}: use a duration such as 7d, 24h, 90m or 2w, or a date such "
                "as 2026-03-01"
            ) from None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        delta = now - at
    if delta <= timedelta(0) or delta > MAX_SINCE:
        raise DigestPeriodError("the period must start in the past and cover at most 366 days")
    return now - delta


async def load_digest(store: ReportStore, since: datetime, until: datetime) -> Digest:
    """The digest of the alerts that started in ``[since, until)``, read page by page from the store."""
    reports: list[Report] = []
    truncated = False
    while True:
        page = await store.list(since=since, until=until, limit=PAGE_SIZE, offset=len(reports))
        reports.extend(page)
        if len(page) < PAGE_SIZE:
            break
        if len(reports) >= MAX_REPORTS:
            # the newest MAX_REPORTS (the store lists newest first); the digest says it is partial
            truncated = True
            break
    return build_digest(reports, since, until, truncated=truncated)
