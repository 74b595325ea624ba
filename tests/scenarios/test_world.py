"""The scenario world can express what incidents one hop away need: node_exporter's wider series, a host that
reboots, extra and NFS filesystems, guest configuration and pending changes, task logs, storage, PBS namespaces and
host names, Grafana rules on Loki, a topology file — without changing what existing scenarios produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fakes.grafana import FakeGrafana
from tests.fakes.pbs import FakePbs
from tests.fakes.proxmox import FakeProxmox
from tests.scenarios import all_scenarios
from tests.scenarios.model import (
    AlertSpec,
    Datastore,
    Expect,
    Filesystem,
    GrafanaRule,
    Guest,
    Host,
    Node,
    PbsTask,
    PveGuestMetrics,
    PveTask,
    Scenario,
    Storage,
    flat,
    step,
)
from tests.scenarios.runner import load_topology
from tests.scenarios.series import _Clock, host_series, pve_series
from tests.scenarios.world import Anchor, fill_grafana, fill_pbs, fill_proxmox, write_topology
from tests.support.prometheus import SyntheticSeries

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLASSIC = {
    "node_cpu_seconds_total",
    "node_memory_MemTotal_bytes",
    "node_memory_MemAvailable_bytes",
    "node_filesystem_size_bytes",
    "node_filesystem_avail_bytes",
    "node_disk_io_time_seconds_total",
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_load1",
    "up",
}


def _clock(before_min: float = 30.0) -> _Clock:
    return _Clock(T0, T0 - timedelta(minutes=before_min), T0 + timedelta(seconds=40))


def _values(series: SyntheticSeries) -> list[tuple[float, float]]:
    """(minutes from T0, value) of every sample."""
    out = []
    for at, value in series.points:
        assert isinstance(at, datetime)
        out.append(((at - T0).total_seconds() / 60.0, value))
    return out


def _scenario(**fields: Any) -> Scenario:
    alert = AlertSpec("X", {"instance": "x:9100"})
    return Scenario(name="x", story="a story long enough to tell", alert=alert, causal=Expect("x"), **fields)


def test_a_host_without_the_new_options_exports_exactly_the_classic_series() -> None:
    names = {s.name for s in host_series(_clock(), Host("plain:9100"))}
    assert names == CLASSIC


def test_an_extended_host_exports_swap_inodes_load_pressure_and_boot_time_under_node_exporter_names() -> None:
    host = Host("wide:9100", extended=True, swap_total_gb=2, swap_used=step(0.1, 0.9, -10), inodes=1000)
    by_name: dict[str, list[SyntheticSeries]] = {}
    for series in host_series(_clock(), host):
        by_name.setdefault(series.name, []).append(series)
    for name in (
        "node_memory_SwapTotal_bytes",
        "node_memory_SwapFree_bytes",
        "node_filesystem_files",
        "node_filesystem_files_free",
        "node_load5",
        "node_load15",
        "node_pressure_cpu_waiting_seconds_total",
        "node_pressure_io_stalled_seconds_total",
        "node_pressure_memory_waiting_seconds_total",
        "node_boot_time_seconds",
    ):
        assert name in by_name, name
    (swap_free,) = by_name["node_memory_SwapFree_bytes"]
    values = _values(swap_free)
    before = [v for m, v in values if m < -12]
    after = [v for m, v in values if m > -8]
    assert min(before) > 1.7 * (1 << 30) and max(after) < 0.3 * (1 << 30)
    (files,) = by_name["node_filesystem_files"]
    assert files.labels["mountpoint"] == "/" and {v for _, v in _values(files)} == {1000}


def test_a_host_that_reboots_has_a_gap_then_restarted_counters_and_a_new_boot_time() -> None:
    host = Host("rebooted:9100", gone_min=-10, back_min=-4)
    series = {(s.name, s.labels.get("cpu"), s.labels.get("mode")): s for s in host_series(_clock(), host)}
    idle = _values(series[("node_cpu_seconds_total", "0", "idle")])
    assert not [m for m, _ in idle if -10 <= m < -4]
    assert next(v for m, v in idle if m >= -4) < 100 < [v for m, v in idle if m < -10][-1]
    up = _values(series[("up", None, None)])
    assert {v for m, v in up if -10 <= m < -4} == {0.0} and {v for m, v in up if m >= -4} == {1.0}
    boot = _values(series[("node_boot_time_seconds", None, None)])
    assert boot[-1][1] == T0.timestamp() - 4.5 * 60 and boot[0][1] < T0.timestamp() - 86400


def test_an_nfs_mount_that_cannot_be_stat_ed_keeps_only_its_device_error_and_readonly_series() -> None:
    nfs = Filesystem("/mnt/media", "apollo:/volume1/media", fstype="nfs4", device_error=step(0, 1, -5, over_min=0.25))
    host = Host("client:9100", filesystems=[nfs])
    mine = [s for s in host_series(_clock(), host) if s.labels.get("mountpoint") == "/mnt/media"]
    assert {s.labels["device"] for s in mine} == {"apollo:/volume1/media"}
    by_name = {s.name: s for s in mine}
    assert set(by_name) == {
        "node_filesystem_size_bytes",
        "node_filesystem_avail_bytes",
        "node_filesystem_files",
        "node_filesystem_files_free",
        "node_filesystem_device_error",
        "node_filesystem_readonly",
    }
    assert max(m for m, _ in _values(by_name["node_filesystem_avail_bytes"])) < -4.7
    assert _values(by_name["node_filesystem_device_error"])[-1][1] == 1.0


async def _get(fake: Any, path: str, headers: dict[str, str], **params: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as client:
        return await client.get(path, params=params, headers=headers)


def _pve_auth(pve: FakeProxmox) -> dict[str, str]:
    return {"authorization": f"PVEAPIToken={pve.token_id}={pve.token_secret}"}


async def test_a_guest_config_change_shows_in_config_and_pending_as_pve_lists_them() -> None:
    pve = FakeProxmox()
    scenario = _scenario(
        nodes=[Node("atlas", booted_min=-60, iowait=0.3)],
        guests=[
            Guest(
                901,
                "docs",
                "atlas",
                lock="backup",
                config={"memory": 2048},
                pending={"cores": 4},
                pending_delete=["balloon"],
            )
        ],
    )
    scenario.guests[0].config["balloon"] = 0
    fill_proxmox(pve, scenario, Anchor(t0=T0, now=T0 + timedelta(seconds=40)))
    auth = _pve_auth(pve)
    applied = (await _get(pve, "/api2/json/nodes/atlas/qemu/901/config", auth)).json()["data"]
    assert (applied["memory"], applied["cores"], applied["lock"]) == (2048, 4, "backup") and "balloon" not in applied
    current = (await _get(pve, "/api2/json/nodes/atlas/qemu/901/config", auth, current="1")).json()["data"]
    assert (current["cores"], current["balloon"]) == (2, 0)
    rows = {r["key"]: r for r in (await _get(pve, "/api2/json/nodes/atlas/qemu/901/pending", auth)).json()["data"]}
    assert rows["cores"] == {"key": "cores", "value": 2, "pending": 4}
    assert rows["balloon"] == {"key": "balloon", "value": 0, "delete": 1}
    assert rows["memory"] == {"key": "memory", "value": 2048} and "digest" not in rows
    status = (await _get(pve, "/api2/json/nodes/atlas/status", auth)).json()["data"]
    assert status["wait"] == 0.3 and 3600 <= status["uptime"] <= 3700


async def test_a_pve_task_log_pages_like_pve_and_ends_with_the_task_result() -> None:
    pve = FakeProxmox()
    log = [f"INFO: line {i}" for i in range(1, 61)]
    scenario = _scenario(
        nodes=[Node("atlas")],
        pve_tasks=[
            PveTask("atlas", "vzdump", -30, -2, status="job errors", vmid=901, log=log),
            PveTask("atlas", "vzdump", -5, None, vmid=902, log=["INFO: starting"]),
        ],
    )
    fill_proxmox(pve, scenario, Anchor(t0=T0, now=T0))
    failed, running = pve.tasks
    auth = _pve_auth(pve)
    first = (await _get(pve, f"/api2/json/nodes/atlas/tasks/{failed['upid']}/log", auth)).json()
    assert first["total"] == 61 and len(first["data"]) == 50 and first["data"][0] == {"n": 1, "t": "INFO: line 1"}
    rest = (await _get(pve, f"/api2/json/nodes/atlas/tasks/{failed['upid']}/log", auth, start="50")).json()
    assert rest["data"][-1] == {"n": 61, "t": "TASK ERROR: job errors"}
    status = (await _get(pve, f"/api2/json/nodes/atlas/tasks/{running['upid']}/status", auth)).json()["data"]
    assert status["status"] == "running" and "exitstatus" not in status
    done = (await _get(pve, f"/api2/json/nodes/atlas/tasks/{failed['upid']}/status", auth)).json()["data"]
    assert (done["status"], done["exitstatus"]) == ("stopped", "job errors")
    missing = await _get(pve, "/api2/json/nodes/atlas/tasks/UPID:atlas:0:0:0:vzdump:1:root@pam:/log", auth)
    assert missing.status_code == 500


async def test_storage_config_resources_and_status_name_the_nfs_server_behind_a_storage() -> None:
    pve = FakeProxmox()
    scenario = _scenario(
        nodes=[Node("atlas"), Node("boreas")],
        storages=[
            Storage("nas-vm", "nfs", server="10.0.0.5", export="/volume1/pve", shared=True),
            Storage("atlas-zfs", "zfspool", pool="rpool/data", nodes=["atlas"], active=False),
        ],
    )
    fill_proxmox(pve, scenario, Anchor(t0=T0, now=T0))
    auth = _pve_auth(pve)
    config = {s["storage"]: s for s in (await _get(pve, "/api2/json/storage", auth)).json()["data"]}
    assert (config["nas-vm"]["server"], config["nas-vm"]["export"], config["nas-vm"]["shared"]) == (
        "10.0.0.5",
        "/volume1/pve",
        1,
    )
    assert config["atlas-zfs"]["nodes"] == "atlas"
    rows = (await _get(pve, "/api2/json/cluster/resources", auth, type="storage")).json()["data"]
    named = sorted(r["id"] for r in rows if r["storage"] in ("nas-vm", "atlas-zfs"))
    assert named == ["storage/atlas/atlas-zfs", "storage/atlas/nas-vm", "storage/boreas/nas-vm"]
    # PVE's default storages are there too, on every node
    assert {r["storage"] for r in rows if r["node"] == "boreas"} == {"local", "local-lvm", "nas-vm"}
    assert {r["id"]: r["status"] for r in rows}["storage/atlas/atlas-zfs"] == "unknown"
    off = (await _get(pve, "/api2/json/nodes/atlas/storage/atlas-zfs/status", auth)).json()["data"]
    assert off["active"] == 0 and off["total"] == 0 and "used_fraction" not in off
    elsewhere = await _get(pve, "/api2/json/nodes/boreas/storage/atlas-zfs/status", auth)
    assert elsewhere.status_code == 500


async def test_pbs_tasks_carry_the_server_host_name_namespaces_and_their_logs() -> None:
    pbs = FakePbs()
    scenario = _scenario(
        pbs_host="pbs-mira",
        datastores=[Datastore("vault", namespaces=["site-b", "site-b/offsite"], error=None)],
        pbs_tasks=[
            PbsTask("syncjob", "remote:store1:vault:site-b/offsite:s-1", -300, None, log=["sync group vm/701"]),
            PbsTask("backup", "vault:site-b/vm/701", -30, -29, status="backup failed", log=["starting backup"]),
        ],
    )
    fill_pbs(pbs, scenario, T0)
    pbs.add_snapshot("vault", "vm", "701", backup_time=1_700_000_000, ns="site-b")
    pbs.add_snapshot("vault", "vm", "702", backup_time=1_700_000_000)
    auth = {"authorization": f"PBSAPIToken={pbs.token_id}:{pbs.token_secret}"}
    sync, backup = pbs.tasks
    assert sync["upid"].startswith("UPID:pbs-mira:") and sync["node"] == "pbs-mira"
    namespaces = (await _get(pbs, "/api2/json/admin/datastore/vault/namespace", auth)).json()["data"]
    assert [n["ns"] for n in namespaces] == ["", "site-b", "site-b/offsite"]
    in_ns = (await _get(pbs, "/api2/json/admin/datastore/vault/snapshots", auth, ns="site-b")).json()["data"]
    at_root = (await _get(pbs, "/api2/json/admin/datastore/vault/groups", auth)).json()["data"]
    assert [s["backup-id"] for s in in_ns] == ["701"] and [g["backup-id"] for g in at_root] == ["702"]
    unknown = await _get(pbs, "/api2/json/admin/datastore/vault/groups", auth, ns="nope")
    assert unknown.status_code == 400 and "nope" in unknown.text
    stored = (await _get(pbs, "/api2/json/nodes/localhost/tasks", auth, store="vault")).json()["data"]
    assert {t["worker_type"] for t in stored} == {"syncjob", "backup"}
    log = (await _get(pbs, f"/api2/json/nodes/localhost/tasks/{backup['upid']}/log", auth)).json()
    assert log["data"] == [{"n": 1, "t": "starting backup"}, {"n": 2, "t": "TASK ERROR: backup failed"}]
    assert log["total"] == 2 and log["active"] is False
    running = (await _get(pbs, f"/api2/json/nodes/pbs-mira/tasks/{sync['upid']}/status", auth)).json()["data"]
    assert running["status"] == "running"


async def test_a_grafana_rule_can_read_loki_and_names_its_data_source() -> None:
    grafana = FakeGrafana()
    expr = 'sum(count_over_time({host="rigel"} |= "finished with errors" [15m])) > 0'
    scenario = _scenario(rules=[GrafanaRule("vz", "VzdumpFailed", expr, datasource="loki", for_="0s")])
    fill_grafana(grafana, scenario, T0)
    headers = {"authorization": f"Bearer {grafana.token}"}
    async with httpx.AsyncClient(transport=grafana.transport(), base_url="http://grafana.test") as client:
        rule = (await client.get("/api/v1/provisioning/alert-rules/vz", headers=headers)).json()
        source = (await client.get("/api/datasources/uid/loki", headers=headers)).json()
        missing = await client.get("/api/datasources/uid/nope", headers=headers)
    query = rule["data"][0]
    assert (query["datasourceUid"], query["model"]["expr"], query["model"]["queryType"]) == ("loki", expr, "range")
    assert rule["for"] == "0s"
    assert (source["type"], source["uid"]) == ("loki", "loki")
    assert missing.status_code == 404


def test_the_topology_file_merges_scenarios_and_refuses_a_host_declared_twice(tmp_path: Path) -> None:
    assert write_topology([], tmp_path) is None
    first = {"hosts": {"photos01": {"depends_on": ["pgdb01"]}, "pgdb01": {"aliases": ["postgres-main"]}}}
    second = {"hosts": {"hass01": {"depends_on": ["mqtt01"]}}}
    path = write_topology([first, second], tmp_path)
    assert path is not None
    written = yaml.safe_load(path.read_text())
    assert written["hosts"]["pgdb01"] == {"aliases": ["postgres-main"]} and set(written["hosts"]) == {
        "photos01",
        "pgdb01",
        "hass01",
    }
    try:
        write_topology([first, first], tmp_path)
    except ValueError as exc:
        assert "photos01" in str(exc)
    else:
        raise AssertionError("a host declared twice was accepted")


def test_the_triage_reads_the_world_topology_as_the_service_does(tmp_path: Path) -> None:
    assert load_topology(None) is None
    path = tmp_path / "topology.yaml"
    path.write_text("hosts:\n  photos01:\n    depends_on: [pgdb01]\n  pgdb01:\n    aliases: [postgres-main]\n")
    topology = load_topology(path)
    assert topology is not None and topology.depends_on("photos01") == ("pgdb01",)
    assert topology.resolve(["postgres-main"]) == "pgdb01"


def test_every_new_scenario_names_the_capabilities_it_exercises_and_uses_its_own_hosts() -> None:
    tagged = [s for s in all_scenarios() if s.tags]
    assert len(tagged) >= 15
    capabilities = {tag.split(":")[0] for s in tagged for tag in s.tags}
    for needed in (
        "neighbourhood",
        "vocabulary-free",
        "metric-discovery",
        "query-breakdown",
        "slow-burn",
        "proxmox",
        "pbs",
        "neighbourhood-negative",
        "noisy-info-negative",
        "routine-job-negative",
    ):
        assert needed in capabilities, needed
    topology = [s for s in tagged if s.topology]
    assert topology and all(set(s.topology["hosts"]) for s in topology if s.topology)


def test_flat_shapes_stay_flat_in_an_extended_host() -> None:
    # a search for series that moved must not find any in a host whose shapes are all flat
    for series in host_series(_clock(120), Host("calm:9100", extended=True, load1=flat(0.5))):
        if series.name in ("node_boot_time_seconds", "up") or series.name.endswith("_total"):
            continue
        values = [v for _, v in _values(series)]
        if max(values) > 0:
            assert max(values) / max(min(values), 1e-9) < 1.1, series.name


def test_a_current_pve_exporter_also_exports_its_io_as_total_counters() -> None:
    old = {s.name for s in pve_series(_clock(), PveGuestMetrics("qemu/901"))}
    new = {s.name for s in pve_series(_clock(), PveGuestMetrics("qemu/902", current_names=True))}
    assert "pve_disk_written_bytes_total" not in old and "pve_disk_write_bytes" in old
    assert new - old == {"pve_disk_read_bytes_total", "pve_disk_written_bytes_total"}
