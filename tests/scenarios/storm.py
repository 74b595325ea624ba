"""The alert storm of a node failure: node pve-j3 of the ``node_down_storm`` world goes down with its 16 guests."""

from __future__ import annotations

from reports.models import Alert, AlertStatus, labels_fingerprint
from tests.scenarios.catalog_outages import STORM_GUESTS
from tests.scenarios.world import Anchor

STORM_SIZE = 50


def storm_alerts(anchor: Anchor, *, group_keys: bool, size: int = STORM_SIZE) -> list[Alert]:
    """What a node failure sends: per guest TargetDown, guest-not-running and probe failure; the node's own two.

    With ``group_keys`` the alerts carry the group key Alertmanager gives them under ``group_by: [alertname]``.
    They start together, within the storm window, half-way between the scenario's alert and the triage.
    """
    started = anchor.t0 + (anchor.now - anchor.t0) / 2
    specs: list[tuple[str, dict[str, str]]] = [
        ("ProxmoxNodeDown", {"node": "pve-j3", "severity": "critical"}),
        ("TargetDown", {"instance": "pve-j3:9100", "job": "node", "severity": "critical"}),
    ]
    for vmid, name, kind in STORM_GUESTS:
        specs.append(("TargetDown", {"instance": f"{name}:9100", "job": "node", "severity": "critical"}))
        specs.append(("ProxmoxGuestNotRunning", {"id": f"{kind}/{vmid}", "node": "pve-j3", "severity": "warning"}))
        specs.append(("HttpProbeFailed", {"instance": f"https://{name}.lab.example", "job": "blackbox"}))
    alerts = []
    for alertname, labels in specs[:size]:
        full = {"alertname": alertname, **labels}
        alerts.append(
            Alert(
                fingerprint=labels_fingerprint(full),
                alertname=alertname,
                status=AlertStatus.firing,
                labels=full,
                starts_at=anchor.t0 if alertname == "ProxmoxNodeDown" else started,
                source="alertmanager",
                group_key=f'{{}}:{{alertname="{alertname}"}}' if group_keys else None,
            )
        )
    return alerts
