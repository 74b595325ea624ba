"""Links from a report page into Grafana: the alert's silence form, its dashboard panel, and Explore for each
PromQL/LogQL query the page shows.

Grafana's own links (``silenceURL``, ``dashboardURL``, ``panelURL``) come from the webhook and are used as they
are. Others are built on Grafana's browser-facing address: the ``externalURL`` of the notification, else
GRAFANA_URL. Explore opens the query in the configured data source (its UID), or in Grafana's default one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from reports.models import Alert, Evidence
from reports.text import safe_url

# What the page links to Explore: evidence of these sources carries its query in ``ref``.
QUERY_SOURCES = {"prometheus": "prometheus", "loki": "loki"}
WINDOW_BEFORE = timedelta(hours=1)
WINDOW_AFTER = timedelta(minutes=30)
MAX_EXPLORE_LINKS = 4


@dataclass(frozen=True)
class GrafanaLinks:
    """Where Grafana is and which data sources Explore should use (all optional)."""

    base_url: str | None = None
    prometheus_uid: str | None = None
    loki_uid: str | None = None


def grafana_base(alert: Alert, links: GrafanaLinks) -> str | None:
    """Grafana's browser-facing base URL for this alert, without a trailing slash; None when unknown."""
    base = safe_url(alert.grafana_url) or safe_url(links.base_url)
    return base.rstrip("/") if base else None


def dashboard_link(alert: Alert, links: GrafanaLinks) -> str | None:
    """The alert's panel (or dashboard) in Grafana: Grafana's own URL, else one built from the dashboard UID."""
    given = safe_url(alert.panel_url) or safe_url(alert.dashboard_url)
    if given:
        return given
    base = grafana_base(alert, links)
    if not (base and alert.dashboard_uid):
        return None
    query: dict[str, str | int] = {}
    if alert.org_id is not None:
        query["orgId"] = alert.org_id
    if alert.panel_id is not None:
        query["viewPanel"] = alert.panel_id
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{base}/d/{quote(alert.dashboard_uid, safe='')}{suffix}"


def explore_link(
    base: str, kind: str, expr: str, *, start: datetime, end: datetime, uid: str | None, org_id: int | None
) -> str:
    """Grafana Explore (``panes`` format, Grafana 10+) showing ``expr`` from ``start`` to ``end``."""
    query: dict[str, object] = {"refId": "A", "expr": expr}
    pane: dict[str, object] = {
        "queries": [query],
        "range": {"from": str(int(start.timestamp() * 1000)), "to": str(int(end.timestamp() * 1000))},
    }
    if uid:
        pane["datasource"] = uid
        query["datasource"] = {"type": kind, "uid": uid}
    params: dict[str, str | int] = {"schemaVersion": 1, "panes": json.dumps({"sre": pane}, separators=(",", ":"))}
    if org_id is not None:
        params["orgId"] = org_id
    return f"{base}/explore?{urlencode(params)}"


def evidence_queries(item: Evidence) -> list[str]:
    """The PromQL/LogQL queries behind a piece of evidence (log checks join several stream selectors with "or")."""
    if item.source not in QUERY_SOURCES or not item.ref or not item.ref.strip():
        return []
    parts = item.ref.split(" or ") if item.source == "loki" else [item.ref]
    return [p.strip() for p in parts if p.strip()][:MAX_EXPLORE_LINKS]


def explore_links(item: Evidence, alert: Alert, links: GrafanaLinks, *, now: datetime) -> list[tuple[str, str]]:
    """(query, Explore URL) for each query of ``item``; empty when Grafana's address is unknown."""
    base = grafana_base(alert, links)
    if base is None:
        return []
    kind = QUERY_SOURCES.get(item.source, "")
    uid = links.prometheus_uid if kind == "prometheus" else links.loki_uid
    start = alert.starts_at - WINDOW_BEFORE
    end = min(now, alert.ends_at + WINDOW_AFTER) if alert.ends_at else now
    end = max(end, alert.starts_at + WINDOW_AFTER)  # a report opened right away still shows a useful range
    return [
        (expr, explore_link(base, kind, expr, start=start, end=end, uid=uid, org_id=alert.org_id))
        for expr in evidence_queries(item)
    ]
