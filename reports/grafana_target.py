"""Where a report's annotation goes in Grafana: the organisation, and the dashboard panel of the alert's rule.

Grafana's webhook strips the reserved ``__dashboardUid__``/``__panelId__`` annotations from the alerts it sends;
only ``dashboardURL``/``panelURL`` remain, and only when the rule is linked to a panel. When neither is there, the
rule itself is asked for (provisioning API, by the UID in the alert's ``generatorURL``): its annotations still
carry the dashboard and panel. A rule that is gone, or a token that may not read rules, leaves an organisation
annotation; a Grafana that is down is an error, so the delivery is retried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from reports.models import Alert
from tools.errors import SourceError
from tools.grafana import GrafanaClient

# /alerting/grafana/<uid>/view (Grafana 9+), /alerting/<uid>/edit (older)
GRAFANA_RULE_PATH = re.compile(r"/alerting/(?:grafana/)?([A-Za-z0-9_-]{1,64})/(?:view|edit)")
DASHBOARD_KEY = "__dashboardUid__"
PANEL_KEY = "__panelId__"


@dataclass(frozen=True)
class Target:
    """A dashboard (and panel) to annotate; ``dashboard_uid`` None means an organisation annotation."""

    dashboard_uid: str | None = None
    panel_id: int | None = None


def rule_uid_of(alert: Alert) -> str | None:
    """The Grafana rule UID: the ``__alert_rule_uid__`` label, or the rule path of the generator URL."""
    uid = (alert.labels.get("__alert_rule_uid__") or "").strip()
    if uid and len(uid) <= 253:
        return uid
    if alert.generator_url:
        match = GRAFANA_RULE_PATH.search(urlsplit(alert.generator_url).path)
        if match:
            return match.group(1)
    return None


def _panel(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


async def annotation_target(alert: Alert, grafana: GrafanaClient) -> Target:
    """The alert's own dashboard/panel, else the one its rule names (provisioning API), else none.

    Raises :class:`~tools.errors.SourceError` only when the failure is transient (the caller retries).
    """
    if alert.dashboard_uid:
        return Target(alert.dashboard_uid, alert.panel_id)
    uid = rule_uid_of(alert) if alert.source == "grafana" else None
    if uid is None:
        return Target()
    try:
        rule = await grafana.alert_rule(uid, org_id=alert.org_id)
    except SourceError as exc:
        if exc.transient:
            raise
        return Target()  # 401/403: the token may not read rules; the report still gets its annotation
    if rule is None:
        return Target()
    dashboard = (rule.annotations.get(DASHBOARD_KEY) or "").strip()
    if not dashboard:
        return Target()
    return Target(dashboard, _panel(rule.annotations.get(PANEL_KEY)))
