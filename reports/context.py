"""Typed template contexts: each template gets one frozen dataclass, built from a Report by one function.

Everything untrusted (labels, annotations, evidence text, LLM output) is cleaned and bounded here, so templates
only format. HTML escaping stays with Jinja's autoescape; Markdown escaping with the ``md`` filters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reports.chart import Chart, build_chart
from reports.grafana_links import GrafanaLinks, dashboard_link, explore_links
from reports.models import Evidence, Report, ReportStatus
from reports.targets import alert_target
from reports.text import clean, fmt_duration, fmt_offset, fmt_time, one_line, safe_url

_REPORT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TITLE = 300
MAX_LABEL = 500
MAX_DETAIL = 4_000
MAX_SUMMARY = 8_000
MAX_ITEMS = 50
MAX_EVIDENCE = 60
MAX_TIMELINE = 40


@dataclass(frozen=True)
class Pair:
    key: str
    value: str


@dataclass(frozen=True)
class EvidenceView:
    id: str
    anchor: str
    source: str
    kind: str
    title: str
    detail: str
    at_label: str
    offset_label: str
    score_pct: int
    ref: str
    explore: tuple[Pair, ...] = ()  # (query, Grafana Explore URL)


@dataclass(frozen=True)
class HypothesisView:
    title: str
    confidence_pct: int
    evidence: list[EvidenceView]
    next_steps: list[str]


@dataclass(frozen=True)
class TimelineEntry:
    offset_label: str
    at_label: str
    source: str
    kind: str
    title: str
    anchor: str
    is_start: bool = False


@dataclass(frozen=True)
class RunbookView:
    title: str
    source: str
    section: str
    score: str
    excerpt: str
    url: str | None


@dataclass(frozen=True)
class HistoryView:
    frequency: str
    count: int
    window_days: int
    last_fired_label: str
    last_summary: str
    last_report_id: str | None


@dataclass(frozen=True)
class SourceView:
    name: str
    ok: bool
    ms: str
    requests: int
    error: str
    state: str = "ok"

    @property
    def state_label(self) -> str:
        """How the page words the state: "ok", "failed", "timed out" or "not configured"."""
        return _STATE_LABELS.get(self.state, "failed")

    @property
    def state_class(self) -> str:
        """The page's style for the state: good, bad, or neutral for a source nobody set up."""
        return _STATE_CLASSES.get(self.state, "st-failed")


_STATE_LABELS = {"ok": "ok", "failed": "failed", "timeout": "timed out", "not_configured": "not configured"}
_STATE_CLASSES = {"ok": "st-resolved", "failed": "st-failed", "timeout": "st-failed", "not_configured": "st-disabled"}


@dataclass(frozen=True)
class LlmView:
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    skipped_reason: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeliveryView:
    state: str
    error: str
    annotation_id: int | None
    target: str
    channels: list[ChannelView] = field(default_factory=list)


@dataclass(frozen=True)
class ChannelView:
    """One delivery channel on the report page: the Grafana annotation or one notification URL (secrets masked)."""

    label: str
    state: str
    event: str
    error: str
    attempts: int
    at_label: str


@dataclass(frozen=True)
class ReportPage:
    """Context of ``report.html.j2`` and ``report.md.j2``."""

    id: str
    alertname: str
    status: str
    alert_status: str
    severity: str
    starts_label: str
    ends_label: str
    duration_label: str
    summary: str
    labels: list[Pair]
    annotations: list[Pair]
    generator_url: str | None
    hypotheses: list[HypothesisView]
    next_steps: list[str]
    evidence: list[EvidenceView]
    evidence_hidden: int
    timeline: list[TimelineEntry]
    chart: Chart | None
    runbooks: list[RunbookView]
    history: HistoryView
    sources: list[SourceView]
    llm: LlmView | None
    delivery: DeliveryView
    created_label: str
    updated_label: str
    link_query: str = ""
    report_url: str = ""
    silence_url: str | None = None
    dashboard_url: str | None = None


@dataclass(frozen=True)
class AnnotationContext:
    """Context of ``annotation.txt.j2``: the short text on the Grafana annotation."""

    alertname: str
    status: str
    summary: str
    hypothesis: str
    confidence_pct: int | None
    link: str


@dataclass(frozen=True)
class ReportRow:
    id: str
    href: str
    alertname: str
    severity: str
    status: str
    starts_label: str
    summary: str
    target: str = ""


@dataclass(frozen=True)
class ListForm:
    """The list page's filter form: the values it was submitted with, and the choices it offers."""

    alertname: str = ""
    severity: str = ""
    status: str = ""
    target: str = ""
    date: str = ""
    statuses: tuple[str, ...] = tuple(s.value for s in ReportStatus)
    severities: tuple[str, ...] = ("critical", "warning", "info")


@dataclass(frozen=True)
class ReportListPage:
    """Context of ``list.html.j2``."""

    rows: list[ReportRow]
    total: int
    offset: int
    limit: int
    filters: list[Pair] = field(default_factory=list)
    prev_href: str | None = None
    next_href: str | None = None
    form: ListForm = field(default_factory=ListForm)


def _anchor(evidence_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in evidence_id[:80])
    return f"ev-{safe}"


def evidence_view(item: Evidence, origin: datetime, explore: list[tuple[str, str]] | None = None) -> EvidenceView:
    return EvidenceView(
        id=one_line(item.id, 120),
        anchor=_anchor(item.id),
        source=one_line(item.source, 60),
        kind=one_line(item.kind, 60),
        title=one_line(item.title, MAX_TITLE),
        detail=clean(item.detail, MAX_DETAIL),
        at_label=fmt_time(item.at),
        offset_label=fmt_offset(item.at, origin) if item.at else "",
        score_pct=round(item.score * 100),
        ref=clean(item.ref, 1_000),
        explore=tuple(Pair(one_line(query, 300), url) for query, url in explore or []),
    )


def _pairs(mapping: dict[str, str]) -> list[Pair]:
    return [Pair(one_line(k, 120), clean(v, MAX_LABEL)) for k, v in sorted(mapping.items())[:MAX_ITEMS]]


def _timeline(report: Report, views: dict[str, EvidenceView]) -> list[TimelineEntry]:
    start = report.alert.starts_at
    timed = sorted((e for e in report.evidence if e.at is not None), key=lambda e: e.at or start)
    # the entries nearest to the start matter most when there are too many
    if len(timed) > MAX_TIMELINE:
        timed = sorted(timed, key=lambda e: abs(((e.at or start) - start).total_seconds()))[:MAX_TIMELINE]
        timed.sort(key=lambda e: e.at or start)
    entries = [
        TimelineEntry(
            offset_label=views[e.id].offset_label if e.id in views else fmt_offset(e.at or start, start),
            at_label=fmt_time(e.at),
            source=one_line(e.source, 60),
            kind=one_line(e.kind, 60),
            title=one_line(e.title, MAX_TITLE),
            anchor=_anchor(e.id),
        )
        for e in timed
    ]
    marker = TimelineEntry("at start", fmt_time(start), "alert", "start", "alert started firing", "", is_start=True)
    position = sum(1 for e in timed if (e.at or start) < start)
    entries.insert(position, marker)
    return entries


def _duration(report: Report, now: datetime) -> str:
    if report.duration_s is not None:
        return fmt_duration(report.duration_s)
    if report.status == ReportStatus.resolved:
        return ""
    return "firing for " + fmt_duration((now - report.alert.starts_at).total_seconds())


def _delivery(report: Report) -> DeliveryView:
    ref = report.annotation
    if ref is None:
        target = ""
    elif ref.dashboard_uid:
        target = f"dashboard {one_line(ref.dashboard_uid, 80)}" + (f", panel {ref.panel_id}" if ref.panel_id else "")
    else:
        target = "organisation annotation"
    channels = [
        ChannelView(
            label=one_line(c.label, 200),
            state=c.state,
            event=c.event,
            error=one_line(c.error, 500),
            attempts=c.attempts,
            at_label=fmt_time(c.at) if c.at else "",
        )
        for c in report.channels.values()
    ]
    return DeliveryView(
        state=report.delivery.value,
        error=one_line(report.delivery_error, 500),
        annotation_id=ref.id if ref else None,
        target=target,
        channels=channels,
    )


def build_report_page(
    report: Report,
    *,
    now: datetime | None = None,
    link_query: str = "",
    report_url: str = "",
    grafana: GrafanaLinks | None = None,
) -> ReportPage:
    """The context of a report page. ``link_query`` (``?exp=…&sig=…``) is carried to the page's JSON/MD links;
    ``grafana`` (where Grafana is) adds the dashboard and Explore links."""
    now = now or datetime.now(UTC)
    origin = report.alert.starts_at
    ranked = report.ranked_evidence()
    links = grafana or GrafanaLinks()
    views = {e.id: evidence_view(e, origin, explore_links(e, report.alert, links, now=now)) for e in ranked}
    shown = [views[e.id] for e in ranked[:MAX_EVIDENCE]]
    hypotheses = [
        HypothesisView(
            title=one_line(h.title, MAX_TITLE),
            confidence_pct=round(h.confidence * 100),
            evidence=[views[i] for i in h.evidence[:MAX_ITEMS] if i in views],
            next_steps=[clean(s, MAX_LABEL) for s in h.next_steps[:MAX_ITEMS]],
        )
        for h in sorted(report.hypotheses, key=lambda h: h.confidence, reverse=True)[:MAX_ITEMS]
    ]
    history = report.history
    alert = report.alert
    return ReportPage(
        id=report.id,
        alertname=one_line(alert.alertname, MAX_TITLE),
        status=report.status.value,
        alert_status=alert.status.value,
        severity=one_line(alert.severity, 40),
        starts_label=fmt_time(alert.starts_at),
        ends_label=fmt_time(report.resolved_at or alert.ends_at),
        duration_label=_duration(report, now),
        summary=clean(report.summary, MAX_SUMMARY),
        labels=_pairs(alert.labels),
        annotations=_pairs(alert.annotations),
        generator_url=safe_url(alert.generator_url),
        hypotheses=hypotheses,
        next_steps=[clean(s, MAX_LABEL) for s in report.next_steps[:MAX_ITEMS]],
        evidence=shown,
        evidence_hidden=max(0, len(ranked) - len(shown)),
        timeline=_timeline(report, views),
        chart=build_chart(report.evidence, origin),
        runbooks=[
            RunbookView(
                title=one_line(r.title, MAX_TITLE),
                source=one_line(r.source, MAX_TITLE),
                section=one_line(r.section, MAX_TITLE),
                score=f"{r.score:.2f}",
                excerpt=clean(r.excerpt, 1_500),
                url=safe_url(r.url),
            )
            for r in report.runbooks[:MAX_ITEMS]
        ],
        history=HistoryView(
            frequency=history.frequency,
            count=history.count,
            window_days=history.window_days,
            last_fired_label=fmt_time(history.last_fired_at),
            last_summary=one_line(history.last_summary, MAX_LABEL),
            last_report_id=history.last_report_id if _REPORT_ID.match(history.last_report_id or "") else None,
        ),
        sources=[
            SourceView(
                name=one_line(name, 60),
                ok=status.ok,
                ms=f"{status.ms:.0f}",
                requests=status.requests,
                error=one_line(status.error, MAX_LABEL),
                state=status.state,
            )
            for name, status in sorted(report.sources.items())[:MAX_ITEMS]
        ],
        llm=(
            LlmView(
                model=one_line(report.llm.model, 120),
                calls=report.llm.calls,
                input_tokens=report.llm.input_tokens,
                output_tokens=report.llm.output_tokens,
                skipped_reason=one_line(report.llm.skipped_reason, MAX_LABEL),
                notes=tuple(one_line(n, MAX_LABEL) for n in report.llm.notes),
            )
            if report.llm
            else None
        ),
        delivery=_delivery(report),
        created_label=fmt_time(report.created_at),
        updated_label=fmt_time(report.updated_at),
        link_query=link_query,
        report_url=report_url,
        silence_url=safe_url(alert.silence_url),
        dashboard_url=dashboard_link(alert, links),
    )


def build_annotation_context(report: Report, link: str, *, summary_chars: int = 400) -> AnnotationContext:
    """The context of the annotation text; ``summary_chars`` bounds the longest part."""
    top = max(report.hypotheses, key=lambda h: h.confidence, default=None)
    summary = report.summary or report.alert.annotations.get("summary", "") or "triage in progress"
    return AnnotationContext(
        alertname=one_line(report.alert.alertname, 120),
        status=report.status.value,
        summary=one_line(summary, summary_chars),
        hypothesis=one_line(top.title, 200) if top else "",
        confidence_pct=round(top.confidence * 100) if top else None,
        link=link,
    )


def build_report_row(report: Report, href: str) -> ReportRow:
    return ReportRow(
        id=report.id,
        href=href,
        alertname=one_line(report.alert.alertname, 120),
        severity=one_line(report.alert.severity, 40),
        status=report.status.value,
        starts_label=fmt_time(report.alert.starts_at),
        summary=one_line(report.summary, 200),
        target=one_line(alert_target(report.alert), 120),
    )
