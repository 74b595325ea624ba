"""Async client for the Prometheus HTTP API (``/api/v1``): queries, series and label look-ups, metadata, rules.

Every query is bounded so one alert cannot make the user's Prometheus do unbounded work: a range never spans more
than ``max_range_s``, its step is chosen so it never returns more than ``max_points`` points per series, each query
carries a server-side ``timeout``, and results keep at most ``max_series`` series (the rest is counted, not kept).
Queries are sent as POST forms, so long (escaped, untrusted) label values never hit URL-length limits of proxies.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Unpack

import httpx

from tools.errors import SourceError, SourceMalformedResponse, SourceQueryError
from tools.http import ClientOptions, SourceClient, auth_headers
from tools.prometheus_models import (
    ActiveAlert,
    MetricMetadata,
    QueryResult,
    ResultType,
    Rule,
    RuleGroup,
)
from tools.selectors import check_label_name, check_metric_name
from tools.types import (
    DEFAULT_MAX_POINTS,
    Series,
    check_span,
    choose_step,
    parse_labels,
    parse_point,
    parse_rfc3339,
    to_unix,
)

__all__ = [
    "ActiveAlert",
    "MetricMetadata",
    "PrometheusClient",
    "QueryResult",
    "ResultType",
    "Rule",
    "RuleGroup",
    "choose_step",
]

# Prometheus refuses range queries above this many points per series ("exceeded maximum resolution").
PROMETHEUS_MAX_POINTS = 11_000
DEFAULT_MAX_SERIES = 200
DEFAULT_MAX_RANGE_S = 7 * 86400
DEFAULT_LOOKUP_LIMIT = 1000


class PrometheusClient(SourceClient):
    """Client for one Prometheus (or a compatible API: Thanos, VictoriaMetrics, Mimir)."""

    source = "prometheus"

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        max_points: int = DEFAULT_MAX_POINTS,
        max_series: int = DEFAULT_MAX_SERIES,
        max_range_s: float = DEFAULT_MAX_RANGE_S,
        **options: Unpack[ClientOptions],
    ) -> None:
        if not 2 <= max_points <= PROMETHEUS_MAX_POINTS:
            raise ValueError(f"max_points must be between 2 and {PROMETHEUS_MAX_POINTS}")
        super().__init__(
            base_url,
            headers=auth_headers(token, username, password),
            secrets=[s for s in (token, password) if s],
            **options,
        )
        self.max_points = max_points
        self.max_series = max_series
        self.max_range_s = max_range_s

    # -- error handling ---------------------------------------------------------------------------------------

    def _upstream_error(self, response: httpx.Response, url: str) -> SourceError | None:
        """A ``{"status": "error"}`` document becomes SourceQueryError, except ``unavailable`` (a transient 503)."""
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict) or body.get("status") != "error":
            return None
        if body.get("errorType") == "unavailable":
            return None
        return self._query_error(body, url)

    def _query_error(self, body: dict[str, Any], url: str) -> SourceQueryError:
        kind = str(body.get("errorType") or "error")
        message = str(body.get("error") or "no error message")[:300]
        return SourceQueryError(f"{kind}: {message}", source=self.source, url=url)

    async def _data(self, method: str, path: str, **kwargs: Any) -> tuple[Any, list[str]]:
        body = await self.request_json(method, path, **kwargs)
        url = f"{self.display_url}{path}"
        if not isinstance(body, dict) or "status" not in body:
            raise SourceMalformedResponse("not a Prometheus API response", source=self.source, url=url)
        if body["status"] != "success":
            raise self._scrub(self._query_error(body, url))
        warnings = [str(w) for w in body.get("warnings") or []]
        return body.get("data"), warnings

    def _query_timeout(self) -> str:
        # ask Prometheus to give up a little before we do, so a slow query ends on the server too
        return f"{int(max(1.0, self.timeout_s * 0.9) * 1000)}ms"

    # -- queries ----------------------------------------------------------------------------------------------

    async def query(self, promql: str, at: datetime | None = None) -> QueryResult:
        """Evaluate an instant query at ``at`` (default: now on the server); series beyond ``max_series`` are cut."""
        form: dict[str, str] = {"query": promql, "timeout": self._query_timeout()}
        if at is not None:
            form["time"] = f"{to_unix(at):.3f}"
        data, warnings = await self._data("POST", "/api/v1/query", data=form, idempotent=True)
        return self._result(promql, data, warnings, step_s=None)

    async def query_range(
        self,
        promql: str,
        start: datetime,
        end: datetime,
        *,
        step_s: float | None = None,
        max_points: int | None = None,
    ) -> QueryResult:
        """Evaluate a range query over ``[start, end]``.

        The step is chosen by :func:`choose_step` within the point budget; an explicit ``step_s`` that would exceed
        the budget is raised to fit. A range longer than ``max_range_s`` is refused with SourceQueryError.
        """
        url = f"{self.display_url}/api/v1/query_range"
        check_span(start, end, max_range_s=self.max_range_s, source=self.source, url=url)
        budget = min(max_points or self.max_points, self.max_points)
        step = max(step_s or 0.0, choose_step(start, end, max_points=budget))
        form = {
            "query": promql,
            "start": f"{to_unix(start):.3f}",
            "end": f"{to_unix(end):.3f}",
            "step": f"{step:g}",
            "timeout": self._query_timeout(),
        }
        data, warnings = await self._data("POST", "/api/v1/query_range", data=form, idempotent=True)
        return self._result(promql, data, warnings, step_s=step)

    def _result(self, promql: str, data: Any, warnings: list[str], *, step_s: float | None) -> QueryResult:
        url = f"{self.display_url}/api/v1/query"
        if not isinstance(data, dict) or data.get("resultType") not in ("vector", "matrix", "scalar", "string"):
            raise SourceMalformedResponse("query result without a known resultType", source=self.source, url=url)
        kind: ResultType = data["resultType"]
        raw = data.get("result")
        if kind == "string":
            text = raw[1] if isinstance(raw, list) and len(raw) == 2 else None
            return QueryResult(promql, kind, [], 0, warnings, step_s, text=str(text))
        if kind == "scalar":
            point = parse_point(raw, source=self.source, url=url)
            return QueryResult(promql, kind, [Series({}, [point])], 1, warnings, step_s)
        if not isinstance(raw, list):
            raise SourceMalformedResponse("query result is not a list", source=self.source, url=url)
        series = [self._series(item, kind, url) for item in raw[: self.max_series]]
        return QueryResult(promql, kind, series, len(raw), warnings, step_s)

    def _series(self, item: Any, kind: ResultType, url: str) -> Series:
        if not isinstance(item, dict):
            raise SourceMalformedResponse("series is not an object", source=self.source, url=url)
        labels = parse_labels(item.get("metric", {}), source=self.source, url=url)
        if kind == "vector":
            points = [parse_point(item.get("value"), source=self.source, url=url)]
        else:
            values = item.get("values")
            if not isinstance(values, list):
                raise SourceMalformedResponse("matrix series without values", source=self.source, url=url)
            points = [parse_point(v, source=self.source, url=url) for v in values]
        return Series(labels, points)

    # -- look-ups ---------------------------------------------------------------------------------------------

    def _window(self, start: datetime | None, end: datetime | None) -> dict[str, str]:
        params: dict[str, str] = {}
        if start is not None:
            params["start"] = f"{to_unix(start):.3f}"
        if end is not None:
            params["end"] = f"{to_unix(end):.3f}"
        return params

    async def series(
        self,
        match: Sequence[str],
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        limit: int = DEFAULT_LOOKUP_LIMIT,
    ) -> list[dict[str, str]]:
        """Label sets of the series matching any of the ``match`` selectors, at most ``limit`` of them.

        Build the selectors with :mod:`tools.selectors`. ``limit`` is also sent to the server, which newer
        Prometheus versions honour, so the bound applies to the server's work and not only to what we keep.
        """
        if not match:
            raise ValueError("series() needs at least one selector")
        form: dict[str, str | list[str]] = {"match[]": list(match), "limit": str(limit), **self._window(start, end)}
        data, _ = await self._data("POST", "/api/v1/series", data=form, idempotent=True)
        url = f"{self.display_url}/api/v1/series"
        if not isinstance(data, list):
            raise SourceMalformedResponse("series result is not a list", source=self.source, url=url)
        return [parse_labels(item, source=self.source, url=url) for item in data[:limit]]

    async def label_names(
        self,
        match: Sequence[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        limit: int = DEFAULT_LOOKUP_LIMIT,
    ) -> list[str]:
        """Label names present on series matching ``match`` (all series when empty), at most ``limit``."""
        params = [("match[]", m) for m in match] + [("limit", str(limit))] + list(self._window(start, end).items())
        data, _ = await self._data("GET", "/api/v1/labels", params=params)
        return self._strings(data, "/api/v1/labels")[:limit]

    async def label_values(
        self,
        name: str,
        match: Sequence[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        limit: int = DEFAULT_LOOKUP_LIMIT,
    ) -> list[str]:
        """Values of label ``name`` on series matching ``match``, at most ``limit``. ``name`` must be an identifier."""
        path = f"/api/v1/label/{check_label_name(name)}/values"
        params = [("match[]", m) for m in match] + [("limit", str(limit))] + list(self._window(start, end).items())
        data, _ = await self._data("GET", path, params=params)
        return self._strings(data, path)[:limit]

    def _strings(self, data: Any, path: str) -> list[str]:
        if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
            raise SourceMalformedResponse("expected a list of strings", source=self.source, url=self.display_url + path)
        return data

    async def metadata(self, metric: str | None = None, *, limit: int = DEFAULT_LOOKUP_LIMIT) -> list[MetricMetadata]:
        """Type, help and unit of ``metric`` (or of up to ``limit`` metrics), as declared by the exporters."""
        params = {"limit": str(limit)}
        if metric is not None:
            params["metric"] = check_metric_name(metric)
        data, _ = await self._data("GET", "/api/v1/metadata", params=params)
        if not isinstance(data, dict):
            raise SourceMalformedResponse(
                "metadata is not an object", source=self.source, url=f"{self.display_url}/api/v1/metadata"
            )
        result = []
        for name, entries in list(data.items())[:limit]:
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict):
                    result.append(
                        MetricMetadata(
                            name, str(entry.get("type", "")), str(entry.get("help", "")), str(entry.get("unit", ""))
                        )
                    )
        return result

    # -- rules ------------------------------------------------------------------------------------------------

    async def rules(self, kind: Literal["alert", "record"] | None = None) -> list[RuleGroup]:
        """The loaded rule groups with health, last error and, for alerting rules, their active alerts."""
        params = {"type": kind} if kind else None
        data, _ = await self._data("GET", "/api/v1/rules", params=params)
        url = f"{self.display_url}/api/v1/rules"
        groups = data.get("groups") if isinstance(data, dict) else None
        if not isinstance(groups, list):
            raise SourceMalformedResponse("rules result without groups", source=self.source, url=url)
        return [self._group(g, url) for g in groups if isinstance(g, dict)]

    async def alerting_rule(self, name: str) -> Rule | None:
        """The alerting rule called ``name`` (the alert's ``alertname``), or None when Prometheus has none."""
        for group in await self.rules("alert"):
            for rule in group.rules:
                if rule.name == name:
                    return rule
        return None

    def _group(self, raw: dict[str, Any], url: str) -> RuleGroup:
        rules = [self._rule(r, url) for r in raw.get("rules") or [] if isinstance(r, dict)]
        return RuleGroup(str(raw.get("name", "")), str(raw.get("file", "")), float(raw.get("interval") or 0), rules)

    def _rule(self, raw: dict[str, Any], url: str) -> Rule:
        kind = raw.get("type")
        if kind not in ("alerting", "recording"):
            raise SourceMalformedResponse(f"unknown rule type {str(kind)[:20]!r}", source=self.source, url=url)
        alerts = [
            ActiveAlert(
                labels=parse_labels(a.get("labels", {}), source=self.source, url=url),
                annotations=parse_labels(a.get("annotations", {}), source=self.source, url=url),
                state=str(a.get("state", "")),
                active_at=parse_rfc3339(a.get("activeAt")),
                value=_float_or_none(a.get("value")),
            )
            for a in raw.get("alerts") or []
            if isinstance(a, dict)
        ]
        return Rule(
            name=str(raw.get("name", "")),
            type=kind,
            query=str(raw.get("query", "")),
            health=str(raw.get("health", "")),
            last_error=str(raw.get("lastError", "")),
            labels=parse_labels(raw.get("labels") or {}, source=self.source, url=url),
            annotations=parse_labels(raw.get("annotations") or {}, source=self.source, url=url),
            state=raw.get("state"),
            duration_s=float(raw.get("duration") or 0),
            alerts=alerts,
        )


def _float_or_none(raw: Any) -> float | None:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None
