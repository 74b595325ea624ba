"""The deterministic analysis: what a report says when no LLM answer is available.

It is built only from the ranked evidence, the runbook matches and the history, so a report is complete and useful
with no LLM configured, with the LLM down, or with the hourly token budget spent.
"""

from __future__ import annotations

from reports.models import Alert, Evidence, History, RunbookMatch

TOP_EVIDENCE = 3
MIN_NOTABLE_SCORE = 0.05


def _target(alert: Alert) -> str:
    for key in ("vmid", "name", "container", "service", "instance", "host", "hostname", "node", "job"):
        value = alert.labels.get(key)
        if value:
            return f"{key} {value}"
    return ""


def _history_sentence(history: History) -> str:
    if history.frequency == "new":
        return f"It has not fired in the last {history.window_days} days."
    if history.frequency in ("rare", "frequent"):
        sentence = f"It fired {history.count} times in the last {history.window_days} days"
        if history.last_summary:
            sentence += f"; the last diagnosis was: {history.last_summary.strip()[:300]}"
        return sentence + "."
    return ""


def summarise(alert: Alert, evidence: list[Evidence], history: History) -> str:
    """A short plain summary: the alert, the strongest evidence, how often it fired before."""
    target = _target(alert)
    when = alert.starts_at.strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"{alert.alertname}{' on ' + target if target else ''} has been firing since {when}."]
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


def next_steps(alert: Alert, evidence: list[Evidence], runbooks: list[RunbookMatch]) -> list[str]:
    """Steps that follow from the data alone: the runbook first, then a look at the top evidence."""
    steps: list[str] = []
    runbook_url = alert.annotations.get("runbook_url")
    if runbook_url:
        steps.append(f"Follow the alert's runbook: {runbook_url}")
    for match in runbooks[:2]:
        steps.append(f"Read the runbook section “{match.section}” in {match.title}.")
    for item in [e for e in evidence if e.score >= MIN_NOTABLE_SCORE][:TOP_EVIDENCE]:
        steps.append(f"Check {item.title}" + (f" (query: {item.ref})" if item.ref else "") + ".")
    return steps
