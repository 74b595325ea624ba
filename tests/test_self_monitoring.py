"""Monitoring sre-triage itself: its Prometheus rules load and fire as intended (promtool), and every query of the
Grafana dashboard and the rules names a metric the service really exports on /metrics."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis.asyncio import Redis

from tests.support.intake import api
from tests.support.procs import require_binary
from triage.analysis.budget import RedisTokenBudget
from triage.notify.stats import record_deliveries
from triage.worker.job_stats import record_job

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "monitoring"
RULES = MONITORING / "prometheus" / "sre-triage-rules.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "sre-triage.json"
METRIC = re.compile(r"\b(sre_triage_[a-z_]+)\b")
SUFFIXES = ("_bucket", "_count", "_sum")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool")
    return subprocess.run([binary, *args], cwd=RULES.parent, capture_output=True, text=True, timeout=60)


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def rule_queries() -> list[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_each_rule_fires_on_the_series_that_should_trigger_it_and_not_on_a_healthy_service() -> None:
    result = promtool("test", "rules", "sre-triage-rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (RULES.parent / "sre-triage-rules.test.yml").read_text()))
    assert tested == {rule.split("alert: ")[1] for rule in re.findall(r"alert: \w+", RULES.read_text())}


@pytest.fixture
async def exported(make_settings: Any, redis: Redis) -> set[str]:
    """Series names on a real /metrics scrape, after a job, a delivery and some LLM spend were recorded."""
    await record_job(redis, "triage_alert", "failure", 2.0)
    await record_deliveries(redis, {"grafana": "failed"})
    await RedisTokenBudget(redis).reserve(1500, 10_000, datetime.now(UTC))
    async with api(make_settings()) as (_, client):
        await client.post("/webhook/grafana", json={"alerts": []})
        text = (await client.get("/metrics")).text
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    # families without a sample yet (no 503 happened) are declared by their TYPE line
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        if kind == "counter":
            names.add(family if family.endswith("_total") else family + "_total")
        else:
            names |= {family + suffix for suffix in (SUFFIXES if kind == "histogram" else ("",))}
    return names


async def test_dashboard_and_rules_query_only_metrics_the_service_exports(exported: set[str]) -> None:
    queried = {name for expr in [*dashboard_queries(), *rule_queries()] for name in METRIC.findall(expr)}
    # every family the rules are about must be queried somewhere, and each query must name a real series
    assert {"sre_triage_queue_depth", "sre_triage_jobs_total", "sre_triage_deliveries_total",
            "sre_triage_llm_tokens_spent", "sre_triage_llm_token_budget"} <= queried  # fmt: skip
    assert queried <= exported, f"not exported: {sorted(queried - exported)}"
    histograms = {name for name in queried if name.endswith(SUFFIXES)}
    assert histograms == {"sre_triage_intake_duration_seconds_bucket", "sre_triage_job_duration_seconds_bucket"}


async def test_metrics_show_delivery_states_and_the_hours_llm_spend_against_the_budget(
    make_settings: Any, redis: Redis
) -> None:
    await record_deliveries(redis, {"grafana": "delivered", "notify-1": "failed"})
    await record_deliveries(redis, {"grafana": "delivered"})
    await RedisTokenBudget(redis).reserve(1500, 10_000, datetime.now(UTC))
    async with api(make_settings(llm={"llm_hourly_token_budget": 10_000})) as (_, client):
        text = (await client.get("/metrics")).text

    assert 'sre_triage_deliveries_total{channel="grafana",state="delivered"} 2.0' in text
    assert 'sre_triage_deliveries_total{channel="notify-1",state="failed"} 1.0' in text
    assert "sre_triage_llm_tokens_spent 1500.0" in text
    assert "sre_triage_llm_token_budget 10000.0" in text


def test_dashboard_asks_for_its_prometheus_data_source_and_is_provisioned_from_a_file() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    provider = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/sre-triage.yaml").read_text())
    assert provider["apiVersion"] == 1 and provider["providers"][0]["type"] == "file"
    assert provider["providers"][0]["options"]["path"].startswith("/var/lib/grafana/dashboards")


def test_the_scrape_example_uses_the_job_name_the_rules_expect() -> None:
    scrape = yaml.safe_load((MONITORING / "prometheus/scrape-sre-triage.yml").read_text())
    assert scrape["scrape_configs"][0]["job_name"] == "sre-triage"
    assert 'up{job="sre-triage"}' in " ".join(rule_queries())
