"""Async client for the Loki HTTP API: ``query_range`` (log lines and metric queries), labels, label values, series,
and the pattern ingester's ``patterns`` (see :mod:`tools.loki_patterns`).

Loki speaks in nanoseconds: timestamps go out as integer nanosecond strings and log entries come back as
``["<ns>", "<line>"]`` pairs. Queries are bounded: a range never spans more than ``max_range_s``, ``limit`` is
clamped to ``max_limit`` (Loki's own ``max_entries_limit_per_query`` defaults to 5000 and answers 400 above it),
metric queries get a step within the point budget and keep at most ``max_series`` series, and ``direction=backward`` is the default so that, when the
limit cuts the answer, the lines nearest the end of the window (the alert) are the ones kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Unpack

import httpx

from tools.errors import SourceError, SourceHTTPError, SourceMalformedResponse, SourceQueryError, SourceTimeout
from tools.http import ClientOptions, SourceClient, auth_headers
from tools.loki_patterns import (
    AVAILABILITY,
    UNAVAILABLE_STATUSES,
    Availability,
    PatternSeries,
    PatternsMode,
    PatternsUnavailable,
    parse_patterns,
)
from tools.numbers import is_ascii_digits
from tools.selectors import check_label_name
from tools.types import DEFAULT_MAX_POINTS, Series, check_span, choose_step, parse_labels, parse_point

DEFAULT_LIMIT = 100
LOKI_MAX_LIMIT = 5000
DEFAULT_MAX_RANGE_S = 24 * 3600
DEFAULT_LOOKUP_LIMIT = 1000
DEFAULT_MAX_SERIES = 200

Direction = Literal["backward", "forward"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(at: datetime) -> str:
    """Loki's timestamp format: integer nanoseconds since the epoch, as a string (exact, no float rounding)."""
    if at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    delta = at - _EPOCH
    return str((delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log line with the labels of its stream. ``ts_ns`` is Loki's nanosecond timestamp."""

    ts_ns: int
    line: str
    labels: dict[str, str]

    @property
    def at(self) -> datetime:
        """The entry time as an aware UTC datetime (microsecond precision)."""
        return _EPOCH + timedelta(microseconds=self.ts_ns // 1000)


@dataclass(frozen=True, slots=True)
class LogStream:
    """A stream (one label set) and its entries in the order Loki returned them."""

    labels: dict[str, str]
    entries: list[LogEntry]


@dataclass(frozen=True, slots=True)
class LogQueryResult:
    """The answer to ``query_range``: ``streams`` for a log query, ``series`` for a metric query.

    ``limit_reached`` means Loki returned as many lines as asked for, so more may exist in the window. A metric
    query keeps at most the client's ``max_series`` series; ``total_series`` counts what Loki returned.
    """

    query: str
    result_type: Literal["streams", "matrix"]
    direction: Direction
    limit: int
    streams: list[LogStream] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    step_s: float | None = None
    total_series: int = 0

    @property
    def entries(self) -> list[LogEntry]:
        """All lines of all streams merged in query order: newest first for ``backward``, oldest first otherwise."""
        merged = [entry for stream in self.streams for entry in stream.entries]
        merged.sort(key=lambda e: e.ts_ns, reverse=self.direction == "backward")
        return merged

    @property
    def limit_reached(self) -> bool:
        """Whether the line limit cut the answer (Loki applies ``limit`` across all streams)."""
        return self.result_type == "streams" and sum(len(s.entries) for s in self.streams) >= self.limit


class LokiClient(SourceClient):
    """Client for one Loki (single binary, or the query frontend of a distributed install)."""

    source = "loki"

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tenant: str | None = None,
        max_limit: int = LOKI_MAX_LIMIT,
        max_points: int = DEFAULT_MAX_POINTS,
        max_range_s: float = DEFAULT_MAX_RANGE_S,
        max_series: int = DEFAULT_MAX_SERIES,
        patterns_mode: PatternsMode = "auto",
        availability: Availability = AVAILABILITY,
        **options: Unpack[ClientOptions],
    ) -> None:
        headers = auth_headers(token, username, password)
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        super().__init__(base_url, headers=headers, secrets=[s for s in (token, password) if s], **options)
        self.tenant = tenant
        self.max_limit = max(1, max_limit)
        self.max_points = max_points
        self.max_range_s = max_range_s
        self.max_series = max_series
        self.patterns_mode: PatternsMode = patterns_mode
        self.availability = availability

    def _upstream_error(self, response: httpx.Response, url: str) -> SourceError | None:
        """Loki answers a rejected query with 400 and a plain-text reason (parse error, limit exceeded)."""
        if response.status_code != 400:
            return None
        text = response.text.strip()
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            text = str(body.get("error") or body.get("message") or text)
        return SourceQueryError(f"query rejected: {text[:300]}", source=self.source, url=url)

    async def _data(self, path: str, params: Any) -> Any:
        body = await self.get_json(path, params=params)
        url = f"{self.display_url}{path}"
        if not isinstance(body, dict) or "status" not in body:
            raise SourceMalformedResponse("not a Loki API response", source=self.source, url=url)
        if body["status"] != "success":
            message = str(body.get("error") or body.get("message") or "no error message")[:300]
            raise self._scrub(SourceQueryError(f"query rejected: {message}", source=self.source, url=url))
        return body.get("data")

    def _check_range(self, start: datetime, end: datetime, path: str) -> None:
        check_span(start, end, max_range_s=self.max_range_s, source=self.source, url=f"{self.display_url}{path}")

    async def query_range(
        self,
        logql: str,
        start: datetime,
        end: datetime,
        *,
        limit: int = DEFAULT_LIMIT,
        direction: Direction = "backward",
        step_s: float | None = None,
    ) -> LogQueryResult:
        """Run a LogQL query over ``[start, end]``; log queries give streams, metric queries a matrix.

        Build ``logql`` with :mod:`tools.selectors`. ``limit`` is clamped to ``[1, max_limit]``. For metric queries
        the step is the larger of ``step_s`` and the step that keeps each series within the point budget.
        """
        path = "/loki/api/v1/query_range"
        self._check_range(start, end, path)
        limit = min(max(1, limit), self.max_limit)
        step = max(step_s or 0.0, choose_step(start, end, max_points=self.max_points))
        params = {
            "query": logql,
            "start": to_ns(start),
            "end": to_ns(end),
            "limit": str(limit),
            "direction": direction,
            "step": f"{step:g}",
        }
        data = await self._data(path, params)
        url = f"{self.display_url}{path}"
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise SourceMalformedResponse("query result without a result list", source=self.source, url=url)
        kind = data.get("resultType")
        if kind == "streams":
            streams = [self._stream(item, url) for item in data["result"]]
            return LogQueryResult(logql, "streams", direction, limit, streams=streams, total_series=len(streams))
        if kind == "matrix":
            series = [self._series(item, url) for item in data["result"][: self.max_series]]
            total = len(data["result"])
            return LogQueryResult(logql, "matrix", direction, limit, series=series, step_s=step, total_series=total)
        raise SourceMalformedResponse(f"unexpected resultType {str(kind)[:20]!r}", source=self.source, url=url)

    async def patterns(self, selector: str, start: datetime, end: datetime, *, step_s: float) -> list[PatternSeries]:
        """The patterns Loki's pattern ingester detected in the streams of ``selector`` over ``[start, end]``, with
        their line counts per ``step_s`` (at least the point budget's step).

        Raises :class:`PatternsUnavailable` when this Loki has no patterns API (404, 405, 501), refuses the query
        (400) or times out, and, in ``auto`` mode, without asking while that answer is remembered; in ``off`` mode
        always. Other failures (a 500, a refused connection) raise as usual and are not remembered.
        """
        path = "/loki/api/v1/patterns"
        url = f"{self.display_url}{path}"
        key = f"{self.display_url}|{self.tenant or ''}"
        if self.patterns_mode == "off":
            raise PatternsUnavailable("patterns API turned off (LOKI_PATTERNS=off)", source=self.source, url=url)
        if self.patterns_mode == "auto" and not self.availability.available(key):
            raise PatternsUnavailable("patterns API not available (remembered)", source=self.source, url=url)
        self._check_range(start, end, path)
        step = max(step_s, choose_step(start, end, max_points=self.max_points))
        params = {"query": selector, "start": to_ns(start), "end": to_ns(end), "step": f"{step:g}"}
        try:
            data = await self._data(path, params)
        except (SourceHTTPError, SourceQueryError, SourceTimeout) as exc:
            if isinstance(exc, SourceHTTPError) and exc.status_code not in UNAVAILABLE_STATUSES:
                raise
            self.availability.mark_unavailable(key)
            raise PatternsUnavailable(
                f"patterns API not available: {str(exc.args[0])[:200]}", source=self.source, url=url
            ) from exc
        return parse_patterns(data, source=self.source, url=url)

    def _stream(self, item: Any, url: str) -> LogStream:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise SourceMalformedResponse("stream without values", source=self.source, url=url)
        labels = parse_labels(item.get("stream", {}), source=self.source, url=url)
        entries = []
        for value in item["values"]:
            # a third element (structured metadata) may follow; only the timestamp and line are ours to use
            if not isinstance(value, list) or len(value) < 2 or not isinstance(value[1], str):
                raise SourceMalformedResponse(f"bad log entry {str(value)[:60]!r}", source=self.source, url=url)
            # the wire format is a decimal string; a JSON number would already have lost nanoseconds
            if not isinstance(value[0], str) or not is_ascii_digits(value[0]):
                raise SourceMalformedResponse("log timestamp is not a nanosecond string", source=self.source, url=url)
            entries.append(LogEntry(int(value[0]), value[1], labels))
        return LogStream(labels, entries)

    def _series(self, item: Any, url: str) -> Series:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise SourceMalformedResponse("matrix series without values", source=self.source, url=url)
        labels = parse_labels(item.get("metric", {}), source=self.source, url=url)
        return Series(labels, [parse_point(v, source=self.source, url=url) for v in item["values"]])

    async def labels(self, start: datetime, end: datetime, *, limit: int = DEFAULT_LOOKUP_LIMIT) -> list[str]:
        """Label names seen in ``[start, end]``, at most ``limit``."""
        path = "/loki/api/v1/labels"
        self._check_range(start, end, path)
        data = await self._data(path, {"start": to_ns(start), "end": to_ns(end)})
        return self._strings(data, path)[:limit]

    async def label_values(
        self,
        name: str,
        start: datetime,
        end: datetime,
        *,
        query: str | None = None,
        limit: int = DEFAULT_LOOKUP_LIMIT,
    ) -> list[str]:
        """Values of label ``name`` in ``[start, end]``, optionally only on streams matching the selector ``query``."""
        path = f"/loki/api/v1/label/{check_label_name(name)}/values"
        self._check_range(start, end, path)
        params = {"start": to_ns(start), "end": to_ns(end)}
        if query:
            params["query"] = query
        data = await self._data(path, params)
        return self._strings(data, path)[:limit]

    async def series(
        self,
        match: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        limit: int = DEFAULT_LOOKUP_LIMIT,
    ) -> list[dict[str, str]]:
        """Label sets of the streams matching any of the ``match`` selectors in ``[start, end]``, at most ``limit``."""
        if not match:
            raise ValueError("series() needs at least one selector")
        path = "/loki/api/v1/series"
        self._check_range(start, end, path)
        params = [("match[]", m) for m in match] + [("start", to_ns(start)), ("end", to_ns(end))]
        data = await self._data(path, params)
        url = f"{self.display_url}{path}"
        if not isinstance(data, list):
            raise SourceMalformedResponse("series result is not a list", source=self.source, url=url)
        return [parse_labels(item, source=self.source, url=url) for item in data[:limit]]

    def _strings(self, data: Any, path: str) -> list[str]:
        # Loki omits "data" entirely when a tenant has no labels yet
        if data is None:
            return []
        if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
            raise SourceMalformedResponse("expected a list of strings", source=self.source, url=self.display_url + path)
        return data
