"""Causes before their consequences: what the ranking cannot see item by item.

Ranking weighs each finding alone, by its size and its closeness to the alert. Two patterns need the findings
together:

- **One event, two findings.** A Proxmox task and the node's log line announcing it (``starting task
  UPID:…:qmreboot:460:…``) are the same event: the log line is dropped, the task (with its outcome) stays.
- **A change and what applied it.** A deliberate change (a configuration, an upgrade, a deployment, a migration, a
  rollback) that is followed within :data:`CHAIN_MIN` by a restart, reboot, stop or OOM kill of the same place, or
  by a message that place never logged before, caused them: a memory limit lowered, then a reboot, then OOM kills;
  a database upgraded, then restarted into crash recovery; a new version deployed, then a panic it never had. Both must be about the alert's target (``about_target``: its own logs, a neighbour's line
  naming it, a Proxmox task of its guest) or found on the same place (``where``), so a change is never
  credited with another host's restart.
- **An announcement and its mark on the metrics.** A message a place never logged before, said once or a few times
  (:data:`ANNOUNCE_MAX`), right before a series of the same place left its usual level (from
  :data:`ANNOUNCE_BEFORE_MIN` before to :data:`ANNOUNCE_AFTER_MIN` after the line): the message names the activity
  ("resilver started", "reindex begins"), the shift is its footprint. A flood of lines is not an announcement, and
  a configured limit that was lowered (``data["limit_lowered"]``) is a setting someone changed, not the footprint
  of an activity: the restart that applied it does not explain it.

- **Maintenance a backup competes with.** A PBS garbage collection, verification, prune or sync that was already
  running on a datastore when a backup into the same datastore (``data["store"]``) started: both read and write
  the same disks, so the backup crawls (and holds up the guest it copies) while the maintenance runs.

- **An error that names where it comes from.** A line of the target that names another place of the neighbourhood
  (``connect ECONNREFUSED 10.0.24.20:5432``, ``nfs: server apollo not responding``; ``points_at``) sends
  the look there: the strongest finding of that place from :data:`POINTED_BEFORE_MIN` before the line to
  :data:`POINTED_AFTER_MIN` after it is what the target suffers from.

In all of them, the later or bigger finding would outrank the one that explains it, so the explaining finding takes
the score of the strongest finding it explains (a hair above it) and says what followed. Several findings that
explain the same one are ordered by time, earliest first: a package list announced before the restart it led to.

The facts read from the findings' ``data`` are :mod:`triage.evidence_facts`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import timedelta

from reports.models import Evidence
from triage.evidence_facts import Facts, facts, facts_data

CHAIN_MIN = 20.0
# a cause ranks just above the consequence it explains
LEAD = 1.02
ACTIONS = frozenset({"config", "upgrade", "deploy", "migration", "rollback"})
CONSEQUENCES = frozenset({"reboot", "restart", "start", "stop", "oom"})
ANNOUNCE_MAX = 3
ANNOUNCE_BEFORE_MIN = 1.0
ANNOUNCE_AFTER_MIN = 5.0
# PBS maintenance (``changes``' kinds) that shares a datastore's disks with the backups written into it
MAINTENANCE = frozenset({"garbage collection", "verify", "prune", "sync"})
POINTED_BEFORE_MIN = 15.0
POINTED_AFTER_MIN = 2.0
_UPID = re.compile(r"UPID:[^\s:]+:[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8}:[^\s]+")


def _upid_key(upid: str) -> str:
    # node, pid, pstart and start time identify a task; what follows (type, id, user) may be cut in a log line
    return ":".join(upid.split(":")[:5])


def same_events(evidence: Sequence[Evidence]) -> list[Evidence]:
    """``evidence`` without log findings that only announce a Proxmox task also reported as a task."""
    tasks = {_upid_key(upid) for e in evidence if (upid := facts(e).upid) is not None}
    if not tasks:
        return list(evidence)
    kept: list[Evidence] = []
    for item in evidence:
        named = {_upid_key(m) for m in _UPID.findall(item.title)} if item.source == "loki" else set()
        if named and named <= tasks:
            continue
        kept.append(item)
    return kept


def _first_said(effect: Evidence, effect_facts: Facts) -> bool:
    """``effect`` is a log message its place never logged before (not itself a change or a restart)."""
    return effect.source == "loki" and effect.kind == "log_pattern" and effect_facts.new is True


def _applied(cause: Evidence, effect: Evidence, cause_facts: Facts, effect_facts: Facts) -> bool:
    """``cause`` is a deliberate change of a place and ``effect`` a restart, reboot or OOM kill of it, or a message it
    never logged before, soon after: both about the target, or both found on the same place."""
    if cause.kind not in ACTIONS:
        return False
    if effect.kind not in CONSEQUENCES and not _first_said(effect, effect_facts):
        return False
    where = cause_facts.where
    same_place = where is not None and effect_facts.where == where
    if not (same_place or (cause_facts.about_target and effect_facts.about_target)):
        return False
    assert cause.at is not None and effect.at is not None
    return cause.at <= effect.at <= cause.at + timedelta(minutes=CHAIN_MIN)


def _announced(cause: Evidence, effect: Evidence, cause_facts: Facts, effect_facts: Facts) -> bool:
    """``cause`` is a new message said a few times and ``effect`` a series of the same place that moved right after."""
    count = cause_facts.count
    if cause.source != "loki" or not cause_facts.new or count is None or count > ANNOUNCE_MAX:
        return False
    where = cause_facts.where
    if effect.kind != "metric_shift" or where is None or effect_facts.where != where:
        return False
    if effect_facts.limit_lowered is not None:
        return False
    assert cause.at is not None and effect.at is not None
    before, after = timedelta(minutes=ANNOUNCE_BEFORE_MIN), timedelta(minutes=ANNOUNCE_AFTER_MIN)
    return cause.at - before <= effect.at <= cause.at + after


def _contended(cause: Evidence, effect: Evidence, cause_facts: Facts, effect_facts: Facts) -> bool:
    """``cause`` is PBS maintenance of a datastore that was running when ``effect``, a backup into it, started."""
    if cause.source != "pbs" or cause.kind not in MAINTENANCE or effect.kind != "backup":
        return False
    store = cause_facts.store
    if not store or effect_facts.store != store:
        return False
    began, ended, backup_began = cause_facts.active_from, cause_facts.active_until, effect_facts.active_from
    if began is None or backup_began is None:
        return False
    return began <= backup_began and (ended is None or backup_began <= ended)


def _pointed(ranked: Sequence[tuple[Evidence, Facts]]) -> list[tuple[Evidence, Evidence]]:
    """``(cause, effect)``: for each target line naming other places, the strongest finding of each named place
    around it."""
    links: list[tuple[Evidence, Evidence]] = []
    for effect, effect_facts in ranked:
        named = effect_facts.points_at
        if effect.at is None or not named:
            continue
        earliest = effect.at - timedelta(minutes=POINTED_BEFORE_MIN)
        latest = effect.at + timedelta(minutes=POINTED_AFTER_MIN)
        for where in named:
            there = [
                e
                for e, known in ranked
                if known.where == where and known.place != "target" and e.at is not None and earliest <= e.at <= latest
            ]
            best = max(there, key=lambda e: e.score, default=None)
            if best is not None:
                links.append((best, effect))
    return links


def causes_first(ranked: Sequence[Evidence]) -> list[Evidence]:
    """Ranked ``ranked`` with each finding that explains others (a change and what applied it, an announcement and
    its mark on the metrics, maintenance a backup competes with, the place a target's error names) lifted just above
    the strongest of them; best first."""
    dated = [(e, facts(e)) for e in ranked if e.at is not None]
    links = [
        (c, e)
        for c, cf in dated
        for e, ef in dated
        if e is not c and (_applied(c, e, cf, ef) or _announced(c, e, cf, ef) or _contended(c, e, cf, ef))
    ]
    links += _pointed(dated)
    strongest: dict[str, tuple[Evidence, Evidence]] = {}
    for cause, effect in links:
        if cause.id not in strongest or effect.score > strongest[cause.id][1].score:
            strongest[cause.id] = (cause, effect)
    lifted: dict[str, Evidence] = {}
    for cause, effect in strongest.values():
        if effect.score <= cause.score:
            continue
        assert cause.at is not None and effect.at is not None
        minutes = (effect.at - cause.at).total_seconds() / 60
        when = f"{minutes:.0f} min later" if minutes >= 0 else f"{-minutes:.0f} min before"
        lifted[cause.id] = cause.model_copy(
            update={
                "score": round(min(1.0, effect.score * LEAD), 4),
                "detail": f"{cause.detail}; explains, {when}: {effect.title[:160]}".lstrip("; "),
                "data": {**cause.data, **facts_data(consequence=effect.id)},
            }
        )
    result = [lifted.get(e.id, e) for e in ranked]
    # findings lifted to the same score explain the same thing: the earliest set the others off; other ties keep the
    # ranking's order (the sort is stable)
    result.sort(key=lambda e: (-e.score, e.at.timestamp() if e.id in lifted and e.at is not None else math.inf))
    return result
