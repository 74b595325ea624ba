"""The order of a report's hypotheses: those that explain the alert before those that only restate it or name what
followed from a cause the report already holds.

An alert is not explained by its own symptom. A hypothesis whose every cited item is the alert's own signal (the
``alert_signal`` check's reading of the rule's query), evidence the checks weighed as the symptom (the resource the
alert measures on its own target, the log line its rule counts: the ``symptom`` fact), or a finding the ranking found
to follow from another one of the report (the ``consequence`` of a change, an announcement, contending maintenance or
a place a target's error names, :mod:`triage.pipeline.chains`) says again what the alert says or names a link of the
chain after its start; one citing anything else points at something that may have led to it. :func:`explaining_first`
moves the first kind below the second, keeping the answer's order within each group and every hypothesis.
"""

from __future__ import annotations

from collections.abc import Mapping

from reports.models import Evidence, Hypothesis
from triage.evidence_facts import facts

ALERT_SIGNAL_KIND = "alert_signal"
NOTE_REORDERED = (
    "hypotheses citing only the alert's own signal or symptom, or what followed from a cause in the evidence, were "
    "placed after those citing other evidence"
)


def restates_alert(item: Evidence) -> bool:
    """Whether ``item`` only shows the alert itself: the alert's own query (kind ``alert_signal``, with or without
    data) or evidence weighed as the alert's symptom (the ``symptom`` fact the checks set).

    The alert query's breakdown (kind ``breakdown``: which client, disk or database carries the change) is not
    counted: it says where the change comes from, which the alert does not.
    """
    return item.kind == ALERT_SIGNAL_KIND or facts(item).symptom


def consequences(evidence: Mapping[str, Evidence]) -> set[str]:
    """The ids of findings another finding of ``evidence`` explains (its ``consequence`` fact)."""
    return {c for c in (facts(item).consequence for item in evidence.values()) if c is not None and c in evidence}


def explains(hypothesis: Hypothesis, evidence: Mapping[str, Evidence], followed: set[str] | None = None) -> bool:
    """Whether ``hypothesis`` cites at least one item that neither restates the alert nor is in ``followed`` (ids of
    findings explained by another; an id not in ``evidence`` is not known to restate it, so it counts as
    explaining)."""
    followed = followed or set()
    return any(i not in evidence or not (restates_alert(evidence[i]) or i in followed) for i in hypothesis.evidence)


def explaining_first(hypotheses: list[Hypothesis], evidence: Mapping[str, Evidence]) -> tuple[list[Hypothesis], bool]:
    """``hypotheses`` with those that explain the alert first, each group in its given order; and whether the order
    changed. ``evidence``: the report's items by id."""
    followed = consequences(evidence)
    # a stable sort: explaining (False) before restating (True), each group in its given order
    ordered = sorted(hypotheses, key=lambda h: not explains(h, evidence, followed))
    return ordered, any(a is not b for a, b in zip(ordered, hypotheses, strict=True))
