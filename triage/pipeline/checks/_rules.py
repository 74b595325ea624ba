"""Grafana-managed rules: which query language a rule's query is in, and why Grafana could not evaluate a rule.

Grafana sends ``DatasourceError`` when a rule's query fails (labels ``rulename``, ``datasource_uid``, ``ref_id``;
annotation ``Error``) and ``DatasourceNoData`` when it returns nothing. The alert itself says little; the rule's
``health`` and ``lastError`` from the Prometheus-compatible rules API say what failed (connection refused, bad
credentials, a timeout), and that is the finding to put first.
"""

from __future__ import annotations

import re

from reports.models import Alert, Evidence
from reports.redact import redact_text
from tools.grafana import AlertRule, GrafanaClient, RuleQuery, RuleState
from triage.pipeline.checks._log_selectors import clip
from triage.pipeline.checks.check_context import evidence_id

DATASOURCE_ALERTS = frozenset({"DatasourceError", "DatasourceNoData"})
EXPRESSION_UIDS = frozenset({"__expr__", "-100"})
ERROR_SCORE = 0.95
NODATA_SCORE = 0.8
ANNOTATION_SCORE = 0.85
ERROR_CHARS = 300

PROMQL = "promql"
LOGQL = "logql"
FLUX = "flux"
SQL = "sql"
EXPRESSION = "expression"
# data-source plugin types and the language their queries are written in
LANGUAGE_BY_TYPE = {
    "prometheus": PROMQL,
    "grafana-amazonprometheus-datasource": PROMQL,
    "loki": LOGQL,
    "postgres": SQL,
    "grafana-postgresql-datasource": SQL,
    "mysql": SQL,
    "mssql": SQL,
    "grafana-clickhouse-datasource": SQL,
}
LANGUAGE_NAMES = {PROMQL: "PromQL", LOGQL: "LogQL", FLUX: "Flux", SQL: "SQL", "influxql": "InfluxQL"}

_LOGQL_RANGE = re.compile(r"_over_time\s*\(\s*\{")
_FLUX = re.compile(r"\|>|\bfrom\s*\(\s*bucket\s*:")
_SQL = re.compile(r"(?is)^\s*(select|with)\b.*\bfrom\b")


def looks_like_logql(query: str) -> bool:
    """A Grafana rule may query Loki; LogQL starts with a stream selector or wraps one in a range aggregation."""
    text = query.strip()
    return text.startswith("{") or bool(_LOGQL_RANGE.search(text)) or any(op in text for op in ("|=", "|~", '!~ "'))


def _text(query: RuleQuery) -> str:
    for key in ("expr", "query", "rawSql", "rawQuery", "expression"):
        value = query.model.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def query_language(query: RuleQuery) -> str:
    """The language of one rule query: from its data source's plugin type when the model names it, else its text."""
    if query.datasource_uid in EXPRESSION_UIDS:
        return EXPRESSION
    source = query.model.get("datasource")
    kind = source.get("type") if isinstance(source, dict) else None
    text = _text(query)
    if isinstance(kind, str) and kind:
        if kind == "influxdb":
            return FLUX if _FLUX.search(text) else "influxql"
        return LANGUAGE_BY_TYPE.get(kind, kind)
    if "rawSql" in query.model:
        return SQL
    if _FLUX.search(text):
        return FLUX
    if _SQL.search(text):
        return SQL
    if looks_like_logql(text):
        return LOGQL
    return PROMQL if text else "unknown"


def language_name(language: str) -> str:
    return LANGUAGE_NAMES.get(language, language)


def first_query(rule: AlertRule) -> RuleQuery | None:
    """The rule's first data-source query (server-side expressions such as thresholds left out)."""
    return next((q for q in rule.data if q.datasource_uid not in EXPRESSION_UIDS), None)


def is_datasource_alert(alert: Alert) -> bool:
    """Grafana's own alert for a rule it could not evaluate (or that returned no data)."""
    return alert.alertname in DATASOURCE_ALERTS or "datasource_uid" in alert.labels


def _matching(states: list[RuleState], name: str, folder: str | None) -> RuleState | None:
    named = [s for s in states if s.name == name]
    if folder:
        named = [s for s in named if s.folder == folder] or named
    # several rules with one name in different folders: the unhealthy one is the one that alerted
    return next((s for s in named if s.health not in ("", "ok") or s.last_error), named[0] if named else None)


async def rule_health(alert: Alert, grafana: GrafanaClient, name: str, rule: AlertRule | None) -> list[Evidence]:
    """The rule's health and last error as evidence; the alert's ``Error`` annotation when Grafana has no error."""
    state = _matching(await grafana.rule_states(), name, alert.labels.get("grafana_folder"))
    source = alert.labels.get("datasource_uid") or (q.datasource_uid if rule and (q := first_query(rule)) else "")
    ref_id = alert.labels.get("ref_id", "")
    where = f"query {ref_id} on data source {source}" if ref_id and source else f"data source {source or 'unknown'}"
    if state is not None and (state.last_error or state.health == "error"):
        # data-source errors quote the URL they called, credentials included when the URL carries them
        error = clip(redact_text(state.last_error or "no error text"), ERROR_CHARS)
        return [
            Evidence(
                id=evidence_id("rule", "error", name),
                source="grafana",
                kind="datasource",
                title=f"Grafana cannot evaluate rule '{clip(name, 80)}' ({where}): {error}",
                detail=f"rule health {state.health or 'unknown'}, state {state.state or 'unknown'}",
                score=ERROR_SCORE,
                ref="/api/prometheus/grafana/api/v1/rules",
                data={"rule": name, "health": state.health, "datasource_uid": source, "ref_id": ref_id},
            )
        ]
    if state is not None and state.health == "nodata":
        return [
            Evidence(
                id=evidence_id("rule", "nodata", name),
                source="grafana",
                kind="datasource",
                title=f"Grafana rule '{clip(name, 80)}' gets no data from its {where}",
                detail=f"rule health nodata, state {state.state or 'unknown'}",
                score=NODATA_SCORE,
                ref="/api/prometheus/grafana/api/v1/rules",
                data={"rule": name, "health": state.health, "datasource_uid": source, "ref_id": ref_id},
            )
        ]
    annotated = alert.annotations.get("Error") or alert.annotations.get("error")
    if not annotated:
        return []
    # Grafana's own annotation on the alert; by the time we ask, the rule may already evaluate again
    return [
        Evidence(
            id=evidence_id("rule", "annotation", name),
            source="grafana",
            kind="datasource",
            title=f"Grafana could not evaluate rule '{clip(name, 80)}' ({where}): {clip(redact_text(annotated), ERROR_CHARS)}",
            detail="from the alert's Error annotation; the rule reports "
            + (f"health {state.health}" if state is not None else "no current state"),
            score=ANNOTATION_SCORE,
            ref="alert annotation Error",
            data={"rule": name, "datasource_uid": source, "ref_id": ref_id},
        )
    ]
