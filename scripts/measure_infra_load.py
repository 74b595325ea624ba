"""Print the HTTP requests and bytes one alert costs Grafana, Proxmox VE and PBS.

Runs the calls the triage makes for one alert (rule look-up, change timeline, guest status, backups, report
annotation) against the in-process fakes, shaped like the reference homelab: 3 nodes, 80 guests, a day of tasks.
Usage: ``.venv/bin/python scripts/measure_infra_load.py``
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.grafana import FakeGrafana
from tests.fakes.pbs import FakePbs
from tests.fakes.proxmox import FakeProxmox
from tools.http import SourceClient

T0 = 1_714_557_600
GUESTS = 80
NODES = 3


def homelab() -> tuple[FakeGrafana, FakeProxmox, FakePbs]:
    grafana = FakeGrafana()
    grafana.add_dashboard("node", "Node exporter")
    for i in range(40):
        grafana.add_rule(f"rule-{i}", f"Rule{i}")
    for i in range(50):
        grafana.add_annotation(f"deploy {i}", ["deploy"], (T0 - 3600 * i) * 1000)
    pve = FakeProxmox()
    pbs = FakePbs()
    pbs.add_datastore("backup")
    for n in range(NODES):
        pve.add_node(f"pve{n}")
    for i in range(GUESTS):
        vmid = 100 + i
        kind = "lxc" if i % 2 else "qemu"
        static = [f"10.0.1.{i}"] if i % 3 == 0 else None
        pve.add_guest(vmid, f"svc{i}", node=f"pve{i % NODES}", kind=kind, ips=[f"10.0.1.{i}"], static_ips=static)
        for day in range(3):
            pve.add_task(
                f"pve{i % NODES}",
                "vzdump",
                vmid=vmid,
                starttime=T0 - 86_400 * day - i * 60,
                endtime=T0 - 86_400 * day - i * 60 + 50,
            )
            pbs.add_task(
                "backup",
                f"backup:{'ct' if kind == 'lxc' else 'vm'}/{vmid}",
                starttime=T0 - 86_400 * day - i * 60,
                endtime=T0 - 86_400 * day - i * 60 + 50,
            )
            pbs.add_snapshot("backup", "ct" if kind == "lxc" else "vm", str(vmid), backup_time=T0 - 86_400 * day)
    return grafana, pve, pbs


def line(name: str, client: SourceClient) -> str:
    s = client.stats
    return f"  {name:<8} requests={s.requests:<3} sent={s.bytes_sent:>6} B  received={s.bytes_received:>7} B"


async def one_alert(instance: str, *, repeat: bool = False) -> None:
    grafana_fake, pve_fake, pbs_fake = homelab()
    grafana, pve, pbs = grafana_fake.client(), pve_fake.client(), pbs_fake.client()
    async with grafana, pve, pbs:
        if repeat:
            # an earlier alert from the same host has already taught the client its address
            await pve.find_guest(instance)
            pve.stats.reset()
        since_s, until_s = T0 - 3600, T0 + 600
        await grafana.alert_rule("rule-3")
        await grafana.find_annotations(from_ms=(T0 - 3600) * 1000, to_ms=(T0 + 600) * 1000, limit=50)
        match = await pve.find_guest(instance)
        guest_lookup = pve.stats.requests
        if match is not None and match.guest.node and match.guest.vmid:
            await pve.guest_status(match.guest.node, match.guest.vmid, match.guest.kind)
            await pve.node_status(match.guest.node)
            await pve.tasks(since_s=since_s, until_s=until_s, vmid=match.guest.vmid)
        await pbs.tasks(since_s=since_s, until_s=until_s)
        await pbs.datastores()
        annotation = await grafana.create_annotation("triage report", ["sre-triage"], T0 * 1000, dashboard_uid="node")
        await grafana.patch_annotation(annotation, time_end_ms=(T0 + 600) * 1000)
        found = f"{match.guest.vmid} by {match.matched_by}" if match else "no guest"
        label = "repeated alert" if repeat else "alert"
        print(f"{label} instance={instance!r}: {found}, guest look-up {guest_lookup} request(s)")
        for name, client in (("grafana", grafana), ("proxmox", pve), ("pbs", pbs)):
            print(line(name, client))


async def main() -> None:
    print(f"homelab: {NODES} nodes, {GUESTS} guests, 3 days of backup tasks")
    for instance in ("svc7:9100", "10.0.1.9:9100", "10.0.1.40:9100", "10.9.9.9:9100"):
        await one_alert(instance)
    await one_alert("10.0.1.40:9100", repeat=True)


if __name__ == "__main__":
    asyncio.run(main())
