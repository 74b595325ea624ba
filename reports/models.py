"""The report as data: the contract between intake, triage, the store, the pages and the JSON API.

``SCHEMA_VERSION`` grows when a field is added; stored reports of older versions are upgraded on read by
:func:`upgrade` so they stay readable.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

SCHEMA_VERSION = 1

# Grafana sends this for "no end yet"; it means the alert is still firing.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)

# The labels that name an alert's target, most specific first (a guest before the host it runs on).
TARGET_LABELS = ("vmid", "name", "container", "service", "instance", "host", "hostname", "node", "job")


def utcnow() -> datetime:
    return datetime.now(UTC)


class AlertStatus(StrEnum):
    firing = "firing"
    resolved = "resolved"


class Alert(BaseModel):
    """One alert, normalised from a Grafana (v1) or Alertmanager (v4) notification."""

    fingerprint: str
    alertname: str
    status: AlertStatus
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str | None = None
    receiver: str | None = None
    group_key: str | None = None
    source: Literal["grafana", "alertmanager", "cli"] = "grafana"
    dashboard_uid: str | None = None
    panel_id: int | None = None
    values: dict[str, float] = Field(default_factory=dict)
    # Grafana only: the organisation the rule lives in, its links, and Grafana's own public URL (externalURL)
    org_id: int | None = None
    silence_url: str | None = None
    dashboard_url: str | None = None
    panel_url: str | None = None
    grafana_url: str | None = None

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Times are kept in UTC (a naive time is taken as UTC), so every page and summary can say "UTC"."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def occurrence_key(self) -> str:
        """Identity of this firing of the alert: fingerprint + start time to the second. The dedup key and the
        report id. Sub-second digits are left out: Alertmanager's webhook sends microseconds where its API (and
        a re-send built from it) has milliseconds, and both must reach the same report."""
        raw = f"{self.fingerprint}|{self.starts_at.astimezone(UTC).replace(microsecond=0).isoformat()}"
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def target(self) -> str:
        """What the alert is about, as ``label value`` (``vmid 105``, ``instance pve1:9100``), or empty."""
        for key in TARGET_LABELS:
            value = self.labels.get(key)
            if value:
                return f"{key} {value}"
        return ""


def labels_fingerprint(labels: dict[str, str]) -> str:
    """A stable hash of a label set, used when the sender gives no fingerprint."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Evidence(BaseModel):
    """One finding of a check. ``score`` (0..1) ranks it; ``ref`` is what was run (PromQL, LogQL, API path)."""

    id: str
    source: str
    kind: str
    title: str
    detail: str = ""
    at: datetime | None = None
    score: float = Field(0.0, ge=0.0, le=1.0)
    ref: str | None = None
    series: list[tuple[float, float]] | None = None  # (epoch seconds, value) for the inline chart
    data: dict[str, Any] = Field(default_factory=dict)


class Hypothesis(BaseModel):
    title: str
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)


class RunbookMatch(BaseModel):
    title: str
    source: str
    section: str
    score: float
    anchor: str | None = None
    excerpt: str = ""
    url: str | None = None


class History(BaseModel):
    """How often this alert fired before (in ``window_days``), and what the last report said."""

    frequency: Literal["new", "rare", "frequent", "unknown"] = "unknown"
    count: int = 0
    window_days: int = 30
    last_report_id: str | None = None
    last_fired_at: datetime | None = None
    last_summary: str | None = None


SourceState = Literal["ok", "failed", "timeout", "not_configured"]
NOT_CONFIGURED_PREFIX = "not configured"


class SourceStatus(BaseModel):
    """One data source (check) of a triage: whether it gave data, how long it took, what went wrong.

    ``ok`` is false both for a failure and for a source that is not configured (neither gave data); ``state``
    tells them apart. Reports stored before ``state`` existed get it from ``ok`` and the error text.
    """

    ok: bool
    ms: float = 0.0
    error: str | None = None
    requests: int = 0
    state: SourceState = "ok"

    @model_validator(mode="before")
    @classmethod
    def _derive_state(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("state") is None:
            return {**data, "state": source_state(bool(data.get("ok")), data.get("error"))}
        return data


def source_state(ok: bool, error: str | None) -> SourceState:
    """The state of a source status that does not carry one (older reports, callers that only set ``ok``)."""
    if ok:
        return "ok"
    text = (error or "").strip().lower()
    if text.startswith(NOT_CONFIGURED_PREFIX):
        return "not_configured"
    if text.startswith(("did not finish within", "timed out")):
        return "timeout"
    return "failed"


class LlmUsage(BaseModel):
    model: str
    calls: int = 0
    input_tokens: int = 0
    # of input_tokens, those the server took from its prompt cache (0 when it does not say)
    cached_input_tokens: int = 0
    output_tokens: int = 0
    skipped_reason: str | None = None
    # how the answer's JSON came: at the first try, after one retry, or not at all (the summary answered instead)
    answer_json: Literal["first_try", "after_retry", "fell_back"] | None = None
    # hypotheses of the answer that cited no evidence id of the report, so were left out
    dropped_hypotheses: int = 0
    # what the model or the endpoint did that had to be worked around (code fence, cut-off answer, no tool support)
    notes: list[str] = Field(default_factory=list)


class AnnotationRef(BaseModel):
    id: int
    dashboard_uid: str | None = None
    panel_id: int | None = None
    org_id: int | None = None


class ReportStatus(StrEnum):
    received = "received"  # alert stored, triage not finished
    triaged = "triaged"  # evidence gathered and analysed (alert still firing)
    resolved = "resolved"  # the alert resolved after triage
    failed = "failed"  # the triage gave up; the alert is still stored
    test = "test"  # a sender's test notification (Grafana's contact-point "Test" button): stored, never triaged


class DeliveryState(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"
    disabled = "disabled"
    skipped = "skipped"  # triaged on request without delivery (``sre-triage triage --no-deliver``)


ChannelState = Literal["pending", "delivered", "failed", "disabled", "skipped", "filtered", "rate_limited"]
NotifyEvent = Literal["triaged", "resolved"]


class ChannelDelivery(BaseModel):
    """Delivery of one report to one channel (the Grafana annotation, one notification URL) for its last event.

    ``label`` names the channel with its secrets masked; ``event`` is what was last delivered (or attempted):
    ``triaged`` after the triage, ``resolved`` when the alert resolved.
    """

    label: str
    state: ChannelState = "pending"
    event: NotifyEvent = "triaged"
    error: str | None = None
    attempts: int = 0
    at: datetime | None = None


class Report(BaseModel):
    schema_version: int = SCHEMA_VERSION
    id: str
    status: ReportStatus = ReportStatus.received
    alert: Alert
    summary: str = ""
    hypotheses: list[Hypothesis] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    runbooks: list[RunbookMatch] = Field(default_factory=list)
    history: History = Field(default_factory=History)
    sources: dict[str, SourceStatus] = Field(default_factory=dict)
    llm: LlmUsage | None = None
    annotation: AnnotationRef | None = None
    delivery: DeliveryState = DeliveryState.pending
    delivery_error: str | None = None
    channels: dict[str, ChannelDelivery] = Field(default_factory=dict)
    group_id: str | None = None
    group_members: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None

    @property
    def duration_s(self) -> float | None:
        end = self.resolved_at or self.alert.ends_at
        if end is None or end <= self.alert.starts_at:
            return None
        return (end - self.alert.starts_at).total_seconds()

    def ranked_evidence(self) -> list[Evidence]:
        return sorted(self.evidence, key=lambda e: e.score, reverse=True)


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored report of an older schema version up to ``SCHEMA_VERSION``."""
    version = int(data.get("schema_version", 0))
    if version < 1:
        # version 0 (received-alert rows) had no analysis fields; the defaults fill them.
        data = {**data, "schema_version": 1}
    return data
