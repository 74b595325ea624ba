"""The Loki client's patterns API: Loki's wire format (3.0–3.5 without ``level``, 3.6+ with it), its failures, and
the per-process memory of a Loki that does not serve it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tools.errors import SourceMalformedResponse, SourceServerError
from tools.loki import LokiClient
from tools.loki_patterns import Availability, PatternsUnavailable

START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=3)
# Loki 3.6's answer, as WriteQueryPatternsResponseJSON writes it
V36 = (
    '{"status":"success","data":[{"pattern":"<_> level=error msg=\\"dial <_>\\"","level":"error",'
    '"samples":[[1772359200,3],[1772359290,5]]},{"pattern":"GET <_> 200","level":"info","samples":[[1772359200,40]]}]}'
)
# Loki 3.0 to 3.5: no level
V30 = '{"status":"success","data":[{"pattern":"GET <_> 200","samples":[[1772359290,2],[1772359200,40]]}]}'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(handler: httpx.MockTransport, availability: Availability, **kwargs: object) -> LokiClient:
    return LokiClient("http://loki.test", transport=handler, backoff_s=0.0, availability=availability, **kwargs)  # type: ignore[arg-type]


def serving(*responses: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


def ok(body: str) -> httpx.Response:
    return httpx.Response(200, text=body, headers={"content-type": "application/json"})


async def test_patterns_parse_loki_36_answers_with_levels_and_send_the_documented_parameters() -> None:
    transport, seen = serving(ok(V36))
    async with client(transport, Availability()) as loki:
        found = await loki.patterns('{job="nginx"}', START, END, step_s=90)
    assert [(p.pattern, p.level, p.samples, p.total) for p in found] == [
        ('<_> level=error msg="dial <_>"', "error", ((1772359200, 3), (1772359290, 5)), 8),
        ("GET <_> 200", "info", ((1772359200, 40),), 40),
    ]
    (request,) = seen
    assert request.url.path == "/loki/api/v1/patterns"
    params = request.url.params
    assert params["query"] == '{job="nginx"}'
    assert params["start"] == str(int(START.timestamp()) * 10**9)
    assert params["end"] == str(int(END.timestamp()) * 10**9)
    assert params["step"] == "90"


async def test_patterns_parse_answers_without_level_in_time_order() -> None:
    transport, _ = serving(ok(V30))
    async with client(transport, Availability()) as loki:
        (series,) = await loki.patterns('{job="nginx"}', START, END, step_s=90)
    assert series.level is None
    assert series.samples == ((1772359200, 40), (1772359290, 2))


async def test_an_empty_or_null_answer_is_no_patterns() -> None:
    transport, _ = serving(ok('{"status":"success","data":null}'))
    async with client(transport, Availability()) as loki:
        assert await loki.patterns('{job="x"}', START, END, step_s=60) == []


@pytest.mark.parametrize(
    "body",
    [
        '{"status":"success","data":{"pattern":"x"}}',
        '{"status":"success","data":[{"samples":[[1,2]]}]}',
        '{"status":"success","data":[{"pattern":"x","samples":[["1",2]]}]}',
        '{"status":"success","data":[{"pattern":"x","samples":[[1,2,3]]}]}',
        '{"status":"success","data":[{"pattern":"x","samples":[[1,1.5]]}]}',
    ],
)
async def test_malformed_answers_are_refused(body: str) -> None:
    transport, _ = serving(ok(body))
    async with client(transport, Availability()) as loki:
        with pytest.raises(SourceMalformedResponse):
            await loki.patterns('{job="x"}', START, END, step_s=60)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(404, text="404 page not found"),
        httpx.Response(400, text="parse error at line 1, col 1: syntax error"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=["404-no-pattern-ingester", "400-refused", "timeout"],
)
async def test_a_loki_without_patterns_is_remembered_for_a_while(failure: httpx.Response | Exception) -> None:
    clock = Clock()
    memory = Availability(ttl_s=600, clock=clock)
    transport, seen = serving(failure)
    async with client(transport, memory, retries=0) as loki:
        with pytest.raises(PatternsUnavailable):
            await loki.patterns('{job="x"}', START, END, step_s=60)
        asked = len(seen)
        with pytest.raises(PatternsUnavailable, match="remembered"):
            await loki.patterns('{job="y"}', START, END, step_s=60)
        assert len(seen) == asked
        clock.now += 601
        with pytest.raises(PatternsUnavailable):
            await loki.patterns('{job="x"}', START, END, step_s=60)
        assert len(seen) > asked


async def test_a_server_error_is_raised_and_not_remembered() -> None:
    transport, seen = serving(httpx.Response(500, text="pattern ingester not ready"), ok(V30))
    async with client(transport, Availability(), retries=0) as loki:
        with pytest.raises(SourceServerError):
            await loki.patterns('{job="x"}', START, END, step_s=60)
        assert len(await loki.patterns('{job="x"}', START, END, step_s=60)) == 1
    assert len(seen) == 2


async def test_the_memory_is_per_loki_and_tenant() -> None:
    memory = Availability()
    missing, _ = serving(httpx.Response(404, text="404 page not found"))
    async with client(missing, memory, tenant="a") as loki:
        with pytest.raises(PatternsUnavailable):
            await loki.patterns('{job="x"}', START, END, step_s=60)
    present, seen = serving(ok(V30))
    async with client(present, memory, tenant="b") as loki:
        assert await loki.patterns('{job="x"}', START, END, step_s=60)
    assert len(seen) == 1


async def test_off_never_asks_and_on_asks_even_when_remembered() -> None:
    memory = Availability()
    memory.mark_unavailable("http://loki.test|")
    transport, seen = serving(ok(V30))
    async with client(transport, memory, patterns_mode="off") as loki:
        with pytest.raises(PatternsUnavailable, match="LOKI_PATTERNS=off"):
            await loki.patterns('{job="x"}', START, END, step_s=60)
    async with client(transport, memory, patterns_mode="auto") as loki:
        with pytest.raises(PatternsUnavailable, match="remembered"):
            await loki.patterns('{job="x"}', START, END, step_s=60)
    assert seen == []
    async with client(transport, memory, patterns_mode="on") as loki:
        assert await loki.patterns('{job="x"}', START, END, step_s=60)
    assert len(seen) == 1


async def test_the_step_keeps_the_point_budget() -> None:
    transport, seen = serving(ok(V30))
    async with client(transport, Availability(), max_points=100) as loki:
        await loki.patterns('{job="x"}', START, END, step_s=10)
    assert float(seen[0].url.params["step"]) >= 3 * 3600 / 100
