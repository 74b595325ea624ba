"""The log pattern check through Loki's patterns API: same findings as mining, fewer bytes, and mining whenever the
API is off, missing, failing or empty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest

from reports.models import Evidence
from tests.fakes.logql import LogQuery, parse
from tests.fakes.loki import FakeLoki
from tests.support.engine import EngineWorld, make_alert
from tools.loki import LokiClient
from triage.pipeline.checks import log_errors

WEB = {"job": "nginx", "host": "web1"}
NOW = datetime.now(UTC).replace(microsecond=0)
PATTERNS = "/loki/api/v1/patterns"
RANGE = "/loki/api/v1/query_range"


class EmptyPatterns(FakeLoki):
    """A Loki whose pattern ingester knows nothing yet (just started, or the streams are not sampled)."""

    def respond(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == PATTERNS:
            return httpx.Response(200, json={"status": "success", "data": []})
        return super().respond(request)


@pytest.fixture
async def worlds() -> AsyncIterator[Callable[[FakeLoki], EngineWorld]]:
    made: list[EngineWorld] = []

    def make(loki: FakeLoki) -> EngineWorld:
        world = EngineWorld(now=NOW, loki=loki)
        world.proxmox.add_node("pve1")
        made.append(world)
        return world

    yield make
    for world in made:
        await world.aclose()


def busy_web(world: EngineWorld) -> None:
    """Three hours of access lines every 5 s (more than one read of TRIAGE_LOG_LINES_MAX holds) and a new failure."""
    lines = [(world.ago(m / 12), f"GET /index.html 200 {m % 97}ms") for m in range(1, 180 * 12)]
    world.loki.push_many(WEB, lines)
    world.loki.push_many(
        WEB, [(world.ago(8 - i * 0.2), f"upstream 10.0.0.{i}:5432 connect failed: refused") for i in range(20)]
    )


async def check(world: EngineWorld) -> tuple[list[Evidence], int]:
    deps = world.deps("loki")
    items = (
        await log_errors.run(world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)), deps))
    ).evidence
    assert isinstance(deps.logs, LokiClient)
    return items, deps.logs.stats.bytes_received


def shape(items: list[Evidence]) -> list[tuple[str, str, str, dict[str, object]]]:
    keys = ("count", "before", "new", "template", "place", "where", "persisting")
    return [(e.id, e.kind, e.title, {k: e.data[k] for k in keys}) for e in items]


def line_reads(loki: FakeLoki) -> list[str]:
    return [r.url.params["query"] for r in loki.requests if r.url.path == RANGE]


async def test_patterns_give_the_same_findings_as_mining_for_far_fewer_bytes(
    worlds: Callable[[FakeLoki], EngineWorld],
) -> None:
    mined_world, counted_world = worlds(FakeLoki()), worlds(FakeLoki(serve_patterns=True))
    busy_web(mined_world)
    busy_web(counted_world)
    mined, mined_bytes = await check(mined_world)
    counted, counted_bytes = await check(counted_world)
    assert shape(counted) == shape(mined)
    assert counted[0].title == "20× upstream 10.0.0.0:5432 connect failed: refused (new pattern)"
    assert counted[0].data["count"] == 20 and counted[0].data["new"] is True
    # mining read the place's every line; the patterns path read only the finding's lines
    assert counted_bytes * 5 < mined_bytes
    assert PATTERNS in counted_world.loki.paths()
    assert all("|=" in q for q in line_reads(counted_world.loki))
    # times come from the real lines, not from the steps
    assert counted[0].at == mined[0].at
    assert counted[0].data["active_until"] == mined[0].data["active_until"]


@pytest.mark.parametrize(
    "failure",
    [
        None,  # 404: no pattern ingester, the fake's default
        {"status": 500},
        {"exception": httpx.ReadTimeout("timed out")},
    ],
    ids=["404", "500", "timeout"],
)
async def test_the_check_mines_when_the_patterns_api_fails(
    worlds: Callable[[FakeLoki], EngineWorld], failure: dict[str, object] | None
) -> None:
    reference, failing = worlds(FakeLoki()), worlds(FakeLoki(serve_patterns=failure is not None))
    busy_web(reference)
    busy_web(failing)
    if failure is not None:
        failing.loki.fail_next(50, path_prefix=PATTERNS, **failure)  # type: ignore[arg-type]
    expected, _ = await check(reference)
    found, _ = await check(failing)
    assert shape(found) == shape(expected)
    assert PATTERNS in failing.loki.paths()
    assert any("|=" not in q for q in line_reads(failing.loki))


async def test_a_loki_without_patterns_is_not_asked_again_by_the_same_process(
    worlds: Callable[[FakeLoki], EngineWorld],
) -> None:
    world = worlds(FakeLoki())
    busy_web(world)
    deps = world.deps("loki")
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)), deps)
    first = (await log_errors.run(ctx)).evidence
    asked = world.loki.paths().count(PATTERNS)
    assert asked >= 1
    second = (await log_errors.run(ctx)).evidence
    assert world.loki.paths().count(PATTERNS) == asked
    assert shape(second) == shape(first)


async def test_a_server_error_is_not_remembered(worlds: Callable[[FakeLoki], EngineWorld]) -> None:
    world = worlds(FakeLoki(serve_patterns=True))
    busy_web(world)
    deps = world.deps("loki")
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)), deps)
    world.loki.fail_next(1, status=500, path_prefix=PATTERNS)
    await log_errors.run(ctx)
    before = len(line_reads(world.loki))
    items = (await log_errors.run(ctx)).evidence
    # the second run used the patterns: only filtered reads of the finding's lines
    assert all("|=" in q for q in line_reads(world.loki)[before:])
    assert items[0].data["new"] is True


async def test_a_place_the_patterns_api_knows_nothing_about_is_mined(
    worlds: Callable[[FakeLoki], EngineWorld],
) -> None:
    reference, empty = worlds(FakeLoki()), worlds(EmptyPatterns(serve_patterns=True))
    busy_web(reference)
    busy_web(empty)
    expected, _ = await check(reference)
    found, _ = await check(empty)
    assert found and shape(found) == shape(expected)


HOSTILE = [
    'level=error msg="bad \\"quote\\" in `tick` $(rm -rf /) {job=~".+"} |= "x" (.*)[a-z]+ <html> ^$ \\d"',
    "panic: regexp `(?P<name>[a-z]+` failed at '<_>' 100% \\\\ server\\share",
]


@pytest.mark.parametrize("line", HOSTILE, ids=["quotes-backticks-logql", "regex-and-placeholders"])
async def test_hostile_pattern_text_never_breaks_the_logql_built_from_it(
    worlds: Callable[[FakeLoki], EngineWorld], line: str
) -> None:
    world = worlds(FakeLoki(serve_patterns=True))
    # busy enough that its lines are not read for new variants: only the hostile line's are
    world.loki.push_many(WEB, [(world.ago(m / 2), f"GET /index.html 200 {m}ms") for m in range(1, 360)])
    world.loki.push_many(WEB, [(world.ago(7 - i), line) for i in range(3)])
    items, _ = await check(world)
    assert items and items[0].title.startswith(f"3× {line[:40]}")
    assert items[0].data["new"] is True
    queries = line_reads(world.loki)
    assert queries and all("|=" in q for q in queries)
    for query in queries:
        parsed = parse(query)
        assert isinstance(parsed, LogQuery)
        # every filter reads back as a literal part of the line, so it selects the line it came from
        assert parsed.filters and all(f.text in line for f in parsed.filters)


async def test_a_slow_burn_is_judged_from_the_counts(worlds: Callable[[FakeLoki], EngineWorld]) -> None:
    world = worlds(FakeLoki(serve_patterns=True))
    world.loki.push_many(WEB, [(world.ago(m), f"GET /index.html 200 {m}ms") for m in range(1, 180, 2)])
    # began well into the window before and goes on every 30 s
    world.loki.push_many(WEB, [(world.ago(m / 2), "debug: polling upstream cache state") for m in range(1, 200)])
    items, _ = await check(world)
    (burn,) = [e for e in items if "polling" in e.title]
    assert "began in the previous window and goes on" in burn.title
    assert burn.data["persisting"] is True and burn.data["before"] > 0
    assert burn.at < world.ago(65)


async def test_a_surge_is_judged_from_the_counts(worlds: Callable[[FakeLoki], EngineWorld]) -> None:
    world = worlds(FakeLoki(serve_patterns=True))
    world.loki.push_many(WEB, [(world.ago(m), f"GET /index.html 200 {m}ms") for m in range(1, 180, 2)])
    world.loki.push_many(WEB, [(world.ago(m), "warning: slow query on table orders") for m in range(70, 180, 20)])
    world.loki.push_many(WEB, [(world.ago(20 - i / 4), "warning: slow query on table orders") for i in range(60)])
    items, _ = await check(world)
    (surge,) = [e for e in items if "slow query" in e.title]
    assert surge.data["count"] == 60 and surge.data["before"] > 0
    assert "in the previous window" in surge.title


async def test_a_new_variant_hidden_in_a_placeholder_is_still_found(
    worlds: Callable[[FakeLoki], EngineWorld],
) -> None:
    world = worlds(FakeLoki(serve_patterns=True))
    for minutes in range(2, 180, 10):
        world.loki.push(WEB, "zed: pool tank state is ONLINE", at=world.ago(minutes))
    world.loki.push(WEB, "zed: pool tank state is DEGRADED", at=world.ago(7))
    items, _ = await check(world)
    (degraded,) = [e for e in items if "DEGRADED" in e.title]
    assert "new variant of a known message" in degraded.title
    assert "pattern: zed: pool tank state is <_>" in degraded.detail
    assert not [e for e in items if "ONLINE" in e.title]


def test_counts_merge_levels_and_selectors_and_split_at_the_window() -> None:
    from tools.loki_patterns import PatternSeries
    from triage.pipeline.checks._patterns import merge_counts

    a = PatternSeries("disk <_> failed", ((100, 2), (200, 3)), "error")
    b = PatternSeries("disk <_> failed", ((150, 1), (260, 4)), "unknown")
    (counts,) = merge_counts([('{job="a"}', [a]), ('{job="b"}', [b])], window_start_s=200)
    assert (counts.before, counts.count, counts.first_before_s, counts.first_s) == (3, 7, 100, 200)
    assert counts.selectors == ['{job="a"}', '{job="b"}']


def test_line_filters_take_the_longest_literal_words_in_order_and_quote_them() -> None:
    from triage.pipeline.checks._patterns import line_filters, matcher

    pattern = '<_> level=error msg="dial tcp <_>: i/o timeout" a b `x`'
    assert line_filters(pattern) == [
        '|= "level=error"',
        '|= "msg=\\"dial"',
        '|= "tcp"',
        '|= "timeout\\""',
    ]
    assert line_filters("<_> <_>") == []
    assert matcher(pattern).search('t=1 level=error msg="dial tcp 10.0.0.1:5432: i/o timeout" a b `x`')
    assert not matcher(pattern).search('level=error msg="dial udp 1: i/o timeout" a b `x`')
