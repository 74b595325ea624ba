"""The order of a report's hypotheses: those that explain the alert before those that only restate it.

An alert is not explained by its own symptom. A hypothesis whose every cited item is the alert's own signal (the
``alert_signal`` check's reading of the rule's query) or evidence the checks weighed as the symptom (the resource
the alert measures on its own target, the log line its rule counts: ``data["symptom"]``) says again what the alert
says; one citing anything else points at something that may have led to it. :func:`explaining_first` moves the
first kind below the second, keeping the answer's order within each group and every hypothesis.
"""

from __future__ import annotations

from collections.abc import Mapping

from reports.models import Evidence, Hypothesis

ALERT_SIGNAL_KIND = "alert_signal"
NOTE_REORDERED = (
    "hypotheses citing only the alert's own signal or symptom were placed after those citing other evidence"
)


def restates_alert(item: Evidence) -> bool:
    """Whether ``item`` only shows the alert itself: the alert's own query (kind ``alert_signal``, with or without
    data) or evidence weighed as the alert's symptom (``data["symptom"]`` set by the checks).

    The alert query's breakdown (kind ``breakdown``: which client, disk or database carries the change) is not
    counted: it says where the change comes from, which the alert does not.
    """
    return item.kind == ALERT_SIGNAL_KIND or item.data.get("symptom") is True


def explains(hypothesis: Hypothesis, evidence: Mapping[str, Evidence]) -> bool:
    """Whether ``hypothesis`` cites at least one item that does not restate the alert (an id not in ``evidence``
    is not known to restate it, so it counts as explaining)."""
    return any(i not in evidence or not restates_alert(evidence[i]) for i in hypothesis.evidence)


def explaining_first(hypotheses: list[Hypothesis], evidence: Mapping[str, Evidence]) -> tuple[list[Hypothesis], bool]:
    """``hypotheses`` with those that explain the alert first, each group in its given order; and whether the order
    changed. ``evidence``: the report's items by id."""
    explaining = [h for h in hypotheses if explains(h, evidence)]
    restating = [h for h in hypotheses if not explains(h, evidence)]
    ordered = [*explaining, *restating]
    return ordered, any(a is not b for a, b in zip(ordered, hypotheses, strict=True))
