"""The triage pipeline: plan → gather → rank → analyse, one alert in, one complete report out.

Every step degrades instead of failing: an unconfigured source skips its checks, a failing or slow one becomes an
``ok: false`` source entry, and the analysis falls back to a deterministic summary. So ``triage`` returns a full
report whenever it returns at all.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from reports.models import Alert, History, Report, ReportStatus, utcnow
from triage.deps import Deps
from triage.pipeline.chains import causes_first, same_events
from triage.pipeline.checks.check_context import CheckContext
from triage.pipeline.gather import gather
from triage.pipeline.plan import make_plan
from triage.pipeline.ranking import rank, signal_onset
from triage.settings import TriageSettings

log = logging.getLogger(__name__)


async def triage(
    alert: Alert,
    deps: Deps,
    settings: TriageSettings,
    *,
    now: datetime | None = None,
    report: Report | None = None,
) -> Report:
    """Triage ``alert`` and return its report (``report`` given: the received report of it, filled in)."""
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    plan = make_plan(alert, settings, now=now)
    ctx = CheckContext(
        alert=alert, plan=plan, deps=deps, now=now, history_days=settings.history_days, settings=settings
    )
    gathered = await gather(ctx, plan.checks, check_timeout_s=settings.check_timeout_s, deadline_s=settings.deadline_s)
    sources = gathered.sources
    evidence = same_events(gathered.evidence)
    onset = signal_onset(evidence, alert.starts_at, allowance_min=settings.slow_burn_min)
    ranked = causes_first(rank(evidence, alert.starts_at, onset=onset, persisting_half_life_min=settings.slow_burn_min))
    runbooks = gathered.runbooks
    history = gathered.history or History(window_days=settings.history_days)
    analysis = await deps.analyser.analyse(alert, ranked, runbooks, history, now=now)
    base = report or Report(id=alert.occurrence_key, alert=alert)
    done = base.model_copy(
        update={
            "status": ReportStatus.resolved if base.status == ReportStatus.resolved else ReportStatus.triaged,
            "summary": analysis.summary,
            "hypotheses": analysis.hypotheses,
            "next_steps": analysis.next_steps,
            "evidence": [*ranked, *analysis.followup],
            "runbooks": runbooks,
            "history": history,
            "sources": sources,
            "llm": analysis.llm,
            "updated_at": utcnow(),
        }
    )
    log.info(
        "triaged",
        extra={
            "fingerprint": alert.fingerprint,
            "report_id": done.id,
            "evidence": len(ranked),
            "failed_sources": sorted(name for name, s in sources.items() if s.state in ("failed", "timeout")),
            "llm_skipped": analysis.llm.skipped_reason if analysis.llm else None,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return done
