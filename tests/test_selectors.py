"""Query safety: untrusted label values become literal matches and can never add a matcher, operator or stage.

PromQL is checked against the real Prometheus parser: ``absent(m{job="…"})`` answers with the label set made of
the selector's equality matchers, so it shows exactly which matchers Prometheus parsed and with which values.
LogQL is checked against the independent LogQL parser of the Loki fake.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fakes.logql import LabelMatcher, LineFilter, LogQuery, parse
from tests.support.prometheus import PrometheusWorld
from tools.selectors import (
    MAX_VALUE_CHARS,
    Matcher,
    SelectorError,
    any_of,
    duration,
    line_filter,
    logql_query,
    logql_selector,
    quote,
    regex_escape,
    selector,
)

HOSTILE = [
    '"} or vector(1) #',
    'x"} or vector(1) #',
    '|= "x"',
    '"} |= "x" | json',
    "line one\nline two\r\n",
    "back\\slash\\",
    '\\"',
    "tab\there\x00nul\x7fdel\x1besc",
    "ünïcødé ✓ 日本語 🚀",
    "`backtick` 'single'",
    ".*",
    "a|b",
    "(?i)x",
    "x" * 10_000,
    "${1} {{ template }}",
]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    world = PrometheusWorld(Path(tmp_path_factory.mktemp("prom-parser")))
    with world, httpx.Client(base_url=world.url, timeout=10) as client:
        yield client


def parsed_equality_labels(client: httpx.Client, promql_selector: str) -> dict[str, str]:
    response = client.post("/api/v1/query", data={"query": f"absent({promql_selector})"})
    body = response.json()
    assert body["status"] == "success", body
    [result] = body["data"]["result"]
    labels: dict[str, str] = result["metric"]
    return labels


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_is_one_literal_matcher_for_the_real_prometheus_parser(
    prometheus: httpx.Client, value: str
) -> None:
    query = selector("sre_triage_absent_metric", {"instance": value, "job": "node"})
    assert parsed_equality_labels(prometheus, query) == {"instance": value, "job": "node"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=300))
@example(value='"} or vector(1) #')
@example(value="\\")
def test_any_string_round_trips_through_the_real_prometheus_parser(prometheus: httpx.Client, value: str) -> None:
    query = selector("sre_triage_absent_metric", {"v": value})
    assert parsed_equality_labels(prometheus, query) == {"v": value}


def test_an_injection_attempt_does_not_reach_prometheus_as_an_operator(prometheus: httpx.Client) -> None:
    # unescaped, this value would turn the query into `… or vector(1)` and always return a result
    query = selector("sre_triage_absent_metric", {"job": 'x"} or vector(1) #'})
    body = prometheus.post("/api/v1/query", data={"query": query}).json()
    assert body == {"status": "success", "data": {"resultType": "vector", "result": []}}


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=300), text=st.text(max_size=300))
@example(value='"} |= "x"', text='" | json')
def test_any_string_stays_a_literal_for_logql(value: str, text: str) -> None:
    query = logql_query({"job": "nginx", "host": value}, line_filter("|=", text), line_filter("!~", regex_escape(text)))
    parsed = parse(query)
    assert isinstance(parsed, LogQuery)
    assert parsed.matchers == [LabelMatcher("job", "=", "nginx"), LabelMatcher("host", "=", value)]
    assert parsed.filters == [LineFilter("|=", text), LineFilter("!~", regex_escape(text))]
    assert parsed.parsers == []


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=200), other=st.text(max_size=200))
def test_an_escaped_regex_matches_exactly_the_literal_value(value: str, other: str) -> None:
    pattern = regex_escape(value)
    assert re.fullmatch(pattern, value, re.DOTALL)
    if other != value:
        assert not re.fullmatch(pattern, other, re.DOTALL)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.text(min_size=1, max_size=50), min_size=1, max_size=5), other=st.text(max_size=50))
def test_any_of_matches_exactly_the_given_values(values: list[str], other: str) -> None:
    pattern = any_of(values)
    for value in values:
        assert re.fullmatch(pattern, value, re.DOTALL)
    if other not in values:
        assert not re.fullmatch(pattern, other, re.DOTALL)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_regex_literal_is_one_matcher_for_logql(value: str) -> None:
    query = logql_selector({"job": "nginx"}, [Matcher.literal_regex("host", value)])
    parsed = parse(query)
    assert isinstance(parsed, LogQuery)
    assert [m.name for m in parsed.matchers] == ["job", "host"]
    assert parsed.matchers[1].matches({"host": value})
    assert not parsed.matchers[1].matches({"host": value + "x"})


def test_quote_escapes_what_would_end_the_string_or_the_line() -> None:
    assert quote('a"b') == r'"a\"b"'
    assert quote("a\\b") == r'"a\\b"'
    assert quote("a\nb") == r'"a\nb"'
    assert quote("\x00") == r'"\x00"'
    assert "\n" not in quote("x\n" * 100)


def test_lone_surrogates_become_the_replacement_character() -> None:
    assert quote("a\ud800b") == '"a\ufffdb"'


def test_overlong_values_are_refused_not_truncated() -> None:
    quote("x" * MAX_VALUE_CHARS)
    with pytest.raises(SelectorError, match="exceeds the limit"):
        quote("x" * (MAX_VALUE_CHARS + 1))


@pytest.mark.parametrize("name", ['job"}', "1abc", "a-b", "", "job=", "a b", "ünï"])
def test_label_names_are_validated_never_escaped(name: str) -> None:
    with pytest.raises(SelectorError, match="not a valid label name"):
        selector("up", {name: "x"})


@pytest.mark.parametrize("metric", ["up or vector(1)", "up{", "9lives", ""])
def test_metric_names_are_validated(metric: str) -> None:
    with pytest.raises(SelectorError, match="not a valid metric name"):
        selector(metric, {"job": "x"})


def test_logql_selector_refuses_to_select_every_stream() -> None:
    with pytest.raises(SelectorError):
        logql_selector({})
    with pytest.raises(SelectorError):
        logql_selector({"job": ""})
    with pytest.raises(SelectorError):
        logql_selector(matchers=[Matcher("job", "nginx", "!=")])
    with pytest.raises(SelectorError):
        logql_selector(matchers=[Matcher("job", ".*", "=~")])
    assert logql_selector(matchers=[Matcher("job", ".+", "=~")]) == '{job=~".+"}'


def test_promql_selector_without_metric_needs_a_selecting_matcher() -> None:
    with pytest.raises(SelectorError):
        selector(None, {"job": ""})
    assert selector(None, {"job": "node"}) == '{job="node"}'
    assert selector("up") == "up"


def test_unknown_operators_are_refused() -> None:
    with pytest.raises(SelectorError):
        Matcher("job", "x", "==").render()  # type: ignore[arg-type]
    with pytest.raises(SelectorError):
        line_filter("|", "x")  # type: ignore[arg-type]


def test_logql_query_adds_a_parser_stage_only_when_asked() -> None:
    assert logql_query({"job": "app"}, line_filter("|=", "err"), parser="json") == '{job="app"} |= "err" | json'


@pytest.mark.parametrize(("seconds", "text"), [(300, "5m"), (3600, "1h"), (86400, "1d"), (90, "90s"), (0.2, "1s")])
def test_durations_use_the_largest_whole_unit(seconds: float, text: str) -> None:
    assert duration(seconds) == text
