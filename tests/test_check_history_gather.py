"""History and runbook checks, and gathering checks under deadlines with failures kept out of the job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reports.models import Alert, Evidence, History, Report, RunbookMatch
from reports.store import StoreError
from reports.store.sqlite import SqliteStore
from tests.support.engine import EngineWorld, make_alert
from triage.pipeline import gather as gather_module
from triage.pipeline.checks import CHECKS, CheckSpec, history, runbook_search
from triage.pipeline.checks.check_context import CheckContext
from triage.pipeline.checks.result import NO_EVIDENCE, CheckResult
from triage.pipeline.gather import gather


@pytest.fixture
async def world() -> AsyncIterator[EngineWorld]:
    w = EngineWorld()
    yield w
    await w.aclose()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "reports.db")
    await s.init()
    yield s
    await s.close()


async def _fired_before(store: SqliteStore, world: EngineWorld, times: int, summary: str = "") -> None:
    for n in range(times):
        earlier = make_alert({"instance": "web1:9100"}, starts_at=world.ago(60 * 24 * (n + 1)))
        await store.save(Report(id=earlier.occurrence_key, alert=earlier, summary=summary or f"diagnosis {n}"))


@pytest.mark.parametrize(("times", "frequency"), [(0, "new"), (2, "rare"), (7, "frequent")])
async def test_history_counts_earlier_reports_of_the_same_alert(
    world: EngineWorld, store: SqliteStore, times: int, frequency: str
) -> None:
    await _fired_before(store, world, times)
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)), world.deps(store=store))
    result = await history.run(ctx)
    assert result.history is not None
    assert (result.history.frequency, result.history.count) == (frequency, times)
    assert bool(result.evidence) == (frequency == "frequent")
    if times:
        assert result.history.last_summary == "diagnosis 0"
        assert result.history.last_fired_at == world.ago(60 * 24)


async def test_history_ignores_the_report_of_this_very_occurrence(world: EngineWorld, store: SqliteStore) -> None:
    alert = make_alert({"instance": "web1:9100"}, starts_at=world.ago(5))
    await store.record_alert(alert)
    ctx = world.context(alert, world.deps(store=store))
    found = (await history.run(ctx)).history
    assert found is not None and found.frequency == "new"


class FakeIndex:
    def __init__(self, matches: list[RunbookMatch]) -> None:
        self.matches = matches
        self.seen: list[Alert] = []

    async def aclose(self) -> None:
        pass

    async def matches_for_alert(self, alert: Alert, limit: int = 5) -> list[RunbookMatch]:
        self.seen.append(alert)
        return self.matches[:limit]


async def test_runbook_linked_from_the_alert_comes_first_then_index_matches(world: EngineWorld) -> None:
    index = FakeIndex([RunbookMatch(title="Disk IO", source="runbooks/disk.md", section="Backups", score=0.7)])
    alert = make_alert(
        {"instance": "web1:9100"}, starts_at=world.ago(5), annotations={"runbook_url": "https://wiki.lan/rb/cpu"}
    )
    ctx = world.context(alert, world.deps(runbooks=index))
    result = await runbook_search.run(ctx)
    assert result.evidence == ()
    assert [m.title for m in result.runbooks] == ["Runbook linked from the alert", "Disk IO"]
    assert result.runbooks[0].url == "https://wiki.lan/rb/cpu"


async def test_a_runbook_url_that_is_not_http_is_not_linked(world: EngineWorld) -> None:
    alert = make_alert({}, starts_at=world.ago(5), annotations={"runbook_url": "javascript:alert(1)"})
    ctx = world.context(alert, world.deps())
    assert (await runbook_search.run(ctx)).runbooks == ()


def _spec(name: str, fn: object) -> CheckSpec:
    return CheckSpec(name, fn, ("proxmox",))  # type: ignore[arg-type]


async def test_slow_failing_and_unconfigured_checks_become_source_entries(
    world: EngineWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    linked = RunbookMatch(title="Runbook linked from the alert", source="x", section="", score=1.0)

    async def fine(ctx: CheckContext) -> CheckResult:
        return CheckResult((Evidence(id="same", source="t", kind="k", title="fine"),), runbooks=(linked,))

    async def also_fine(ctx: CheckContext) -> CheckResult:
        seen = History(frequency="rare", count=2, window_days=30)
        return CheckResult((Evidence(id="same", source="t", kind="k", title="also fine"),), history=seen)

    async def slow(ctx: CheckContext) -> CheckResult:
        await asyncio.sleep(30)
        return NO_EVIDENCE

    async def broken(ctx: CheckContext) -> CheckResult:
        raise KeyError("secret-token-value")

    checks = {
        "fine": _spec("fine", fine),
        "also_fine": _spec("also_fine", also_fine),
        "slow": _spec("slow", slow),
        "broken": _spec("broken", broken),
        "unconfigured": CheckSpec("unconfigured", fine, ("loki",)),
    }
    monkeypatch.setattr(gather_module, "CHECKS", checks)
    ctx = world.context(make_alert({}, starts_at=world.ago(5)), world.deps("proxmox"))
    started = asyncio.get_running_loop().time()
    gathered = await gather(ctx, list(checks), check_timeout_s=0.3, deadline_s=5)
    sources = gathered.sources
    assert asyncio.get_running_loop().time() - started < 2
    assert sorted(e.id for e in gathered.evidence) == ["same", "same-2"]
    assert list(gathered.results) == ["fine", "also_fine"]
    assert gathered.runbooks == [linked]
    assert gathered.history is not None and gathered.history.count == 2
    assert sources["fine"].ok and sources["also_fine"].ok
    assert sources["slow"].ok is False and sources["slow"].error == "did not finish within 0.3s"
    assert sources["broken"].ok is False and sources["broken"].error == "failed: KeyError"
    assert sources["unconfigured"].error == "not configured (set LOKI_URL)"
    states = {name: status.state for name, status in sources.items()}
    assert states == {
        "fine": "ok",
        "also_fine": "ok",
        "slow": "timeout",
        "broken": "failed",
        "unconfigured": "not_configured",
    }


async def test_the_overall_deadline_stops_checks_that_are_still_running(
    world: EngineWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(ctx: CheckContext) -> CheckResult:
        await asyncio.sleep(30)
        return NO_EVIDENCE

    monkeypatch.setattr(gather_module, "CHECKS", {"slow": _spec("slow", slow)})
    ctx = world.context(make_alert({}, starts_at=world.ago(5)), world.deps("proxmox"))
    sources = (await gather(ctx, ["slow"], check_timeout_s=10, deadline_s=0.2)).sources
    assert sources["slow"].error == "did not finish within the triage deadline of 0.2s"
    assert sources["slow"].state == "timeout"


def test_every_check_has_a_docstring() -> None:
    for spec in CHECKS.values():
        assert spec.run.__doc__, spec.name


class BrokenStore:
    async def history(self, **kwargs: object) -> list[Report]:
        raise StoreError("database is locked")


class BrokenIndex:
    async def aclose(self) -> None:
        pass

    async def matches_for_alert(self, alert: Alert, limit: int = 5) -> list[RunbookMatch]:
        raise RuntimeError("index unavailable")


async def test_a_failing_store_or_index_fails_only_its_own_check(world: EngineWorld) -> None:
    alert = make_alert({"instance": "web1:9100"}, starts_at=world.ago(5))
    ctx = world.context(alert, world.deps("proxmox", store=BrokenStore(), runbooks=BrokenIndex()))
    gathered = await gather(ctx, ["history", "runbooks", "backups"], check_timeout_s=5, deadline_s=10)
    sources = gathered.sources
    assert sources["history"].ok is False and sources["history"].error == "failed: StoreError"
    assert sources["runbooks"].ok is False and sources["runbooks"].error == "failed: RuntimeError"
    assert sources["backups"].ok is True
    assert gathered.history is None and gathered.runbooks == []
