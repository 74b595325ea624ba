"""A fake Loki: log lines per stream, served through Loki's HTTP API and wire formats.

Endpoints: ``/loki/api/v1/query_range`` (streams for log queries, matrix for ``count_over_time``/``rate``),
``/loki/api/v1/labels``, ``/loki/api/v1/label/{name}/values``, ``/loki/api/v1/series``, ``/ready``, and with
``serve_patterns`` the pattern ingester's ``/loki/api/v1/patterns`` (patterns computed from the fake's lines, see
:mod:`tests.fakes.loki_patterns`; ``pattern_levels=False`` answers as Loki before 3.6, without ``level``). Without
it that endpoint is a 404, as on a Loki whose pattern ingester is disabled (the default).
Faithful where clients can go wrong: timestamps are nanosecond strings, ``direction`` orders lines and decides
which ones ``limit`` keeps, ``limit`` above ``max_entries`` (5000, Loki's default) is a 400, ``{}`` and selectors
without a positive matcher are rejected with Loki's messages, errors are plain text (``text/plain``) as Loki's
``WriteError`` sends them. With ``tenant`` set, requests without that ``X-Scope-OrgID`` get 401 ``no org id``
(another tenant sees an empty world); with ``token`` or ``username``/``password`` set, the auth proxy in front
of Loki answers 401 to anything else::

    loki = FakeLoki(tenant="homelab")
    loki.push({"job": "nginx", "host": "web1"}, "GET / 502", at=alert_time)
    async with loki.client() as client:
        result = await client.query_range('{job="nginx"} |= "502"', start, end)
"""

from __future__ import annotations

import base64
import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.fakes import FakeUpstream, json_response
from tests.fakes.logql import LogQLParseError, LogQuery, MetricQuery, duration_s, parse, parse_selector
from tests.fakes.loki_patterns import answer as patterns_answer
from tools.loki import LokiClient
from tools.loki_patterns import Availability

BASE_URL = "http://loki.test"
MAX_ENTRIES = 5000
MAX_POINTS = 11_000
_LABEL_VALUES = re.compile(r"^/loki/api/v1/label/([^/]+)/values$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

StreamKey = tuple[tuple[str, str], ...]


def ns(at: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (exact)."""
    delta = at - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def text_error(status: int, message: str) -> httpx.Response:
    """Loki's error answer: the message as plain text."""
    return httpx.Response(
        status,
        text=message,
        headers={"content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff"},
    )


def parse_time(raw: str | None, default_ns: int) -> int:
    """Loki's time parameters: integer nanoseconds, float seconds, or RFC 3339."""
    if raw is None or raw == "":
        return default_ns
    if re.fullmatch(r"\d+", raw):
        value = int(raw)
        # Loki reads short integers as seconds, long ones as nanoseconds
        return value * 1_000_000_000 if len(raw) <= 10 else value
    if re.fullmatch(r"\d+\.\d*", raw):
        return int(float(raw) * 1_000_000_000)
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return ns(parsed)


class FakeLoki(FakeUpstream):
    """Loki's state: ``streams`` maps (tenant, label set) to ``[(ts_ns, line), …]``."""

    default_fault_body = "Service Unavailable"

    def __init__(
        self,
        *,
        tenant: str | None = None,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        max_entries: int = MAX_ENTRIES,
        delay_s: float = 0.0,
        serve_patterns: bool = False,
        pattern_levels: bool = True,
    ) -> None:
        super().__init__(delay_s=delay_s)
        self.serve_patterns = serve_patterns
        self.pattern_levels = pattern_levels
        self.tenant = tenant
        self.token = token
        self.username = username
        self.password = password
        self.max_entries = max_entries
        self.streams: dict[tuple[str, StreamKey], list[tuple[int, str]]] = defaultdict(list)
        self.now = datetime.now(UTC)

    # -- state ------------------------------------------------------------------------------------------------

    def push(self, labels: dict[str, str], line: str, *, at: datetime, tenant: str | None = None) -> None:
        """Add one line to the stream with ``labels`` (of ``tenant``, default the configured one)."""
        key = (tenant or self.tenant or "fake", tuple(sorted(labels.items())))
        self.streams[key].append((ns(at), line))

    def push_many(
        self, labels: dict[str, str], lines: list[tuple[datetime, str]], *, tenant: str | None = None
    ) -> None:
        """Add several ``(time, line)`` entries to one stream."""
        for at, line in lines:
            self.push(labels, line, at=at, tenant=tenant)

    def client(self, **kwargs: Any) -> LokiClient:
        """A LokiClient wired to this fake with its credentials and tenant (``kwargs`` override them); whether the
        patterns API answers is remembered per fake, not across fakes that share the fake's URL."""
        options: dict[str, Any] = {
            "availability": Availability(),
            "token": self.token,
            "username": self.username,
            "password": self.password,
            "tenant": self.tenant,
            "backoff_s": 0.0,
            "transport": self.transport(),
        }
        options.update(kwargs)
        return LokiClient(BASE_URL, **options)

    # -- HTTP -------------------------------------------------------------------------------------------------

    def _authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("authorization")
        if self.token is not None:
            return header == f"Bearer {self.token}"
        if self.username is not None:
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return header == f"Basic {expected}"
        return True

    def respond(self, request: httpx.Request) -> httpx.Response:
        """Route one request; see the module docstring for what is served."""
        if not self._authorized(request):
            return text_error(401, "Unauthorized")
        path = request.url.path
        if path == "/ready":
            return httpx.Response(200, text="ready")
        tenant = request.headers.get("x-scope-orgid")
        if self.tenant is not None and not tenant:
            return text_error(401, "no org id")
        tenant = tenant or self.tenant or "fake"
        if request.method not in ("GET", "POST"):
            return text_error(405, "Method Not Allowed")
        params = request.url.params
        try:
            if path == "/loki/api/v1/query_range":
                return self._query_range(tenant, params)
            if path == "/loki/api/v1/labels":
                return self._labels(tenant, params)
            if path == "/loki/api/v1/series":
                return self._series(tenant, params)
            if path == "/loki/api/v1/patterns" and self.serve_patterns:
                return self._patterns(tenant, params)
            if match := _LABEL_VALUES.match(path):
                return self._label_values(tenant, match.group(1), params)
        except LogQLParseError as exc:
            return text_error(400, str(exc))
        return text_error(404, "404 page not found")

    def _window(self, params: httpx.QueryParams) -> tuple[int, int]:
        end = parse_time(params.get("end"), ns(self.now))
        start = parse_time(params.get("start"), end - 3600 * 1_000_000_000)
        if end < start:
            raise LogQLParseError("the query time range is invalid: end timestamp must not be before start time")
        return start, end

    def _selected(
        self, tenant: str, query: LogQuery, start: int, end: int
    ) -> list[tuple[StreamKey, list[tuple[int, str]]]]:
        found = []
        for (owner, key), entries in self.streams.items():
            if owner != tenant or not query.selects(dict(key)):
                continue
            kept = [(t, line) for t, line in entries if start <= t <= end and query.keeps(line)]
            if kept:
                found.append((key, kept))
        return found

    def _query_range(self, tenant: str, params: httpx.QueryParams) -> httpx.Response:
        raw_query = params.get("query")
        if not raw_query:
            return text_error(400, "query parameter is required")
        limit_raw = params.get("limit", "100")
        if not limit_raw.isdigit():
            return text_error(400, f'invalid limit: strconv.Atoi: parsing "{limit_raw}": invalid syntax')
        limit = int(limit_raw)
        if limit > self.max_entries:
            return text_error(
                400,
                f"max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {self.max_entries})",
            )
        direction = params.get("direction", "backward").lower()
        if direction not in ("backward", "forward"):
            return text_error(400, "invalid direction")
        start, end = self._window(params)
        query = parse(raw_query)
        if isinstance(query, MetricQuery):
            return self._metric(tenant, query, start, end, params.get("step"))
        entries = [(t, line, key) for key, kept in self._selected(tenant, query, start, end) for t, line in kept]
        entries.sort(key=lambda e: e[0], reverse=direction == "backward")
        entries = entries[:limit]
        by_stream: dict[StreamKey, list[list[str]]] = defaultdict(list)
        for t, line, key in entries:
            by_stream[key].append([str(t), line])
        result = [{"stream": dict(key), "values": values} for key, values in by_stream.items()]
        return self._success({"resultType": "streams", "result": result, "stats": self._stats(len(entries))})

    def _metric(self, tenant: str, query: MetricQuery, start: int, end: int, step_raw: str | None) -> httpx.Response:
        # Loki's default step: the range over 250 points, at least one second
        step_s = duration_s(step_raw) if step_raw else max(1.0, math.floor((end - start) / 1e9 / 250))
        if step_s <= 0:
            return text_error(
                400, "zero or negative query resolution step widths are not accepted. Try a positive integer"
            )
        if (end - start) / 1e9 / step_s > MAX_POINTS:
            return text_error(
                400,
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution "
                "(?step=XX)",
            )
        range_ns = int(query.range_s * 1e9)
        step_ns = int(step_s * 1e9)
        streams = self._selected(tenant, query.inner, start - range_ns, end)
        series: dict[StreamKey, dict[int, float]] = defaultdict(dict)
        t = start
        while t <= end:
            for key, entries in streams:
                count = sum(1 for ts, _ in entries if t - range_ns < ts <= t)
                if count:
                    value = count if query.function == "count_over_time" else count / query.range_s
                    group = self._group(key, query)
                    series[group][t] = self._combine(query.aggregation, series[group].get(t), float(value))
            t += step_ns
        result = [
            {"metric": dict(key), "values": [[ts / 1e9, _fmt(v)] for ts, v in sorted(points.items())]}
            for key, points in series.items()
        ]
        return self._success({"resultType": "matrix", "result": result, "stats": self._stats(0)})

    @staticmethod
    def _group(key: StreamKey, query: MetricQuery) -> StreamKey:
        if query.aggregation is None:
            return key
        if query.grouping is None:
            return ()
        if query.without:
            return tuple((k, v) for k, v in key if k not in query.grouping)
        return tuple((k, v) for k, v in key if k in query.grouping)

    @staticmethod
    def _combine(aggregation: str | None, current: float | None, value: float) -> float:
        if current is None:
            return 1.0 if aggregation == "count" else value
        if aggregation in ("sum", None):
            return current + value
        if aggregation == "count":
            return current + 1
        if aggregation == "max":
            return max(current, value)
        if aggregation == "min":
            return min(current, value)
        return (current + value) / 2  # avg of a running pair; enough for the fake's two-stream tests

    def _labels(self, tenant: str, params: httpx.QueryParams) -> httpx.Response:
        start, end = self._window(params)
        names = {
            name
            for (owner, key), entries in self.streams.items()
            if owner == tenant and any(start <= t <= end for t, _ in entries)
            for name, _ in key
        }
        return self._success(sorted(names)) if names else httpx.Response(200, json={"status": "success"})

    def _label_values(self, tenant: str, name: str, params: httpx.QueryParams) -> httpx.Response:
        start, end = self._window(params)
        selector = parse_selector(params["query"]) if params.get("query") else None
        values = {
            dict(key)[name]
            for (owner, key), entries in self.streams.items()
            if owner == tenant
            and name in dict(key)
            and (selector is None or selector.selects(dict(key)))
            and any(start <= t <= end for t, _ in entries)
        }
        return self._success(sorted(values))

    def _series(self, tenant: str, params: httpx.QueryParams) -> httpx.Response:
        selectors = [parse_selector(m) for m in params.get_list("match[]")]
        if not selectors:
            return text_error(400, "at least one match[] argument is required")
        start, end = self._window(params)
        found = [
            dict(key)
            for (owner, key), entries in self.streams.items()
            if owner == tenant
            and any(s.selects(dict(key)) for s in selectors)
            and any(start <= t <= end for t, _ in entries)
        ]
        return self._success(found)

    def _patterns(self, tenant: str, params: httpx.QueryParams) -> httpx.Response:
        raw_query = params.get("query")
        if not raw_query:
            return text_error(400, "query parameter is required")
        selector = parse_selector(raw_query)
        start, end = self._window(params)
        step_raw = params.get("step")
        step_s = duration_s(step_raw) if step_raw else max(1.0, math.floor((end - start) / 1e9 / 250))
        if step_s <= 0:
            return text_error(
                400, "zero or negative query resolution step widths are not accepted. Try a positive integer"
            )
        streams = [
            entries for (owner, key), entries in self.streams.items() if owner == tenant and selector.selects(dict(key))
        ]
        return self._success(patterns_answer(streams, start, end, step_s, levels=self.pattern_levels))

    @staticmethod
    def _stats(lines: int) -> dict[str, Any]:
        return {"summary": {"totalLinesProcessed": lines, "execTime": 0.001, "queueTime": 0.0}}

    @staticmethod
    def _success(data: Any) -> httpx.Response:
        return json_response(200, {"status": "success", "data": data})


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def window(center: datetime, minutes: float) -> tuple[datetime, datetime]:
    """``[center - minutes, center + minutes]``, the usual window around an alert."""
    return center - timedelta(minutes=minutes), center + timedelta(minutes=minutes)
