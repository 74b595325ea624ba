"""The facts of an evidence item that triage reads back: the ``Evidence.data`` keys ranking and chaining depend on.

Checks write these keys into ``Evidence.data`` beside check-specific ones the report only shows; ranking
(:mod:`triage.pipeline.ranking`), the chains of causes and consequences (:mod:`triage.pipeline.chains`) and the
checks that weigh their own findings read them back. :func:`facts_data` writes them, :func:`facts` reads them back as
a typed :class:`Facts`. The key strings are spelled here and nowhere else, so a misspelt fact is a type error, not a
silently different ranking.

The stored report's ``data`` keeps its form (docs/architecture.md, report JSON): the keys in the order the check
gives them, times as the epoch seconds the source gave (an int stays an int: a Proxmox task's ``starttime``; a log
line's time is a float), ``active_until`` null for "no end yet", ``points_at``, ``pending_s``, ``store`` and
``limit_lowered`` left out when there is nothing to say. Read back, times are UTC datetimes; a value of the wrong type counts as absent, as the readers
always took it (an unreadable ``anomaly`` counts as 0, flags are read by their truth, ``metric`` and ``target`` as
text whatever they hold), and so does a time that is no point in time (not finite, out of range).

Keys only written for the report (``proximity``, ``running_out``, ``z``, …) stay with their writers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack

from reports.models import Evidence


@dataclass(frozen=True, slots=True)
class Facts:
    """What triage reads back from an item's ``data``; each attribute is named as its key."""

    # the check's anomaly size, kept by ranking (None: not ranked yet, the item's score is the anomaly)
    anomaly: float | None = None
    # a finding that lasted: from when, and until when (None: still going)
    active_from: datetime | None = None
    active_until: datetime | None = None
    # the alert signal: when the rule's expression began moving, and its pending period (``for``) in seconds
    onset: datetime | None = None
    pending_s: float | None = None
    # a condition that began before the alert and still holds
    persisting: bool = False
    # the role of the place a finding was made on ("target", "node", …) and the place's name
    place: str | None = None
    where: str | None = None
    # about the alert's target: its own logs, a neighbour's line naming it, a Proxmox task of its guest
    about_target: bool = False
    # the other places a target's line names
    points_at: tuple[str, ...] = ()
    # a log pattern: never logged before, and how many lines it had
    new: bool = False
    count: int | None = None
    # a Proxmox or PBS task's id
    upid: str | None = None
    # a measure's name (its query key) and the target it was read from
    metric: str | None = None
    target: str | None = None
    # the PBS datastore a backup or a maintenance task works on
    store: str | None = None
    # a configured limit lowered: the share of it taken away (0..1)
    limit_lowered: float | None = None
    # weighed as the alert's own symptom
    symptom: bool = False
    # the id of the finding this one explains (set by the chains of causes)
    consequence: str | None = None


class Written(TypedDict, total=False):
    """The facts :func:`facts_data` writes; times as epoch seconds."""

    anomaly: float
    active_from: float
    active_until: float | None
    onset: float
    # left out when unknown or zero
    pending_s: float | None
    persisting: bool
    place: str
    where: str
    about_target: bool
    # left out when it names no place
    points_at: list[str]
    new: bool
    count: int
    upid: str
    metric: str
    target: str
    # left out when unknown
    store: str | None
    limit_lowered: float | None
    symptom: bool
    consequence: str


# facts not written when there is nothing to say (no place named, no pending period)
_LEFT_OUT_WHEN_EMPTY = frozenset({"points_at", "pending_s", "store", "limit_lowered"})


def facts_data(**written: Unpack[Written]) -> dict[str, Any]:
    """``Evidence.data`` entries for the facts given, in the order given, as the report JSON has them."""
    return {key: value for key, value in written.items() if value or key not in _LEFT_OUT_WHEN_EMPTY}


def facts(item: Evidence) -> Facts:
    """The facts of ``item``, read from its ``data`` once."""
    data = item.data
    return Facts(
        anomaly=_anomaly(data),
        active_from=_time(data.get("active_from")),
        active_until=_time(data.get("active_until")),
        onset=_time(data.get("onset")),
        pending_s=_seconds(data.get("pending_s")),
        persisting=bool(data.get("persisting")),
        place=_text(data.get("place")),
        where=_text(data.get("where")),
        about_target=bool(data.get("about_target")),
        points_at=_names(data.get("points_at")),
        new=bool(data.get("new")),
        count=_count(data.get("count")),
        upid=_text(data.get("upid")),
        metric=_shown(data, "metric"),
        target=_shown(data, "target"),
        store=_text(data.get("store")),
        limit_lowered=_seconds(data.get("limit_lowered")),
        symptom=data.get("symptom") is True,
        consequence=_text(data.get("consequence")),
    )


def _anomaly(data: Mapping[str, Any]) -> float | None:
    if "anomaly" not in data:
        return None
    try:
        return float(data["anomaly"])
    except (TypeError, ValueError):
        return 0.0


def _time(value: object) -> datetime | None:
    """Epoch seconds as a UTC time; not a number, not finite or out of range: None."""
    if not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _seconds(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _shown(data: Mapping[str, Any], key: str) -> str | None:
    """A name read as text, whatever its type (None: absent)."""
    return str(data[key]) if key in data else None


def _names(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _count(value: object) -> int | None:
    return value if isinstance(value, int) else None
