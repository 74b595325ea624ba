"""Ranking: one score per evidence item from the size of its anomaly and its closeness in time to the alert's start.

Checks report how unusual a finding is as ``Evidence.score`` (0..1, see :func:`saturate` for turning a z-score or a
relative shift into one). :func:`rank` keeps that value as the ``anomaly`` fact, multiplies it by a time proximity
weight and orders the items. Proximity halves every ``half_life_min`` before ``starts_at``; findings after the start
decay twice as fast and count less, because they are more often consequences than causes. A floor keeps a large
anomaly far from the start visible. Items without a time (current state, such as a guest's memory limit) get a
fixed middle weight.

The facts ranking reads from an item's ``data`` (its anomaly, when it was active, the signal's onset, whether it
persists) are :mod:`triage.evidence_facts`. What of the ranked list the LLM sees is
:mod:`triage.analysis.evidence_view`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from reports.models import Evidence
from triage.evidence_facts import facts, facts_data

HALF_LIFE_MIN = 15.0
AFTER_START_FACTOR = 0.8
PROXIMITY_FLOOR = 0.15
# findings without a time describe the current state, read moments after the alert fired
UNDATED_PROXIMITY = 0.8


def saturate(value: float, half: float) -> float:
    """Map a non-negative magnitude to 0..1, reaching 0.5 at ``half`` and approaching 1 for large values."""
    magnitude = abs(value)
    if not math.isfinite(magnitude):
        return 1.0
    if half <= 0:
        return 1.0 if magnitude > 0 else 0.0
    return magnitude / (magnitude + half)


def proximity(
    at: datetime | None,
    starts_at: datetime,
    *,
    half_life_min: float = HALF_LIFE_MIN,
    onset: datetime | None = None,
) -> float:
    """Weight 0..1 of a finding at ``at`` for an alert that started at ``starts_at`` and whose signal began moving
    at ``onset`` (default: the start): full between the two, halving every ``half_life_min`` before the onset."""
    if at is None:
        return UNDATED_PROXIMITY
    offset_min = (at - starts_at).total_seconds() / 60.0
    anchor_min = min(0.0, (onset - starts_at).total_seconds() / 60.0) if onset is not None else 0.0
    if offset_min <= 0:
        decay: float = 0.5 ** (max(0.0, anchor_min - offset_min) / half_life_min)
    else:
        decay = AFTER_START_FACTOR * 0.5 ** (offset_min / (half_life_min / 2))
    return PROXIMITY_FLOOR + (1.0 - PROXIMITY_FLOOR) * decay


def anomaly_of(item: Evidence) -> float:
    """The check-provided anomaly size of an item (kept in ``data`` once the item has been ranked)."""
    anomaly = facts(item).anomaly
    value = item.score if anomaly is None else anomaly
    return float(min(1.0, max(0.0, value)))


def effective_time(item: Evidence, starts_at: datetime) -> datetime | None:
    """The time that counts for proximity: ``at``, or for a finding that lasted (``active_from`` /
    ``active_until``; no end = still going) the point of it nearest the alert's start."""
    known = facts(item)
    begin = known.active_from
    if begin is None:
        return item.at
    end = known.active_until
    if begin <= starts_at and (end is None or end >= starts_at):
        return starts_at
    edge = begin if begin > starts_at else end if end is not None else begin
    return edge.astimezone(starts_at.tzinfo)


def signal_onset(evidence: Iterable[Evidence], starts_at: datetime, *, allowance_min: float) -> datetime | None:
    """When the alert's own signal began moving (its ``onset``), no earlier than ``allowance_min`` plus the rule's
    pending period (``for``, when the signal knows it) before the start."""
    for item in evidence:
        known = facts(item) if item.kind == "alert_signal" else None
        if known is not None and known.onset is not None:
            pending_min = known.pending_s / 60 if known.pending_s is not None else 0.0
            earliest = starts_at - timedelta(minutes=allowance_min + max(0.0, pending_min))
            return max(earliest, min(starts_at, known.onset.astimezone(starts_at.tzinfo)))
    return None


def rank(
    evidence: Iterable[Evidence],
    starts_at: datetime,
    *,
    onset: datetime | None = None,
    persisting_half_life_min: float = HALF_LIFE_MIN,
) -> list[Evidence]:
    """Score every item (anomaly × proximity to the span from the signal's ``onset`` to the alert's start) and return
    them all, best first. Ranking twice gives the same result.

    A condition that began before the alert and still holds (``persisting``: a level that moved and stayed
    moved) fades with ``persisting_half_life_min`` instead: it is present at the alert however early it began.
    """
    scored: list[tuple[float, float, str, Evidence]] = []
    for item in evidence:
        anomaly = anomaly_of(item)
        when = effective_time(item, starts_at)
        half_life = max(HALF_LIFE_MIN, persisting_half_life_min) if facts(item).persisting else HALF_LIFE_MIN
        weight = proximity(when, starts_at, onset=onset, half_life_min=half_life)
        score = round(anomaly * weight, 4)
        ranked = item.model_copy(
            update={"score": score, "data": {**item.data, **facts_data(anomaly=anomaly), "proximity": round(weight, 4)}}
        )
        distance = abs((when - starts_at).total_seconds()) if when else math.inf
        scored.append((-score, distance, item.id, ranked))
    scored.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in scored]
