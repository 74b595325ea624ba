"""The order of a report's hypotheses: the best supported first, and those that explain the alert before those that
only restate it or name what followed from a cause the report already holds.

A model's confidence alone is a weak order: a small model gives 0.8, 0.7, 0.6 to whatever it wrote first, second and
third. The ranking has already weighed every item (how unusual, how close to the start, what explains what), so a
hypothesis is weighed by the model's confidence times the score of the strongest item it cites
(:func:`support`): of two hypotheses the model is about as sure of, the one resting on the stronger evidence comes
first, while a model that is clearly surer of one (0.9 against 0.3) still decides.

An alert is not explained by its own symptom. A hypothesis whose every cited item is the alert's own signal (the
``alert_signal`` check's reading of the rule's query), evidence the checks weighed as the symptom (the resource the
alert measures on its own target, the log line its rule counts: the ``symptom`` fact), or a finding the ranking found
to follow from another one of the report (the ``consequence`` of a change, an announcement, contending maintenance or
a place a target's error names, :mod:`triage.pipeline.chains`) says again what the alert says or names a link of the
chain after its start; one citing anything else points at something that may have led to it. :func:`explaining_first`
moves the first kind below the second, keeping the given order within each group and every hypothesis.
"""

from __future__ import annotations

from collections.abc import Mapping

from reports.models import Evidence, Hypothesis
from triage.evidence_facts import facts

ALERT_SIGNAL_KIND = "alert_signal"
# an id the report does not hold (it was checked before) weighs as a follow-up result does
UNKNOWN_SCORE = 0.5
NOTE_WEIGHED = (
    "hypotheses are ordered by the model's confidence times the score of the strongest evidence each cites, which "
    "differs from the order of confidence alone"
)
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


def support(hypothesis: Hypothesis, evidence: Mapping[str, Evidence]) -> float:
    """The model's confidence in ``hypothesis`` times the ranking's score of the strongest item it cites."""
    scores = [evidence[i].score if i in evidence else UNKNOWN_SCORE for i in hypothesis.evidence]
    return hypothesis.confidence * max(scores, default=0.0)


def best_supported_first(
    hypotheses: list[Hypothesis], evidence: Mapping[str, Evidence]
) -> tuple[list[Hypothesis], list[str]]:
    """``hypotheses`` by :func:`support`, then those that explain the alert first (:func:`explaining_first`); and the
    notes that say where this differs from the order of the model's confidence."""
    by_confidence = sorted(hypotheses, key=lambda h: -h.confidence)
    weighed = sorted(hypotheses, key=lambda h: -support(h, evidence))
    ordered, moved = explaining_first(weighed, evidence)
    notes = [NOTE_WEIGHED] if [id(h) for h in weighed] != [id(h) for h in by_confidence] else []
    if moved:
        notes.append(NOTE_REORDERED)
    return ordered, notes
