"""Async client for the Grafana HTTP API (service-account token, ``Authorization: Bearer …``).

Alert rules (provisioning API and the Prometheus-compatible rules/alerts endpoints), dashboards by UID, health,
and annotations — the only writes, used to put a report on the alert's dashboard. Times are epoch milliseconds::

    async with GrafanaClient("https://grafana.lan", token=token) as grafana:
        annotation_id = await grafana.create_annotation("triage: disk full", ["sre-triage"], time_ms=start_ms)
        await grafana.patch_annotation(annotation_id, time_end_ms=end_ms)
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, Unpack

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.errors import SourceMalformedResponse, SourceNotFound, SourceQueryError, SourceRequestError
from tools.http import ClientOptions, SourceClient
from tools.proxmox_api import parse_list, parse_model, segment

MAX_ANNOTATIONS = 1000
PROM_RULES = "/api/prometheus/grafana/api/v1/rules"
PROM_ALERTS = "/api/prometheus/grafana/api/v1/alerts"
PROVISIONING_RULES = "/api/v1/provisioning/alert-rules"
# Grafana's own rule for UIDs (util.IsValidShortUID and its 40-character limit).
_UID = re.compile(r"[A-Za-z0-9_-]{1,40}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class RuleQuery(_Model):
    """One query of a Grafana-managed rule: its refId, data source, and the PromQL/LogQL (``expr``) if any."""

    ref_id: str = Field(alias="refId")
    datasource_uid: str = Field("", alias="datasourceUid")
    query_type: str = Field("", alias="queryType")
    relative_from_s: int | None = None
    relative_to_s: int | None = None
    model: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _range(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("relativeTimeRange"), dict):
            rng = data["relativeTimeRange"]
            return {**data, "relative_from_s": rng.get("from"), "relative_to_s": rng.get("to")}
        return data

    @property
    def expr(self) -> str | None:
        """The query text: ``expr`` for Prometheus/Loki data sources, ``expression`` for server-side expressions."""
        value = self.model.get("expr") or self.model.get("expression")
        return str(value) if value else None


class AlertRule(_Model):
    """A Grafana-managed alert rule as the provisioning API returns it."""

    uid: str
    title: str
    folder_uid: str = Field("", alias="folderUID")
    rule_group: str = Field("", alias="ruleGroup")
    condition: str = ""
    data: list[RuleQuery] = Field(default_factory=list)
    for_: str = Field("", alias="for")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    no_data_state: str = Field("", alias="noDataState")
    exec_err_state: str = Field("", alias="execErrState")
    is_paused: bool = Field(False, alias="isPaused")
    updated: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        # Grafana sends null, not {}, for a rule without labels or annotations.
        if isinstance(data, dict):
            return {**data, "labels": data.get("labels") or {}, "annotations": data.get("annotations") or {}}
        return data


class ActiveAlert(_Model):
    """One alert instance of a rule: its labels, state (``Alerting``, ``Pending``, ``Normal`` …) and value."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    state: str = ""
    active_at: datetime | None = Field(None, alias="activeAt")
    value: str = ""

    @model_validator(mode="before")
    @classmethod
    def _zero_time(cls, data: Any) -> Any:
        # Go's zero time ("0001-01-01T00:00:00Z") means "not active".
        if isinstance(data, dict) and str(data.get("activeAt", "")).startswith("0001-01-01"):
            return {**data, "activeAt": None}
        return data


class RuleState(_Model):
    """A rule as the Prometheus-compatible rules endpoint reports it: evaluation state, health and alerts."""

    name: str
    group: str = ""
    folder: str = ""
    state: str = ""
    health: str = ""
    type: str = "alerting"
    query: str = ""
    duration_s: float = Field(0.0, alias="duration")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    last_error: str = Field("", alias="lastError")
    last_evaluation: datetime | None = Field(None, alias="lastEvaluation")
    alerts: list[ActiveAlert] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            keys = ("labels", "annotations", "alerts")
            return {**data, **{k: data.get(k) or ({} if k != "alerts" else []) for k in keys}}
        return data


class Annotation(_Model):
    """An annotation: a point (``time_end_ms`` equal to or absent) or a region, optionally on a dashboard panel."""

    id: int
    text: str = ""
    tags: list[str] = Field(default_factory=list)
    time_ms: int = Field(0, alias="time")
    time_end_ms: int | None = Field(None, alias="timeEnd")
    dashboard_uid: str | None = Field(None, alias="dashboardUID")
    panel_id: int | None = Field(None, alias="panelId")
    alert_id: int | None = Field(None, alias="alertId")
    login: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {**data, "tags": data.get("tags") or [], "text": data.get("text") or ""}
        return data


class Panel(_Model):
    """A dashboard panel with the query texts of its targets (rows are flattened into their panels)."""

    id: int
    title: str = ""
    type: str = ""
    queries: list[str] = Field(default_factory=list)


class Dashboard(_Model):
    """A dashboard by UID: title, tags, URL path, folder and its panels."""

    uid: str
    title: str
    tags: list[str] = Field(default_factory=list)
    url: str = ""
    folder_title: str = ""
    panels: list[Panel] = Field(default_factory=list)


class Health(_Model):
    """``/api/health``: database state and version."""

    database: str = ""
    version: str = ""
    commit: str = ""


def _panels(raw: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in raw:
        if not isinstance(panel, dict):
            continue
        if panel.get("type") == "row":
            out.extend(_panels(panel.get("panels") or []))
            continue
        if "id" not in panel:
            continue
        targets = panel.get("targets") or []
        queries = [str(t.get("expr") or t.get("query") or "") for t in targets if isinstance(t, dict)]
        out.append(
            {
                "id": panel["id"],
                "title": panel.get("title", ""),
                "type": panel.get("type", ""),
                "queries": [q for q in queries if q],
            }
        )
    return out


def is_grafana_uid(value: str) -> bool:
    """Whether ``value`` is a Grafana UID (letters, digits, ``-`` and ``_``, at most 40): anything else, such as a
    ``..`` in an alert label, names no Grafana object and is never put into a request path."""
    return bool(_UID.fullmatch(value))


class GrafanaClient(SourceClient):
    """Grafana, authenticated with a service-account token (``org_id`` selects the organisation).

    Service-account tokens belong to one organisation. ``org_tokens`` maps further organisation ids to their own
    tokens; the methods taking ``org_id`` act in that organisation with its token. An organisation without a token
    raises :class:`~tools.errors.SourceRequestError` before any request (Grafana refuses a token of another
    organisation).
    """

    source = "grafana"

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        org_id: int | None = None,
        org_tokens: dict[int, str] | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if org_id is not None:
            headers["X-Grafana-Org-Id"] = str(org_id)
        self.org_id = org_id
        self._org_tokens = dict(org_tokens or {})
        super().__init__(base_url, headers=headers, secrets=[token, *self._org_tokens.values()], **options)

    def _org(self, org_id: int | None) -> dict[str, str] | None:
        """Request headers that act in organisation ``org_id`` (None: the client's own organisation)."""
        if org_id is None or org_id == self.org_id:
            return None
        headers = {"X-Grafana-Org-Id": str(int(org_id))}
        if org_id in self._org_tokens:
            headers["Authorization"] = f"Bearer {self._org_tokens[org_id]}"
        elif self.org_id is not None:
            # Grafana would answer a bare 401: the main token belongs to organisation ``self.org_id``
            raise SourceRequestError(
                f"no service-account token for Grafana organisation {int(org_id)} (add it to GRAFANA_ORG_TOKENS)",
                source=self.source,
                url=self.display_url,
            )
        return headers

    def _at(self, path: str) -> str:
        return self.display_url + path

    async def health(self) -> Health:
        """``/api/health`` (no authentication needed): database state and Grafana version."""
        return parse_model(Health, await self.get_json("/api/health"), source=self.source, url=self._at("/api/health"))

    async def alert_rules(self) -> list[AlertRule]:
        """Every Grafana-managed alert rule, as defined (provisioning API)."""
        data = await self.get_json(PROVISIONING_RULES)
        return parse_list(AlertRule, data, source=self.source, url=self._at(PROVISIONING_RULES))

    async def alert_rule(self, uid: str, *, org_id: int | None = None) -> AlertRule | None:
        """One alert rule by UID (in organisation ``org_id``), or None when Grafana has no rule with that UID (or it
        is not a UID at all)."""
        if not is_grafana_uid(uid):
            return None
        path = f"{PROVISIONING_RULES}/{segment(uid)}"
        try:
            data = await self.request_json("GET", path, headers=self._org(org_id))
        except SourceNotFound:
            return None
        return parse_model(AlertRule, data, source=self.source, url=self._at(path))

    async def rule_states(self) -> list[RuleState]:
        """Every rule with its evaluation state, health, last error and alert instances (Prometheus-compatible)."""
        body = await self._prom(PROM_RULES)
        groups = body.get("groups") if isinstance(body, dict) else None
        rules: list[RuleState] = []
        for group in groups or []:
            if not isinstance(group, dict):
                continue
            context = {"group": group.get("name", ""), "folder": group.get("file", "")}
            for rule in group.get("rules") or []:
                item = {**context, **rule} if isinstance(rule, dict) else rule
                rules.append(parse_model(RuleState, item, source=self.source, url=self._at(PROM_RULES)))
        return rules

    async def active_alerts(self) -> list[ActiveAlert]:
        """Alert instances that are pending or firing now (Prometheus-compatible alerts endpoint)."""
        body = await self._prom(PROM_ALERTS)
        alerts = body.get("alerts") if isinstance(body, dict) else None
        return parse_list(ActiveAlert, alerts or [], source=self.source, url=self._at(PROM_ALERTS))

    async def _prom(self, path: str) -> Any:
        body = await self.get_json(path)
        if not isinstance(body, dict):
            raise SourceMalformedResponse("answer is not an object", source=self.source, url=self._at(path))
        if body.get("status") == "error":
            reason = self._redact(str(body.get("error") or body.get("errorType") or "unknown error"))
            raise SourceQueryError(reason[:300], source=self.source, url=self._at(path))
        return body.get("data")

    async def dashboard(self, uid: str) -> Dashboard | None:
        """A dashboard by UID (title, tags, folder, panels with their queries), or None when it does not exist."""
        if not is_grafana_uid(uid):
            return None
        path = f"/api/dashboards/uid/{segment(uid)}"
        try:
            body = await self.get_json(path)
        except SourceNotFound:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            raise SourceMalformedResponse('answer has no "dashboard" object', source=self.source, url=self._at(path))
        dash, meta = body["dashboard"], body.get("meta") or {}
        item = {
            "uid": dash.get("uid", uid),
            "title": dash.get("title", ""),
            "tags": dash.get("tags") or [],
            "url": meta.get("url", ""),
            "folder_title": meta.get("folderTitle", ""),
            "panels": _panels(dash.get("panels") or []),
        }
        return parse_model(Dashboard, item, source=self.source, url=self._at(path))

    async def find_annotations(
        self,
        *,
        tags: list[str] | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
        dashboard_uid: str | None = None,
        panel_id: int | None = None,
        match_any: bool = False,
        kind: Literal["annotation", "alert"] | None = "annotation",
        limit: int = 100,
        org_id: int | None = None,
    ) -> list[Annotation]:
        """Annotations overlapping ``[from_ms, to_ms]`` carrying all ``tags`` (any of them with ``match_any``).

        ``kind`` ``annotation`` (default) leaves out the state changes Grafana records for its own alerts,
        ``alert`` returns only those, None both.
        """
        params: list[tuple[str, str | int]] = [("limit", max(1, min(limit, MAX_ANNOTATIONS)))]
        if kind is not None:
            params.append(("type", kind))
        params += [("tags", tag) for tag in tags or []]
        optional = {"from": from_ms, "to": to_ms, "dashboardUID": dashboard_uid, "panelId": panel_id}
        params += [(key, value) for key, value in optional.items() if value is not None]
        if match_any:
            params.append(("matchAny", "true"))
        data = await self.request_json("GET", "/api/annotations", params=params, headers=self._org(org_id))
        return parse_list(Annotation, data, source=self.source, url=self._at("/api/annotations"))

    async def create_annotation(
        self,
        text: str,
        tags: list[str],
        time_ms: int,
        time_end_ms: int | None = None,
        dashboard_uid: str | None = None,
        panel_id: int | None = None,
        org_id: int | None = None,
    ) -> int:
        """Create an annotation (a region when ``time_end_ms`` is given, in organisation ``org_id``); return its id."""
        body: dict[str, Any] = {"text": text, "tags": tags, "time": time_ms}
        if time_end_ms is not None:
            body["timeEnd"] = time_end_ms
        if dashboard_uid is not None:
            body["dashboardUID"] = dashboard_uid
        if panel_id is not None:
            body["panelId"] = panel_id
        answer = await self.request_json("POST", "/api/annotations", json_body=body, headers=self._org(org_id))
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
            raise SourceMalformedResponse(
                "annotation answer has no id", source=self.source, url=self._at("/api/annotations")
            )
        return int(answer["id"])

    async def patch_annotation(
        self,
        annotation_id: int,
        *,
        text: str | None = None,
        time_end_ms: int | None = None,
        tags: list[str] | None = None,
        org_id: int | None = None,
    ) -> None:
        """Change the text, end time or tags of an annotation (of organisation ``org_id``); None keeps a field."""
        body: dict[str, Any] = {}
        if text is not None:
            body["text"] = text
        if time_end_ms is not None:
            body["timeEnd"] = time_end_ms
        if tags is not None:
            body["tags"] = tags
        if body:
            path = f"/api/annotations/{int(annotation_id)}"
            await self.request_json("PATCH", path, json_body=body, headers=self._org(org_id))
