"""Report page links into Grafana: the silence form, the dashboard panel, and Explore for each query shown."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reports.grafana_links import GrafanaLinks
from reports.models import Evidence, Report
from reports.render import render_report_html
from tests.support.sample_reports import START, sample_alert, sample_report

NOW = START + timedelta(minutes=10)
PROMQL = 'node_memory_MemAvailable_bytes{instance="pve2:9100"} / node_memory_MemTotal_bytes'
SELECTORS = '{host="pve2"} |~ "(?i)oom" or {unit="pve-guests.service"}'


def _links(html: str, text: str) -> list[str]:
    return [unescape(href) for href, label in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', html) if text in label]


def _report(**alert: Any) -> Report:
    evidence = [
        Evidence(id="mem", source="prometheus", kind="saturation", title="memory low", score=0.9, ref=PROMQL),
        Evidence(id="oom", source="loki", kind="log", title="OOM kill", score=0.8, ref=SELECTORS),
        Evidence(id="task", source="proxmox", kind="task", title="backup ran", score=0.5, ref="/nodes/pve2/tasks"),
    ]
    return sample_report(alert=sample_alert(**alert), evidence=evidence)


def test_grafana_silence_and_panel_links_come_from_the_webhook() -> None:
    report = _report(
        silence_url="https://grafana.lan/alerting/silence/new?alertmanager=grafana&matcher=alertname%3DHostMemoryPressure",
        panel_url="https://grafana.lan/d/node-exporter?orgId=1&viewPanel=4",
    )

    html = render_report_html(report, now=NOW)

    assert _links(html, "silence in Grafana") == [report.alert.silence_url]
    assert _links(html, "dashboard panel") == ["https://grafana.lan/d/node-exporter?orgId=1&viewPanel=4"]


def test_the_panel_link_is_built_from_the_dashboard_uid_when_grafana_sent_none() -> None:
    report = _report(grafana_url="https://grafana.lan/", org_id=2)

    html = render_report_html(report, now=NOW)

    assert _links(html, "dashboard panel") == ["https://grafana.lan/d/node-exporter?orgId=2&viewPanel=4"]


def test_each_promql_and_logql_query_gets_an_explore_link_in_its_data_source() -> None:
    report = _report(grafana_url="https://grafana.lan/", org_id=1)
    links = GrafanaLinks(prometheus_uid="prom-uid", loki_uid="loki-uid")

    html = render_report_html(report, now=NOW, grafana=links)

    explore = _links(html, "Explore")
    assert len(explore) == 3  # one PromQL, two LogQL selectors; the Proxmox API path is not a query
    panes = []
    for url in explore:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://grafana.lan/explore"
        query = parse_qs(parts.query)
        assert query["orgId"] == ["1"] and query["schemaVersion"] == ["1"]
        panes.append(json.loads(query["panes"][0])["sre"])
    assert [(p["datasource"], p["queries"][0]["expr"]) for p in panes] == [
        ("prom-uid", PROMQL),
        ("loki-uid", '{host="pve2"} |~ "(?i)oom"'),
        ("loki-uid", '{unit="pve-guests.service"}'),
    ]
    window = panes[0]["range"]
    assert int(window["from"]) == int((START - timedelta(hours=1)).timestamp() * 1000)
    assert int(window["to"]) == int((START + timedelta(minutes=30)).timestamp() * 1000)


def test_without_a_grafana_address_there_are_no_explore_links_and_unsafe_urls_are_dropped() -> None:
    report = _report(grafana_url="javascript:alert(1)", silence_url="javascript:alert(2)")

    html = render_report_html(report, now=NOW)

    assert _links(html, "Explore") == []
    assert _links(html, "silence") == []
    assert "javascript:" not in html
