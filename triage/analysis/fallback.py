"""The deterministic analysis: what a report says when no LLM answer is available.

It is built only from the ranked evidence, the runbook matches and the history, so a report is complete and useful
with no LLM configured, with the LLM down, or with the hourly token budget spent.
"""

from __future__ import annotations

from reports.models import Alert, Evidence, History, RunbookMatch

TOP_EVIDENCE = 3
TOP_RUNBOOKS = 2
LINKED_RUNBOOK_STEP = "Open the runbook linked from the alert: "
MIN_NOTABLE_SCORE = 0.05


def _history_sentence(history: History) -> str:
    if history.frequency == "new":
        return f"It has not fired in the last {history.window_days} days."
    if history.frequency in ("rare", "frequent"):
        sentence = f"It fired {history.count} times in the last {history.window_days} days"
        if history.last_summary:
            sentence += f"; the last diagnosis was: {history.last_summary.strip()[:300]}"
        return sentence + "."
    return ""


def alert_subject(alert: Alert) -> str:
    """How a summary names the alert: ``HighDiskIO on instance pve1:9100``, or its name alone without a target."""
    target = alert.target
    return f"{alert.alertname}{' on ' + target if target else ''}"


def summarise(alert: Alert, evidence: list[Evidence], history: History) -> str:
    """A short plain summary: the alert, the strongest evidence, how often it fired before."""
    when = alert.starts_at.strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"{alert_subject(alert)} has been firing since {when}."]
    notable = [e for e in evidence if e.score >= MIN_NOTABLE_SCORE][:TOP_EVIDENCE]
    if notable:
        listed = "; ".join(f"{i}) {e.title}" for i, e in enumerate(notable, 1))
        parts.append(f"Strongest evidence: {listed}.")
    else:
        parts.append("No anomaly stood out in the collected evidence.")
    history_text = _history_sentence(history)
    if history_text:
        parts.append(history_text)
    return " ".join(parts)


def _runbook_step(match: RunbookMatch, alert_link: str | None) -> str:
    url = match.url or match.source
    if match.section:
        return (
            f"Read the runbook section “{match.section}” in {match.title}"
            + (f" ({match.url})" if match.url else "")
            + "."
        )
    # a match without a section is a whole document: the alert's own runbook_url, or an index hit with no headings
    if alert_link and url == alert_link:
        return f"{LINKED_RUNBOOK_STEP}{url}"
    return f"Open the runbook {match.title}: {url}"


def next_steps(alert: Alert, evidence: list[Evidence], runbooks: list[RunbookMatch]) -> list[str]:
    """Steps that follow from the data alone: the runbook first, then a look at the top evidence."""
    steps: list[str] = []
    alert_link = (alert.annotations.get("runbook_url") or "").strip() or None
    if alert_link:
        steps.append(f"{LINKED_RUNBOOK_STEP}{alert_link}")
    added = 0
    for match in runbooks:
        if added == TOP_RUNBOOKS:
            break
        step = _runbook_step(match, alert_link)
        if step not in steps:  # the runbook check repeats the alert's runbook_url as its first match
            steps.append(step)
            added += 1
    for item in [e for e in evidence if e.score >= MIN_NOTABLE_SCORE][:TOP_EVIDENCE]:
        steps.append(f"Check {item.title}" + (f" (query: {item.ref})" if item.ref else "") + ".")
    return steps
