"""Runbook matches for a report: the runbook index's hits as ``RunbookMatch`` models, with browsable links.

The index in ``tools/`` knows nothing of reports; this adapter turns its hits into the report's model and builds a
link when ``RUNBOOKS_BASE_URL`` says where users browse the indexed folders (a Git web UI, a wiki export).
"""

from __future__ import annotations

from urllib.parse import quote

from reports.models import Alert, RunbookMatch
from tools.runbooks.index import RunbookHit, RunbookIndex


def hit_to_match(hit: RunbookHit, base_url: str | None = None) -> RunbookMatch:
    """One index hit as the report's model; ``base_url`` + the hit's source path (+ anchor) is the link."""
    url = None
    if base_url:
        url = f"{base_url.rstrip('/')}/{quote(hit.source)}" + (f"#{quote(hit.anchor)}" if hit.anchor else "")
    return RunbookMatch(
        title=hit.title,
        source=hit.source,
        section=hit.section,
        score=round(hit.score, 4),
        anchor=hit.anchor or None,
        excerpt=hit.excerpt,
        url=url,
    )


class RunbookMatcher:
    """What the runbook check needs from the index: the sections that fit an alert, as report models."""

    def __init__(self, index: RunbookIndex, base_url: str | None = None) -> None:
        self.index = index
        self.base_url = base_url

    async def matches_for_alert(self, alert: Alert, limit: int = 5) -> list[RunbookMatch]:
        """Hybrid matches for the alert; the section its ``runbook_url`` annotation points at comes first."""
        result = await self.index.search_alert(alert.alertname, alert.labels, alert.annotations, limit)
        return [hit_to_match(hit, self.base_url) for hit in result.hits]

    async def aclose(self) -> None:
        await self.index.aclose()
