"""The reference homelab as the Grafana, Proxmox VE and PBS fakes hold it, for ``bench/source_load.py``.

Three nodes, 80 guests (half VMs, half containers, every third with a static address in its config, every fifth VM
without a guest agent), three days of
nightly vzdump and PBS backup tasks with their snapshots, daily garbage collection and verification on PBS, a few
restarts and a migration on the alert's day; in Grafana 40 alert rules, the node dashboard and two days of deploy
annotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tests.fakes.grafana import FakeGrafana
from tests.fakes.pbs import FakePbs
from tests.fakes.proxmox import FakeProxmox

NODES = 3
GUESTS = 80
DAYS = 3
RULES = 40
DATASTORE = "backup"
DASHBOARD_UID = "node-exporter"
FIRST_VMID = 100


@dataclass
class InfraWorld:
    """The three fakes, filled."""

    grafana: FakeGrafana
    proxmox: FakeProxmox
    pbs: FakePbs


def node_name(i: int) -> str:
    """``pve1`` … ``pve3``: the node guest ``i`` lives on."""
    return f"pve{i % NODES + 1}"


def guest_ip(i: int) -> str:
    """The address of guest ``i`` (``10.0.1.i``)."""
    return f"10.0.1.{i}"


def build(now: datetime, *, rule_uid: str) -> InfraWorld:
    """The homelab at ``now``; ``rule_uid`` is one of the Grafana rules."""
    now_s = int(now.timestamp())
    # the latest nightly run began six hours ago: the same world whatever the time of day the benchmark runs at
    nightly_s = now_s - 6 * 3600
    grafana = _grafana(now_s, rule_uid)
    pve, pbs = FakeProxmox(), FakePbs()
    pbs.add_datastore(DATASTORE, total=8 << 40, used=5 << 40)
    for n in range(NODES):
        pve.add_node(node_name(n))
    for i in range(GUESTS):
        vmid, kind = FIRST_VMID + i, "lxc" if i % 2 else "qemu"
        static = [guest_ip(i)] if i % 3 == 0 else None
        # every fifth VM runs without the QEMU guest agent, so only its config can tell its address
        agent = kind == "lxc" or i % 10 != 0
        pve.add_guest(vmid, f"svc{i}", node=node_name(i), kind=kind, ips=[guest_ip(i)], static_ips=static, agent=agent)
        group = "ct" if kind == "lxc" else "vm"
        for day in range(DAYS):
            # nightly backups, one guest a minute, as a vzdump job to PBS does them
            start_s = nightly_s - 86_400 * day + i * 60
            pve.add_task(node_name(i), "vzdump", vmid=vmid, starttime=start_s, endtime=start_s + 50)
            pbs.add_task("backup", f"{DATASTORE}:{group}/{vmid}", starttime=start_s, endtime=start_s + 50)
            pbs.add_snapshot(DATASTORE, group, str(vmid), backup_time=start_s, size=(4 + i % 20) << 30)
    for day in range(DAYS):
        after_backups_s = nightly_s - 86_400 * day + GUESTS * 60 + 600
        pbs.add_task("garbage_collection", DATASTORE, starttime=after_backups_s, endtime=after_backups_s + 900)
        pbs.add_task("verificationjob", f"{DATASTORE}:v-daily", starttime=after_backups_s + 1_000)
    for offset_min, kind, vmid in ((-40, "vzreboot", 101), (-25, "qmstart", 104), (-8, "vzmigrate", 109)):
        start_s = now_s + offset_min * 60
        pve.add_task(node_name(vmid - FIRST_VMID), kind, vmid=vmid, starttime=start_s, endtime=start_s + 30)
    return InfraWorld(grafana, pve, pbs)


def _grafana(now_s: int, rule_uid: str) -> FakeGrafana:
    grafana = FakeGrafana()
    grafana.add_dashboard(DASHBOARD_UID, "Node exporter", panels=[{"id": 4, "title": "CPU", "type": "timeseries"}])
    for i in range(RULES - 1):
        grafana.add_rule(f"rule-{i}", f"Rule{i}", expr=f'up{{job="svc{i}"}} == 0')
    grafana.add_rule(
        rule_uid,
        "HostHighCpuLoad",
        expr='1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) > 0.8',
    )
    for hour in range(48):
        at = timedelta(hours=hour)
        grafana.add_annotation(f"deploy svc{hour} v1.{hour}", ["deploy"], int((now_s - at.total_seconds()) * 1000))
    return grafana
