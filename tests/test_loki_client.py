"""The Loki client against the Loki fake (wire formats, limits, tenant and auth checks) and respx for faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from tests.fakes.loki import BASE_URL, FakeLoki, ns
from tools import errors
from tools.loki import LokiClient, to_ns
from tools.selectors import Matcher, line_filter, logql_query, logql_selector, regex_escape

ALERT_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
START, END = ALERT_AT - timedelta(minutes=30), ALERT_AT + timedelta(minutes=5)
NGINX = {"job": "nginx", "host": "web1"}


@pytest.fixture
def loki() -> FakeLoki:
    fake = FakeLoki(tenant="homelab", token="loki-token-abcdef")
    for minute in range(30):
        at = ALERT_AT - timedelta(minutes=minute, microseconds=123)
        fake.push(NGINX, f"GET /api {500 if minute % 3 == 0 else 200} minute={minute}", at=at)
    fake.push({"job": "postgres", "host": "db1"}, "FATAL: too many connections", at=ALERT_AT - timedelta(seconds=5))
    return fake


def params_of(fake: FakeLoki, index: int = -1) -> dict[str, str]:
    return dict(fake.requests[index].url.params)


async def test_backward_query_returns_the_lines_nearest_the_alert_first(loki: FakeLoki) -> None:
    async with loki.client() as client:
        result = await client.query_range(logql_query(NGINX), START, END, limit=5)
    assert result.result_type == "streams"
    lines = [e.line for e in result.entries]
    assert lines == [f"GET /api {500 if m % 3 == 0 else 200} minute={m}" for m in range(5)]
    assert result.limit_reached
    sent = params_of(loki)
    assert sent["direction"] == "backward"
    assert sent["limit"] == "5"
    assert sent["start"] == str(ns(START)) and sent["end"] == str(ns(END))


async def test_forward_query_returns_the_oldest_lines_first(loki: FakeLoki) -> None:
    async with loki.client() as client:
        result = await client.query_range(logql_query(NGINX), START, END, limit=3, direction="forward")
    assert [e.line.rsplit("=", 1)[1] for e in result.entries] == ["29", "28", "27"]


async def test_timestamps_keep_nanosecond_precision(loki: FakeLoki) -> None:
    async with loki.client() as client:
        result = await client.query_range(logql_query(NGINX), START, END, limit=1)
    [entry] = result.entries
    assert entry.ts_ns == ns(ALERT_AT) - 123_000
    assert entry.at == ALERT_AT - timedelta(microseconds=123)
    assert entry.labels == NGINX
    assert to_ns(datetime(2026, 1, 1, tzinfo=UTC)) == "1767225600000000000"


async def test_line_filters_select_lines_literally(loki: FakeLoki) -> None:
    loki.push(NGINX, 'weird "} |= "x" line', at=ALERT_AT)
    async with loki.client() as client:
        errors_only = await client.query_range(logql_query(NGINX, line_filter("|=", " 500 ")), START, END, limit=100)
        hostile = await client.query_range(logql_query(NGINX, line_filter("|=", '"} |= "x"')), START, END)
        by_regex = await client.query_range(
            logql_query(NGINX, line_filter("|~", regex_escape("minute=1"))), START, END, limit=100
        )
    assert len(errors_only.entries) == 10
    assert [e.line for e in hostile.entries] == ['weird "} |= "x" line']
    assert sorted(e.line.rsplit("=", 1)[1] for e in by_regex.entries) == ["1", *(str(m) for m in range(10, 20))]


async def test_metric_queries_return_a_matrix_within_the_point_budget(loki: FakeLoki) -> None:
    query = f'sum by (host) (count_over_time({logql_selector(NGINX)} |= " 500 " [10m]))'
    async with loki.client(max_points=50) as client:
        result = await client.query_range(query, START, END)
    assert result.result_type == "matrix"
    [series] = result.series
    assert series.labels == {"host": "web1"}
    assert len(series.points) <= 50
    assert result.step_s == 60
    assert params_of(loki)["step"] == "60"
    # at the alert, the last 10 minutes hold the 500s of minutes 0, 3, 6 and 9
    at_alert = [p.value for p in series.points if p.t == ALERT_AT.timestamp()]
    assert at_alert == [4]


async def test_metric_series_beyond_the_budget_are_counted_not_kept(loki: FakeLoki) -> None:
    query = 'sum by (host) (count_over_time({host=~".+"} [5m]))'
    async with loki.client(max_series=1) as client:
        result = await client.query_range(query, START, END)
    assert len(result.series) == 1
    assert result.total_series == 2


async def test_limit_is_clamped_to_the_maximum(loki: FakeLoki) -> None:
    async with loki.client() as client:
        await client.query_range(logql_query(NGINX), START, END, limit=1_000_000)
    assert params_of(loki)["limit"] == "5000"


async def test_the_fake_rejects_a_limit_above_its_maximum_with_lokis_message(loki: FakeLoki) -> None:
    async with loki.client(max_limit=10_000) as client:
        with pytest.raises(errors.SourceQueryError) as caught:
            await client.query_range(logql_query(NGINX), START, END, limit=6000)
    assert "max entries limit per query exceeded, limit > max_entries_limit_per_query (6000 > 5000)" in str(
        caught.value
    )
    assert client.stats.retries == 0


async def test_an_empty_selector_is_rejected_by_loki_and_never_built_by_us(loki: FakeLoki) -> None:
    async with loki.client() as client:
        with pytest.raises(errors.SourceQueryError, match="unexpected }, expecting IDENTIFIER"):
            await client.query_range("{}", START, END)
        with pytest.raises(errors.SourceQueryError, match="at least one regexp or equality matcher"):
            await client.query_range('{job!="nginx"}', START, END)
    with pytest.raises(ValueError):
        logql_selector({})


async def test_labels_values_and_series(loki: FakeLoki) -> None:
    async with loki.client() as client:
        assert await client.labels(START, END) == ["host", "job"]
        assert await client.label_values("host", START, END) == ["db1", "web1"]
        assert await client.label_values("host", START, END, query=logql_selector({"job": "postgres"})) == ["db1"]
        series = await client.series([logql_selector({"job": "nginx"})], START, END)
        assert series == [NGINX]
        with pytest.raises(ValueError, match="not a valid label name"):
            await client.label_values("host/../../x", START, END)
    assert params_of(loki, -1)["match[]"] == '{job="nginx"}'


async def test_lookups_outside_the_window_find_nothing(loki: FakeLoki) -> None:
    async with loki.client() as client:
        later = ALERT_AT + timedelta(hours=2)
        assert await client.labels(later, later + timedelta(hours=1)) == []
        assert await client.series(['{job="nginx"}'], later, later + timedelta(hours=1)) == []


async def test_tenant_header_is_sent_and_required(loki: FakeLoki) -> None:
    async with loki.client() as client:
        await client.labels(START, END)
    assert loki.requests[-1].headers["x-scope-orgid"] == "homelab"
    async with loki.client(tenant=None) as client:
        with pytest.raises(errors.SourceAuthError):
            await client.labels(START, END)


async def test_another_tenant_sees_an_empty_world(loki: FakeLoki) -> None:
    async with loki.client(tenant="someone-else") as client:
        result = await client.query_range(logql_query(NGINX), START, END)
    assert result.entries == []


async def test_a_wrong_token_is_an_auth_error_that_does_not_show_the_token(loki: FakeLoki) -> None:
    async with loki.client(token="wrong-token-123456") as client:
        with pytest.raises(errors.SourceAuthError) as caught:
            await client.labels(START, END)
    assert "wrong-token-123456" not in str(caught.value)
    assert caught.value.status_code == 401


async def test_basic_auth_is_accepted_by_the_proxy() -> None:
    fake = FakeLoki(username="grafana", password="secret-pass-1")
    fake.push(NGINX, "hello", at=ALERT_AT)
    async with fake.client() as client:
        assert await client.labels(START, END) == ["host", "job"]
    async with fake.client(password="nope-nope") as client:
        with pytest.raises(errors.SourceAuthError):
            await client.labels(START, END)


async def test_ranges_beyond_the_limit_are_refused_without_a_request(loki: FakeLoki) -> None:
    async with loki.client(max_range_s=3600) as client:
        with pytest.raises(errors.SourceQueryError, match="exceeds the limit"):
            await client.query_range(logql_query(NGINX), ALERT_AT - timedelta(hours=3), ALERT_AT)
        with pytest.raises(errors.SourceQueryError, match="ends before it starts"):
            await client.labels(END, START)
    assert loki.request_count == 0


async def test_transient_failures_are_retried_and_counted(loki: FakeLoki) -> None:
    loki.fail_next(2, status=502)
    async with loki.client(retries=2) as client:
        result = await client.query_range(logql_query(NGINX), START, END, limit=1)
        assert client.stats.retries == 2
        assert client.stats.requests == 3
    assert len(result.entries) == 1


async def test_retries_give_up_after_the_bound(loki: FakeLoki) -> None:
    loki.fail_next(5, exception=httpx.ConnectError("[Errno 111] Connection refused"))
    async with loki.client(retries=2) as client:
        with pytest.raises(errors.SourceConnectError, match="Connection refused"):
            await client.labels(START, END)
        assert client.stats.retries == 2
    assert loki.request_count == 3


async def test_regex_matchers_on_stream_labels_match_literally(loki: FakeLoki) -> None:
    loki.push({"job": "a.b", "host": "x"}, "dot", at=ALERT_AT)
    loki.push({"job": "aXb", "host": "x"}, "not a dot", at=ALERT_AT)
    async with loki.client() as client:
        result = await client.query_range(logql_selector(matchers=[Matcher.literal_regex("job", "a.b")]), START, END)
    assert [e.line for e in result.entries] == ["dot"]


# --- wire-format faults (respx) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [[[1.5, "line"]], [["17000", 3]], [["abc", "line"]], [["1"]], "nope"],
)
@respx.mock(base_url=BASE_URL)
async def test_malformed_stream_entries_are_rejected(values: object, respx_mock: respx.MockRouter) -> None:
    body = {
        "status": "success",
        "data": {"resultType": "streams", "result": [{"stream": {"a": "b"}, "values": values}]},
    }
    respx_mock.get("/loki/api/v1/query_range").respond(200, json=body)
    async with LokiClient(BASE_URL) as client:
        with pytest.raises(errors.SourceMalformedResponse):
            await client.query_range('{a="b"}', START, END)


@respx.mock(base_url=BASE_URL)
async def test_structured_metadata_in_entries_is_tolerated(respx_mock: respx.MockRouter) -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "streams",
            "result": [{"stream": {"a": "b"}, "values": [["1772366400000000001", "line", {"trace_id": "abc"}]]}],
        },
    }
    respx_mock.get("/loki/api/v1/query_range").respond(200, json=body)
    async with LokiClient(BASE_URL) as client:
        result = await client.query_range('{a="b"}', START, END)
    assert result.entries[0].ts_ns == 1772366400000000001


@respx.mock(base_url=BASE_URL)
async def test_a_json_error_document_is_a_query_error(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/loki/api/v1/labels").respond(
        400, json={"status": "error", "errorType": "bad_data", "error": "invalid start"}
    )
    async with LokiClient(BASE_URL) as client:
        with pytest.raises(errors.SourceQueryError, match="invalid start"):
            await client.labels(START, END)


@respx.mock(base_url=BASE_URL)
async def test_missing_data_in_a_labels_answer_means_no_labels(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/loki/api/v1/labels").respond(200, json={"status": "success"})
    async with LokiClient(BASE_URL) as client:
        assert await client.labels(START, END) == []


@pytest.mark.parametrize(
    "query",
    ['{job="nginx"} | line_format "{{.msg}}"', '{job="nginx"', "{job=nginx}", 'quantile_over_time(0.9, {job="a"}[5m])'],
)
async def test_the_fake_refuses_syntax_it_does_not_serve_with_a_parse_error(loki: FakeLoki, query: str) -> None:
    async with loki.client() as client:
        with pytest.raises(errors.SourceQueryError, match="parse error"):
            await client.query_range(query, START, END)
