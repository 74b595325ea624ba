"""What an alert is about, by its labels: the host, node, guest, instance or container it names.

One list for the report list's "target" column and filter (the store matches the same labels).
"""

from __future__ import annotations

from typing import LiteralString

from reports.models import Alert

# most specific first: the column shows the first one set
TARGET_LABELS: tuple[LiteralString, ...] = (
    "guest",
    "vm",
    "vmid",
    "container",
    "container_name",
    "name",
    "service",
    "instance",
    "host",
    "hostname",
    "nodename",
    "node",
    "pve_node",
)


def alert_target(alert: Alert) -> str:
    """The first target label the alert carries, or ""."""
    for key in TARGET_LABELS:
        value = (alert.labels.get(key) or "").strip()
        if value:
            return value
    return ""
