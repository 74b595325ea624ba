"""A fake Grafana: alert rules (provisioning and Prometheus-compatible APIs), dashboards, annotations, health.

Auth is a service-account token sent as ``Authorization: Bearer <token>``; anything else is a 401 with Grafana's
JSON error body. Unknown ``/api`` paths answer 404 ``{"message": "Not found"}``::

    grafana = FakeGrafana(token="glsa_x")
    grafana.add_dashboard("node", "Node exporter", panels=[{"id": 2, "title": "CPU", "type": "timeseries"}])
    grafana.add_rule("cpu-high", "HighCPU", expr="avg(rate(node_cpu_seconds_total[5m])) > 0.9", state="firing",
                     alerts=[{"labels": {"instance": "10.0.0.12:9100"}, "state": "Alerting"}])
    client = grafana.client()            # GrafanaClient on an httpx.MockTransport
    grafana.fail_next(2, status=503)     # two 503s, then normal answers

A rule's query reads the data source ``datasource_uid`` names (``prometheus`` or ``loki``, both configured by
default; ``/api/datasources`` and ``/api/datasources/uid/{uid}`` describe them).

Organisations: ``token`` belongs to organisation 1 and ``org_tokens`` to others, as service-account tokens do;
``X-Grafana-Org-Id`` naming another organisation than the token's is refused (401). Rules, dashboards and
annotations live in one organisation each and are invisible from the others.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import unquote

import httpx

from tests.fakes import FakeUpstream, json_response, raw_path, read_json
from tools.grafana import GrafanaClient

BASE_URL = "http://grafana.test"
RULES_PATH = "/api/v1/provisioning/alert-rules"
_RULE_BY_UID = re.compile(r"^/api/v1/provisioning/alert-rules/([^/]+)$")
_ANNOTATION_BY_ID = re.compile(r"^/api/annotations/(\d+)$")
_DASHBOARD_BY_UID = re.compile(r"^/api/dashboards/uid/([^/]+)$")
_DATASOURCE_BY_UID = re.compile(r"^/api/datasources/uid/([^/]+)$")
DEFAULT_DATASOURCES = (
    ("prometheus", "Prometheus", "prometheus", "http://prometheus:9090"),
    ("loki", "Loki", "loki", "http://loki:3100"),
)


class FakeGrafana(FakeUpstream):
    """Grafana's state: ``rules`` (provisioning shape, plus evaluation state), ``annotations`` by id, ``dashboards``."""

    default_fault_body = '{"message": "Service Unavailable"}'

    def __init__(
        self,
        *,
        token: str = "glsa_fake_token",
        delay_s: float = 0.0,
        version: str = "11.3.0",
        org_tokens: dict[int, str] | None = None,
    ) -> None:
        super().__init__(delay_s=delay_s)
        self.token = token
        self.token_orgs = {token: 1, **{t: org for org, t in (org_tokens or {}).items()}}
        self.dashboard_orgs: dict[str, int] = {}
        self.annotation_orgs: dict[int, int] = {}
        self._org = 1  # the organisation of the request being answered
        self.version = version
        self.rules: dict[str, dict[str, Any]] = {}
        self.rule_states: dict[str, dict[str, Any]] = {}
        self.annotations: dict[int, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self._next_id = 1
        for uid, name, kind, url in DEFAULT_DATASOURCES:
            self.add_datasource(uid, name, kind, url=url)

    def client(self, **kwargs: Any) -> GrafanaClient:
        """A GrafanaClient talking to this fake (keyword arguments override the defaults, e.g. ``retries``)."""
        options: dict[str, Any] = {"token": self.token, "transport": self.transport(), "backoff_s": 0.0}
        options.update(kwargs)
        return GrafanaClient(BASE_URL, **options)

    # -- world building -------------------------------------------------------------------------------------

    def add_rule(
        self,
        uid: str,
        title: str,
        *,
        expr: str = "up == 0",
        folder_uid: str = "infra",
        folder_title: str = "Infrastructure",
        group: str = "hosts",
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        for_: str = "5m",
        state: str = "inactive",
        health: str = "ok",
        last_error: str = "",
        alerts: list[dict[str, Any]] | None = None,
        datasource_uid: str = "prometheus",
        org_id: int = 1,
    ) -> dict[str, Any]:
        """Add a Grafana-managed rule with one query ``A`` (PromQL, or LogQL when ``datasource_uid`` names a Loki
        data source) and a threshold condition ``B``."""
        model: dict[str, Any] = {"expr": expr, "refId": "A", "intervalMs": 1000, "maxDataPoints": 43200}
        if self.datasources.get(datasource_uid, {}).get("type") == "loki":
            model |= {"queryType": "range", "editorMode": "code"}
        rule = {
            "id": len(self.rules) + 1,
            "uid": uid,
            "orgID": org_id,
            "folderUID": folder_uid,
            "ruleGroup": group,
            "title": title,
            "condition": "B",
            "data": [
                {
                    "refId": "A",
                    "queryType": "",
                    "relativeTimeRange": {"from": 600, "to": 0},
                    "datasourceUid": datasource_uid,
                    "model": model,
                },
                {
                    "refId": "B",
                    "queryType": "",
                    "relativeTimeRange": {"from": 0, "to": 0},
                    "datasourceUid": "__expr__",
                    "model": {"type": "threshold", "expression": "A", "refId": "B"},
                },
            ],
            "updated": "2024-05-01T10:00:00Z",
            "noDataState": "NoData",
            "execErrState": "Error",
            "for": for_,
            "annotations": annotations,
            "labels": labels,
            "provenance": "",
            "isPaused": False,
        }
        self.rules[uid] = rule
        self.rule_states[uid] = {
            "folder_title": folder_title,
            "state": state,
            "health": health,
            "lastError": last_error,
            "alerts": [
                {
                    "labels": a.get("labels", {}),
                    "annotations": a.get("annotations", {}),
                    "state": a.get("state", "Alerting"),
                    "activeAt": a.get("activeAt", "2024-05-01T10:00:00Z"),
                    "value": a.get("value", "1e+00"),
                }
                for a in alerts or []
            ],
        }
        return rule

    def add_datasource(self, uid: str, name: str, type: str, *, url: str = "") -> dict[str, Any]:
        """Add a data source (``type`` is the plugin id: ``prometheus``, ``loki`` …)."""
        source = {
            "id": len(self.datasources) + 1,
            "uid": uid,
            "orgId": 1,
            "name": name,
            "type": type,
            "typeName": name,
            "access": "proxy",
            "url": url,
            "basicAuth": False,
            "isDefault": not self.datasources,
            "jsonData": {},
            "readOnly": False,
        }
        self.datasources[uid] = source
        return source

    def add_dashboard(
        self,
        uid: str,
        title: str,
        *,
        tags: list[str] | None = None,
        panels: list[dict[str, Any]] | None = None,
        org_id: int = 1,
    ) -> dict[str, Any]:
        """Add a dashboard; ``panels`` use Grafana's JSON model (rows may nest panels)."""
        self.dashboard_orgs[uid] = org_id
        dashboard = {
            "id": len(self.dashboards) + 1,
            "uid": uid,
            "title": title,
            "tags": tags or [],
            "panels": panels or [],
        }
        self.dashboards[uid] = dashboard
        return dashboard

    def add_annotation(self, text: str, tags: list[str], time_ms: int, *, org_id: int = 1, **fields: Any) -> int:
        """Store an annotation directly (as if another user created it) and return its id."""
        self._org = org_id
        return self._store_annotation({"text": text, "tags": tags, "time": time_ms, **fields})

    # -- HTTP ----------------------------------------------------------------------------------------------

    def respond(self, request: httpx.Request) -> httpx.Response:
        """Route one request like Grafana's HTTP API."""
        path = request.url.path
        if path == "/api/health":
            return json_response(200, {"commit": "abc1234", "database": "ok", "version": self.version})
        refused = self._authorise(request)
        if refused is not None:
            return refused
        method = request.method
        encoded = raw_path(request)
        if path == RULES_PATH and method == "GET":
            return json_response(200, [r for r in self.rules.values() if r["orgID"] == self._org])
        if (m := _RULE_BY_UID.match(encoded)) and method == "GET":
            return self._rule(unquote(m.group(1)))
        if path == "/api/prometheus/grafana/api/v1/rules" and method == "GET":
            return json_response(200, {"status": "success", "data": self._prom_rules()})
        if path == "/api/prometheus/grafana/api/v1/alerts" and method == "GET":
            alerts = [a for s in self.rule_states.values() for a in s["alerts"]]
            return json_response(200, {"status": "success", "data": {"alerts": alerts}})
        if path.startswith(("/api/datasources", "/api/dashboards/uid/")) and method == "GET":
            return self._lookup(encoded)
        if path == "/api/annotations":
            if method == "GET":
                return json_response(200, self._find(request.url.params))
            if method == "POST":
                return self._create(read_json(request))
        if (m := _ANNOTATION_BY_ID.match(path)) and method == "PATCH":
            return self._patch(int(m.group(1)), read_json(request))
        return json_response(404, {"message": "Not found"})

    def _lookup(self, encoded: str) -> httpx.Response:
        """A dashboard or data source by uid, or the list of data sources."""
        if m := _DASHBOARD_BY_UID.match(encoded):
            return self._dashboard(unquote(m.group(1)))
        if not encoded.startswith("/api/datasources"):
            return json_response(404, {"message": "Not found"})
        if encoded == "/api/datasources":
            return json_response(200, list(self.datasources.values()))
        m = _DATASOURCE_BY_UID.match(encoded)
        source = self.datasources.get(unquote(m.group(1))) if m else None
        return json_response(200, source) if source else json_response(404, {"message": "Data source not found"})

    def _rule(self, uid: str) -> httpx.Response:
        rule = self.rules.get(uid)
        if rule is None or rule["orgID"] != self._org:
            return json_response(404, {"message": "rule not found"})
        return json_response(200, rule)

    def _authorise(self, request: httpx.Request) -> httpx.Response | None:
        """None when the token is known and may act in the requested organisation, else Grafana's 401."""
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if given not in self.token_orgs:
            return json_response(
                401,
                {
                    "extra": None,
                    "message": "Invalid API key",
                    "messageId": "auth.unauthorized",
                    "statusCode": 401,
                    "traceID": "",
                },
            )
        asked = request.headers.get("x-grafana-org-id")
        self._org = int(asked) if asked and asked.isdigit() else self.token_orgs[given]
        if self._org != self.token_orgs[given]:
            # service-account tokens are bound to their organisation
            return json_response(401, {"message": "API key does not belong to the requested organization"})
        return None

    def _prom_rules(self) -> dict[str, Any]:
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for uid, rule in self.rules.items():
            state = self.rule_states[uid]
            key = (rule["folderUID"], rule["ruleGroup"])
            group = groups.setdefault(
                key,
                {
                    "name": rule["ruleGroup"],
                    "file": state["folder_title"],
                    "folderUid": rule["folderUID"],
                    "rules": [],
                    "interval": 60,
                    "lastEvaluation": "2024-05-01T10:05:00.123456789Z",
                    "evaluationTime": 0.01,
                },
            )
            group["rules"].append(
                {
                    "state": state["state"],
                    "name": rule["title"],
                    "query": rule["data"][0]["model"]["expr"],
                    "duration": _duration_s(rule["for"]),
                    "labels": rule["labels"],
                    "annotations": rule["annotations"],
                    "alerts": state["alerts"],
                    "health": state["health"],
                    "lastError": state["lastError"],
                    "type": "alerting",
                    "lastEvaluation": "2024-05-01T10:05:00.123456789Z",
                    "evaluationTime": 0.004,
                }
            )
        return {"groups": list(groups.values()), "totals": {}}

    def _dashboard(self, uid: str) -> httpx.Response:
        dashboard = self.dashboards.get(uid)
        if dashboard is None or self.dashboard_orgs.get(uid, 1) != self._org:
            return json_response(404, {"message": "Dashboard not found"})
        slug = re.sub(r"[^a-z0-9]+", "-", dashboard["title"].lower()).strip("-")
        meta = {
            "url": f"/d/{uid}/{slug}",
            "slug": slug,
            "folderUid": "infra",
            "folderTitle": "Infrastructure",
            "canSave": True,
            "created": "2024-01-01T00:00:00Z",
            "updated": "2024-05-01T00:00:00Z",
        }
        return json_response(200, {"dashboard": dashboard, "meta": meta})

    def _store_annotation(self, body: dict[str, Any]) -> int:
        annotation_id = self._next_id
        self._next_id += 1
        now_ms = int(time.time() * 1000)
        time_ms = int(body.get("time") or now_ms)
        dashboard_uid = body.get("dashboardUID") or ""
        self.annotations[annotation_id] = {
            "id": annotation_id,
            "alertId": int(body.get("alertId") or 0),
            "alertName": "",
            "dashboardId": self.dashboards[dashboard_uid]["id"] if dashboard_uid in self.dashboards else 0,
            "dashboardUID": dashboard_uid or None,
            "panelId": int(body.get("panelId") or 0),
            "userId": 1,
            "newState": str(body.get("newState") or ""),
            "prevState": "",
            "created": now_ms,
            "updated": now_ms,
            "time": time_ms,
            "timeEnd": int(body.get("timeEnd") or time_ms),
            "text": body.get("text", ""),
            "tags": list(body.get("tags") or []),
            "login": "sa-sre-triage",
            "email": "",
            "avatarUrl": "/avatar/0",
            "data": {},
        }
        self.annotation_orgs[annotation_id] = self._org
        return annotation_id

    def _create(self, body: Any) -> httpx.Response:
        if not isinstance(body, dict) or not str(body.get("text") or "").strip():
            return json_response(400, {"message": "bad request data"})
        uid = body.get("dashboardUID")
        if uid and (uid not in self.dashboards or self.dashboard_orgs.get(uid, 1) != self._org):
            return json_response(400, {"message": "Invalid dashboard UID in annotation request"})
        # alert-state fields are Grafana's own; the API does not let a client set them
        annotation_id = self._store_annotation({k: v for k, v in body.items() if k not in ("alertId", "newState")})
        return json_response(200, {"message": "Annotation added", "id": annotation_id})

    def _patch(self, annotation_id: int, body: Any) -> httpx.Response:
        annotation = self.annotations.get(annotation_id)
        if annotation is None or self.annotation_orgs.get(annotation_id) != self._org:
            return json_response(404, {"message": "Annotation not found"})
        if not isinstance(body, dict):
            return json_response(400, {"message": "bad request data"})
        for key in ("text", "tags", "time", "timeEnd"):
            if key in body and body[key] is not None:
                annotation[key] = body[key]
        annotation["updated"] = int(time.time() * 1000)
        return json_response(200, {"message": "Annotation patched"})

    def _find(self, params: httpx.QueryParams) -> list[dict[str, Any]]:
        tags = params.get_list("tags")
        match_any = params.get("matchAny") == "true"
        limit = int(params.get("limit") or 100)
        from_ms = int(params["from"]) if "from" in params else None
        to_ms = int(params["to"]) if "to" in params else None
        wanted = {"dashboardUID": params.get("dashboardUID"), "panelId": params.get("panelId")}
        kind = params.get("type")

        def keep(a: dict[str, Any]) -> bool:
            if self.annotation_orgs.get(a["id"]) != self._org:
                return False
            if tags and not (any if match_any else all)(t in a["tags"] for t in tags):
                return False
            if kind is not None and (a["alertId"] > 0) != (kind == "alert"):
                return False
            if from_ms is not None and a["timeEnd"] < from_ms:
                return False
            if to_ms is not None and a["time"] > to_ms:
                return False
            if wanted["dashboardUID"] is not None and a["dashboardUID"] != wanted["dashboardUID"]:
                return False
            return wanted["panelId"] is None or str(a["panelId"]) == wanted["panelId"]

        found = sorted(
            (a for a in self.annotations.values() if keep(a)), key=lambda a: (a["time"], a["id"]), reverse=True
        )
        return [dict(a) for a in found[:limit]]


def _duration_s(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", text))
