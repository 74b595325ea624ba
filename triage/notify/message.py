"""The short notification of one report: a title (status, alert, target, severity) and a few plain-text lines.

Plain text, because the same message goes to ntfy, chat services and email, and every service renders Markdown
differently or not at all. Every value is redacted and put on one bounded line.
"""

from __future__ import annotations

from dataclasses import dataclass

from reports.digest import AlertGroup, Digest
from reports.models import NotifyEvent, Report
from reports.redact import redact_text
from reports.text import fmt_duration, one_line
from triage.notify.apprise_sender import Kind

TITLE_CHARS = 200
SUMMARY_CHARS = 300
CAUSE_CHARS = 200


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    kind: Kind


def _kind(report: Report, event: NotifyEvent) -> Kind:
    if event == "resolved":
        return "success"
    return "failure" if report.alert.severity.lower() in ("critical", "page", "high", "error") else "warning"


def top_cause(report: Report) -> str:
    """The most likely cause: the top hypothesis with its confidence, else the strongest evidence, else empty."""
    top = max(report.hypotheses, key=lambda h: h.confidence, default=None)
    if top is not None:
        return f"{one_line(top.title, CAUSE_CHARS)} ({round(top.confidence * 100)}%)"
    ranked = report.ranked_evidence()
    if ranked and ranked[0].score > 0:
        return one_line(ranked[0].title, CAUSE_CHARS)
    return ""


def report_message(report: Report, event: NotifyEvent, link: str, *, held_back: int = 0) -> Message:
    """The message for ``event`` of ``report``; ``held_back`` counts messages the rate limit held since the last."""
    alert = report.alert
    status = "RESOLVED" if event == "resolved" else "FIRING"
    title = f"[{status}] {alert.alertname}"
    if alert.target:
        title += f" on {alert.target}"
    if alert.severity:
        title += f" ({alert.severity})"
    lines: list[str] = []
    if event == "resolved" and report.duration_s is not None:
        lines.append(f"Resolved after {fmt_duration(report.duration_s)}.")
    summary = report.summary or alert.annotations.get("summary", "")
    if summary:
        lines.append(one_line(summary, SUMMARY_CHARS))
    cause = top_cause(report)
    if cause and event == "triaged":
        lines.append(f"Most likely: {cause}")
    lines.append(f"Report: {link}")
    if held_back:
        noun = "notification" if held_back == 1 else "notifications"
        lines.append(f"({held_back} more {noun} held back by the rate limit since the last one.)")
    return Message(
        title=redact_text(one_line(title, TITLE_CHARS)), body=redact_text("\n".join(lines)), kind=_kind(report, event)
    )


DIGEST_LIST = 3


def _names(groups: list[AlertGroup]) -> str:
    shown = [f"{g.alertname}{' on ' + g.target if g.target else ''} ({g.count}x)" for g in groups[:DIGEST_LIST]]
    more = len(groups) - DIGEST_LIST
    return one_line(", ".join(shown) + (f" and {more} more" if more > 0 else ""), 400)


def digest_message(digest: Digest, link: str) -> Message:
    """The digest in a few plain lines: totals, noisiest, flapping, alerts without a cause, top causes, the link."""
    period = f"{digest.since:%Y-%m-%d} – {digest.until:%Y-%m-%d}"
    title = f"Alert digest {period}: {digest.total} alert{'' if digest.total == 1 else 's'}"
    lines = []
    if digest.total:
        overview = f"{digest.total} alerts in {len(digest.groups)} groups, {digest.firing} still firing"
        if digest.mttr_s is not None:
            overview += f"; mean time to resolve {fmt_duration(digest.mttr_s)}"
        lines.append(overview + ".")
    else:
        lines.append("No alert fired in this period.")
    if digest.noisiest:
        lines.append(f"Noisiest: {_names(digest.noisiest)}")
    if digest.flapping:
        lines.append(f"Flapping: {_names(digest.flapping)}")
    if digest.without_cause:
        lines.append(f"No actionable cause found (tuning candidates): {_names(digest.without_cause)}")
    if digest.causes:
        lines.append("Top causes: " + ", ".join(f"{c.kind} {c.count}" for c in digest.causes[:5]))
    lines.append(f"Digest: {link}")
    return Message(title=redact_text(title), body=redact_text("\n".join(lines)), kind="info")
