"""Where the annotation lands when the webhook does not say: the rule's own panel, and the alert's organisation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from reports.delivery import DeliveryError, deliver, deliver_resolve
from reports.models import DeliveryState
from tests.fakes.grafana import FakeGrafana
from tests.support.sample_reports import START, sample_alert, sample_report
from triage.settings import ApiSettings, GrafanaSettings, StartupError, load_settings

NOW = START + timedelta(seconds=20)


@dataclass
class _Settings:
    api: ApiSettings


SETTINGS = _Settings(ApiSettings(api_token="test-api-token", public_url="https://triage.lan"))


def _stripped_alert(**fields: object) -> object:
    # what Grafana's webhook leaves of a panel-linked rule: no __dashboardUid__/__panelId__, no dashboard URLs
    return sample_alert(dashboard_uid=None, panel_id=None, source="grafana", **fields)


@pytest.fixture
def grafana() -> FakeGrafana:
    fake = FakeGrafana(org_tokens={2: "glsa_org_two"})
    fake.add_dashboard("node-exporter", "Node exporter", panels=[{"id": 4, "title": "Memory", "type": "timeseries"}])
    fake.add_rule("abc123", "HostMemoryPressure", annotations={"__dashboardUid__": "node-exporter", "__panelId__": "4"})
    return fake


async def test_the_rules_panel_from_the_provisioning_api_gets_the_annotation(grafana: FakeGrafana) -> None:
    report = sample_report(alert=_stripped_alert())

    async with grafana.client() as client:
        delivered = await deliver(report, client, SETTINGS, now=NOW)

    assert delivered.annotation is not None
    stored = grafana.annotations[delivered.annotation.id]
    assert (stored["dashboardUID"], stored["panelId"]) == ("node-exporter", 4)
    assert any(r.url.path == "/api/v1/provisioning/alert-rules/abc123" for r in grafana.requests)


async def test_a_rule_without_a_panel_or_that_is_gone_gives_an_organisation_annotation(grafana: FakeGrafana) -> None:
    gone = sample_report(alert=_stripped_alert(generator_url="https://grafana.lan/alerting/grafana/deleted/view"))

    async with grafana.client() as client:
        delivered = await deliver(gone, client, SETTINGS, now=NOW)

    assert delivered.delivery == DeliveryState.delivered
    assert delivered.annotation is not None
    assert grafana.annotations[delivered.annotation.id]["dashboardUID"] is None


async def test_the_alerts_organisation_gets_the_annotation_with_its_own_token(grafana: FakeGrafana) -> None:
    grafana.add_dashboard("pve", "Proxmox", panels=[{"id": 2, "title": "CPU", "type": "timeseries"}], org_id=2)
    report = sample_report(alert=sample_alert(org_id=2, dashboard_uid="pve", panel_id=2))
    settings = GrafanaSettings(url="http://grafana.test", token="glsa_fake_token", org_tokens="2=glsa_org_two")

    async with grafana.client(org_id=1, org_tokens=settings.org_token_map) as client:
        delivered = await deliver(report, client, SETTINGS, now=NOW)
        resolved = await deliver_resolve(delivered, client, SETTINGS, ends_at=NOW + timedelta(minutes=5), now=NOW)

    assert delivered.annotation is not None
    annotation_id = delivered.annotation.id
    assert grafana.annotation_orgs[annotation_id] == 2
    assert grafana.annotations[annotation_id]["dashboardUID"] == "pve"
    # the resolve patches the same annotation, in the same organisation
    assert resolved.delivery == DeliveryState.delivered
    assert grafana.annotations[annotation_id]["timeEnd"] == int((NOW + timedelta(minutes=5)).timestamp() * 1000)
    assert len(grafana.annotations) == 1


async def test_an_organisation_without_a_token_fails_the_delivery_and_says_why(grafana: FakeGrafana) -> None:
    report = sample_report(alert=sample_alert(org_id=5, dashboard_uid=None, panel_id=None))

    async with grafana.client(org_id=1) as client:
        with pytest.raises(DeliveryError) as caught:
            await deliver(report, client, SETTINGS, now=NOW)

    assert caught.value.transient is False
    assert caught.value.report.delivery == DeliveryState.failed
    error = caught.value.report.delivery_error or ""
    assert "no service-account token for Grafana organisation 5 (add it to GRAFANA_ORG_TOKENS)" in error
    assert grafana.annotations == {}


def test_org_tokens_setting_is_validated_without_echoing_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAFANA_ORG_TOKENS", "two=glsa_secret_value")
    with pytest.raises(StartupError, match="GRAFANA_ORG_TOKENS: use ORGID=TOKEN pairs") as caught:
        load_settings()
    assert "glsa_secret_value" not in str(caught.value)
    assert GrafanaSettings(org_tokens=" 2=a , 3=b ").org_token_map == {2: "a", 3: "b"}
