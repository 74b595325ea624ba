"""What a check returns: its evidence, and for the checks that find them, runbook sections or the alert's history.

Runbooks and history are not observations, so they are not evidence: they go to their own parts of the report and,
in short, into the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from reports.models import Evidence, History, RunbookMatch


@dataclass(frozen=True)
class CheckResult:
    evidence: tuple[Evidence, ...]
    runbooks: tuple[RunbookMatch, ...] = ()
    history: History | None = None


NO_EVIDENCE = CheckResult(())
