"""Causes before their consequences: what the ranking cannot see item by item.

Ranking weighs each finding alone, by its size and its closeness to the alert. Two patterns need the findings
together:

- **One event, two findings.** A Proxmox task and the node's log line announcing it (``starting task
  UPID:…:qmreboot:460:…``) are the same event: the log line is dropped, the task (with its outcome) stays.
- **A change and what applied it.** A deliberate change to the target (its configuration, an upgrade, a deployment,
  a migration, a rollback) that is followed within :data:`CHAIN_MIN` by a restart, reboot, stop or OOM kill of the
  same target caused them: a memory limit lowered, then a reboot, then OOM kills. The later findings sit closer to
  the alert and would outrank it, so the change takes the score of its strongest consequence (a hair above it) and
  says what followed.

Only findings about the alert's own target take part (``data["about_target"]``: its own logs, a neighbour's line
naming it, a Proxmox task of its guest), so an unrelated change elsewhere is never promoted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

from reports.models import Evidence

CHAIN_MIN = 20.0
# a cause ranks just above the consequence it explains
LEAD = 1.02
ACTIONS = frozenset({"config", "upgrade", "deploy", "migration", "rollback"})
CONSEQUENCES = frozenset({"reboot", "restart", "start", "stop", "oom"})
_UPID = re.compile(r"UPID:[^\s:]+:[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8}:[^\s]+")


def _upid_key(upid: str) -> str:
    # node, pid, pstart and start time identify a task; what follows (type, id, user) may be cut in a log line
    return ":".join(upid.split(":")[:5])


def same_events(evidence: Sequence[Evidence]) -> list[Evidence]:
    """``evidence`` without log findings that only announce a Proxmox task also reported as a task."""
    tasks = {_upid_key(str(e.data["upid"])) for e in evidence if isinstance(e.data.get("upid"), str)}
    if not tasks:
        return list(evidence)
    kept: list[Evidence] = []
    for item in evidence:
        named = {_upid_key(m) for m in _UPID.findall(item.title)} if item.source == "loki" else set()
        if named and named <= tasks:
            continue
        kept.append(item)
    return kept


def causes_first(ranked: Sequence[Evidence]) -> list[Evidence]:
    """Ranked ``ranked`` with each deliberate change of the target lifted just above the strongest restart, reboot
    or OOM kill of the target that followed it within :data:`CHAIN_MIN`; best first."""
    ours = [e for e in ranked if e.data.get("about_target") and e.at is not None]
    lifted: dict[str, Evidence] = {}
    for cause in ours:
        if cause.kind not in ACTIONS or cause.at is None:
            continue
        horizon = cause.at + timedelta(minutes=CHAIN_MIN)
        followers = [e for e in ours if e.kind in CONSEQUENCES and e.at is not None and cause.at <= e.at <= horizon]
        strongest = max(followers, key=lambda e: e.score, default=None)
        if strongest is None or strongest.score <= cause.score:
            continue
        minutes = (strongest.at - cause.at).total_seconds() / 60 if strongest.at else 0.0
        lifted[cause.id] = cause.model_copy(
            update={
                "score": round(min(1.0, strongest.score * LEAD), 4),
                "detail": f"{cause.detail}; followed {minutes:.0f} min later by: {strongest.title[:160]}".lstrip("; "),
                "data": {**cause.data, "consequence": strongest.id},
            }
        )
    result = [lifted.get(e.id, e) for e in ranked]
    result.sort(key=lambda e: -e.score)  # stable: ties keep the ranking's order
    return result
