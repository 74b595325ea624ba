"""Pieces most scenario worlds share: the everyday log chatter of a host, so a triage has noise to see through."""

from __future__ import annotations

from typing import Any

from tests.scenarios.model import Host, Log

BACKGROUND_FROM_MIN = -125.0
BACKGROUND_TO_MIN = 4.0


def journal(host: str, unit: str) -> dict[str, str]:
    """Labels of a journald stream shipped by Alloy/Promtail."""
    return {"host": host, "job": "systemd-journal", "unit": unit}


def container(host: str, name: str) -> dict[str, str]:
    """Labels of a Docker container's stream (Promtail docker_sd)."""
    return {"host": host, "job": "docker", "container": name}


def background(host: str) -> list[Log]:
    """A host's routine lines through both the triage window and the one before it.

    One of them is an error that has been there all along (a misconfigured textfile collector): a triage that ranks
    it high has not compared the window with the previous one.
    """
    span_min = BACKGROUND_TO_MIN - BACKGROUND_FROM_MIN
    return [
        Log(
            journal(host, "prometheus-node-exporter.service"),
            BACKGROUND_FROM_MIN,
            'level=error msg="error reading textfile collector directory" path=/var/lib/node_exporter '
            'err="open /var/lib/node_exporter: no such file or directory"',
            repeat=int(span_min // 10),
            every_s=600,
        ),
        Log(
            journal(host, "cron.service"),
            BACKGROUND_FROM_MIN + 3,
            "CRON[2211]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
            repeat=int(span_min // 10),
            every_s=600,
        ),
        Log(
            journal(host, "systemd-timesyncd.service"),
            BACKGROUND_FROM_MIN + 7,
            "systemd-timesyncd[402]: Network configuration changed, trying to establish connection.",
            repeat=int(span_min // 30),
            every_s=1800,
        ),
    ]


def kernel(host: str) -> dict[str, str]:
    """Labels of a host's kernel messages as the journal ships them (no unit: the kernel transport)."""
    return {"host": host, "job": "systemd-journal", "transport": "kernel"}


def node_host(name: str, **shapes: Any) -> Host:
    """The node_exporter of a Proxmox node or any other host named ``name`` (``name:9100``), with every series a
    current node_exporter has (``extended``); ``shapes`` set the others (``iowait=step(...)``)."""
    return Host(f"{name}:9100", extended=True, **shapes)
