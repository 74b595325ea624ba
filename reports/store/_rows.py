"""What both store backends share: turning a report into a row (redacted, indexed columns) and back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from reports.models import Alert, Report, ReportStatus, upgrade
from reports.redact import redact_data
from reports.store import StoreError

MAX_SEARCH_WORDS = 8


@dataclass(frozen=True)
class Row:
    """The indexed columns of a stored report plus its JSON body."""

    id: str
    fingerprint: str
    alertname: str
    status: str
    starts_at: datetime
    created_at: datetime
    updated_at: datetime
    group_id: str | None
    schema_version: int
    search_text: str
    body: str


@dataclass(frozen=True)
class Filters:
    alertname: str | None = None
    status: ReportStatus | None = None
    since: datetime | None = None
    until: datetime | None = None
    severity: str | None = None
    target: str | None = None


def utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def redact_report(report: Report) -> Report:
    """A copy of ``report`` with every secret in every string replaced (the id and indexed keys are kept)."""
    data = redact_data(report.model_dump(mode="json"))
    # Identity must survive redaction or the row could not be found again.
    data["id"] = report.id
    data["alert"]["fingerprint"] = report.alert.fingerprint
    data["alert"]["alertname"] = report.alert.alertname
    return Report.model_validate(data)


def search_text(report: Report) -> str:
    labels = " ".join(f"{k}={v}" for k, v in sorted(report.alert.labels.items()))
    return " ".join((report.alert.alertname, labels, report.summary)).lower()


def to_row(report: Report) -> Row:
    """Redact ``report`` and build its row."""
    clean = redact_report(report)
    return Row(
        id=clean.id,
        fingerprint=clean.alert.fingerprint,
        alertname=clean.alert.alertname,
        status=clean.status.value,
        starts_at=utc(clean.alert.starts_at),
        created_at=utc(clean.created_at),
        updated_at=utc(clean.updated_at),
        group_id=clean.group_id,
        schema_version=clean.schema_version,
        search_text=search_text(clean),
        body=clean.model_dump_json(),
    )


def received_report(alert: Alert) -> Report:
    """The report a freshly received alert starts as."""
    return Report(id=alert.occurrence_key, alert=alert, status=ReportStatus.received)


def from_body(body: str | bytes | dict[str, Any], report_id: str = "") -> Report:
    """Parse a stored body of any schema version into the current Report."""
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else dict(body)
        return Report.model_validate(upgrade(data))
    except (ValueError, ValidationError) as exc:
        # ValidationError messages quote the input; the id is enough to find the row.
        raise StoreError(f"stored report {report_id or '?'} cannot be read ({type(exc).__name__})") from exc


def search_words(text: str) -> list[str]:
    """The lower-cased words of a search, bounded so a long query cannot build a huge SQL statement."""
    return [w for w in text.lower().split() if w][:MAX_SEARCH_WORDS]


def like_pattern(word: str) -> str:
    """A LIKE pattern matching ``word`` literally (``%``, ``_`` and the escape character escaped with ``!``)."""
    escaped = word.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"
