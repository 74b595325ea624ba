"""Resource incidents: a backup saturating disk IO, a memory leak ending in an OOM kill, a disk filled by runaway
logs, a noisy neighbour, a backup datastore filling up because garbage collection fails."""

from __future__ import annotations

from tests.scenarios.common import background, container, journal
from tests.scenarios.model import (
    AlertSpec,
    Datastore,
    Expect,
    Guest,
    Host,
    Log,
    Node,
    PbsTask,
    PveGuestMetrics,
    PveTask,
    Raw,
    Scenario,
    flat,
    ramp,
    sequence,
    step,
)

BACKUP_IO = Scenario(
    name="backup_io",
    story=(
        "The nightly vzdump job of node pve-b1 starts 11 minutes before the alert and streams every guest to PBS; "
        "nextcloud shares the node's disks and its IO wait climbs past 30 %."
    ),
    alert=AlertSpec(
        "HostHighIowait",
        {"instance": "nextcloud:9100", "job": "node", "severity": "warning"},
        {"summary": "IO wait above 30% on nextcloud:9100"},
        generator_expr='avg by (instance) (rate(node_cpu_seconds_total{instance="nextcloud:9100",mode="iowait"}[5m]))'
        " > 0.3",
    ),
    causal=Expect(
        "the vzdump backup of pve-b1 started 11 minutes before the alert",
        sources=("proxmox", "pbs"),
        words=(("vzdump",), ("backup",)),
    ),
    supporting=[
        Expect("nextcloud's disk is saturated", sources=("prometheus",), words=(("disk",), ("iowait",))),
    ],
    hosts=[
        Host(
            "nextcloud:9100",
            iowait=step(0.02, 0.42, -10),
            disk_util=step(0.1, 0.97, -11),
            disk_read_mbps=step(3, 140, -11),
            cpu_busy=flat(0.15),
        )
    ],
    pve_metrics=[PveGuestMetrics("qemu/210", disk_read_mbps=step(2, 150, -11))],
    logs=[
        *background("nextcloud"),
        Log(
            journal("nextcloud", "php8.2-fpm.service"),
            -6,
            "php-fpm[812]: [WARNING] [pool www] server reached pm.max_children setting (12), consider raising it",
            repeat=6,
        ),
    ],
    nodes=[Node("pve-b1", cpu=0.35), Node("pve-b2")],
    guests=[
        Guest(210, "nextcloud", "pve-b1", ips=["10.0.2.10"]),
        Guest(211, "gitea-b", "pve-b1", ips=["10.0.2.11"]),
        Guest(212, "vaultwarden", "pve-b1", kind="lxc", ips=["10.0.2.12"]),
        Guest(213, "grafana-b", "pve-b2", kind="lxc", ips=["10.0.2.13"]),
    ],
    pve_tasks=[
        PveTask("pve-b1", "vzdump", -11, None),
        PveTask("pve-b2", "vzdump", -11, -9),
        PveTask("pve-b1", "qmstart", -20000, -19999, vmid=210),
    ],
    datastores=[Datastore("tank", used_ratio=0.61)],
    pbs_tasks=[
        PbsTask("backup", "tank:ct/212", -11, -10.5),
        PbsTask("backup", "tank:vm/211", -10.5, -9.8),
        PbsTask("backup", "tank:vm/210", -9.8, None),
    ],
)

OOM_LEAK = Scenario(
    name="oom_leak",
    story=(
        "A large photo import makes immich-server leak memory for an hour; the container's memory climbs to 97 % "
        "and the kernel OOM killer kills immich-server a minute before the alert."
    ),
    alert=AlertSpec(
        "HostOomKillDetected",
        {"instance": "immich:9100", "job": "node", "severity": "warning"},
        {"summary": "OOM kill detected on immich:9100"},
        generator_expr='increase(node_vmstat_oom_kill{instance="immich:9100"}[1m]) > 0',
    ),
    causal=Expect(
        "the kernel OOM killer killed immich-server",
        words=(("oom",), ("out of memory",), ("killed process",)),
    ),
    supporting=[Expect("memory use rose for an hour", sources=("prometheus",), words=(("memory",),))],
    hosts=[
        Host(
            "immich:9100",
            mem_used=sequence((-1.0, ramp(0.38, 0.97, -55, -1)), (1e9, flat(0.31))),
            mem_total_gb=8,
            cpu_busy=flat(0.35),
        )
    ],
    raw=[Raw("node_vmstat_oom_kill", {"instance": "immich:9100", "job": "node"}, step(3, 4, -1, over_min=0.25))],
    logs=[
        *background("immich"),
        Log(
            container("immich", "immich_microservices"),
            -55,
            "[Nest] 7  - WARN [Microservices:JobService] Thumbnail generation queue: 18234 jobs waiting",
            repeat=11,
            every_s=300,
        ),
        Log(
            journal("immich", "kernel"),
            -1.2,
            "kernel: immich-server invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0",
        ),
        Log(
            journal("immich", "kernel"),
            -1.1,
            "kernel: Out of memory: Killed process 48213 (immich-server) total-vm:9843212kB, anon-rss:7612340kB, "
            "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:16012kB oom_score_adj:0",
        ),
        Log(
            journal("immich", "immich-server.service"),
            -1.0,
            "systemd[1]: immich-server.service: Main process exited, code=killed, status=9/KILL",
        ),
        Log(
            journal("immich", "immich-server.service"),
            -0.8,
            "systemd[1]: immich-server.service: Scheduled restart job, restart counter is at 1.",
        ),
    ],
    nodes=[Node("pve-c1")],
    guests=[Guest(220, "immich", "pve-c1", kind="lxc", ips=["10.0.3.20"], mem_used=0.31, maxmem_gb=8)],
)

DISK_FILL_LOGS = Scenario(
    name="disk_fill_logs",
    story=(
        "zigbee2mqtt loses its MQTT broker 46 minutes before the alert and logs a connection error three times a "
        "second; the journal grows until the root filesystem is 93 % full."
    ),
    alert=AlertSpec(
        "HostOutOfDiskSpace",
        {
            "instance": "zigbee2mqtt:9100",
            "mountpoint": "/",
            "device": "/dev/sda1",
            "fstype": "ext4",
            "severity": "warning",
        },
        {"summary": "Disk almost full on zigbee2mqtt:9100 (/)"},
        generator_expr='(node_filesystem_avail_bytes{instance="zigbee2mqtt:9100",mountpoint="/"} / '
        'node_filesystem_size_bytes{instance="zigbee2mqtt:9100",mountpoint="/"}) * 100 < 10',
    ),
    causal=Expect(
        "zigbee2mqtt floods its log with MQTT connection errors",
        sources=("loki",),
        words=(("mqtt",), ("econnrefused",)),
    ),
    supporting=[
        Expect(
            "the root filesystem fills up", sources=("prometheus",), words=(("disk space",), ("filesystem",), ("disk",))
        )
    ],
    hosts=[
        Host("zigbee2mqtt:9100", fs_used=ramp(0.52, 0.93, -46, 2), fs_size_gb=16, disk_write_mbps=step(0.3, 4, -46))
    ],
    logs=[
        *background("zigbee2mqtt"),
        Log(
            journal("zigbee2mqtt", "zigbee2mqtt.service"),
            -46,
            "zigbee2mqtt[611]: error 2026-11-26 09:14:03: Failed to connect to MQTT server mqtt://10.0.4.5:1883: "
            "connect ECONNREFUSED 10.0.4.5:1883",
            repeat=900,
            every_s=3.3,
        ),
    ],
    nodes=[Node("pve-e1")],
    guests=[Guest(230, "zigbee2mqtt", "pve-e1", kind="lxc", ips=["10.0.4.30"])],
)

NOISY_NEIGHBOUR = Scenario(
    name="noisy_neighbour",
    story=(
        "A minecraft container on the same node (pve-d1) starts world generation and takes every core; jellyfin's "
        "own load does not change, but its vCPUs wait for the host: CPU steal rises from 1 % to 35 %."
    ),
    alert=AlertSpec(
        "HostCpuStealNoisyNeighbor",
        {"instance": "jellyfin:9100", "job": "node", "severity": "warning"},
        {"summary": "CPU steal above 10% on jellyfin:9100"},
        generator_expr='avg by (instance) (rate(node_cpu_seconds_total{instance="jellyfin:9100",mode="steal"}[5m]))'
        " * 100 > 10",
    ),
    causal=Expect(
        "the node pve-d1 is saturated by the minecraft container",
        words=(("steal",), ("minecraft",), ("pve-d1",), ("node", "cpu")),
    ),
    hosts=[Host("jellyfin:9100", cpu_busy=flat(0.3), steal=step(0.01, 0.35, -8), load1=step(1.2, 3.5, -8))],
    pve_metrics=[
        PveGuestMetrics("qemu/240", cpu=step(0.32, 0.55, -8), mem_size_gb=6),
        PveGuestMetrics("lxc/241", cpu=step(0.08, 0.98, -9), mem_size_gb=8),
        PveGuestMetrics("node/pve-d1", cpu=step(0.35, 0.97, -9), mem_size_gb=64),
    ],
    logs=[
        *background("jellyfin"),
        Log(
            journal("jellyfin", "jellyfin.service"),
            -7,
            "jellyfin[933]: [WRN] [27] Jellyfin.Api.Controllers.DynamicHlsController: Transcoding is running slower "
            "than real time (0.72x)",
            repeat=6,
        ),
    ],
    nodes=[Node("pve-d1", cpu=0.97, mem_used=0.7), Node("pve-d2", cpu=0.2)],
    guests=[
        Guest(240, "jellyfin", "pve-d1", ips=["10.0.5.40"], maxmem_gb=6),
        Guest(241, "minecraft", "pve-d1", kind="lxc", ips=["10.0.5.41"], maxmem_gb=8, mem_used=0.8),
        Guest(242, "homepage", "pve-d2", kind="lxc", ips=["10.0.5.42"]),
    ],
)

PBS_DATASTORE_FULL = Scenario(
    name="pbs_datastore_full",
    story=(
        "Garbage collection on the PBS datastore backup-hdd has been failing (a stale lock), so pruned chunks are never "
        "freed; tonight's backups push it over 95 %."
    ),
    alert=AlertSpec(
        "PbsDatastoreAlmostFull",
        {"datastore": "backup-hdd", "instance": "pbs-exporter:10019", "job": "pbs", "severity": "warning"},
        {"summary": "PBS datastore backup-hdd is 95% full"},
        generator_expr='pbs_used{datastore="backup-hdd"} / pbs_size{datastore="backup-hdd"} > 0.95',
    ),
    causal=Expect(
        "garbage collection of backup-hdd failed",
        sources=("pbs",),
        words=(("garbage",), ("gc",)),
    ),
    supporting=[Expect("the datastore is almost full", sources=("pbs", "prometheus"), words=(("datastore",),))],
    raw=[
        Raw(
            "pbs_used",
            {"datastore": "backup-hdd", "instance": "pbs-exporter:10019", "job": "pbs"},
            ramp(3.44e12, 3.82e12, -60, 0),
            noise=False,
        ),
        Raw(
            "pbs_size",
            {"datastore": "backup-hdd", "instance": "pbs-exporter:10019", "job": "pbs"},
            flat(4.0e12),
            noise=False,
        ),
    ],
    datastores=[Datastore("backup-hdd", total_tb=4.0, used_ratio=0.955), Datastore("fast-ssd", total_tb=1.0)],
    pbs_tasks=[
        PbsTask(
            "garbage_collection",
            "backup-hdd",
            -38,
            -37.5,
            status="unable to start garbage collection job on datastore backup-hdd - already running (stale lock)",
        ),
        PbsTask("prunejob", "backup-hdd:daily", -40, -39.2),
        PbsTask("backup", "backup-hdd:vm/250", -25, -12),
        PbsTask("backup", "backup-hdd:vm/251", -12, -2),
        PbsTask("verificationjob", "fast-ssd:v-3a1f", -50, -44),
    ],
    nodes=[Node("pve-q1")],
    guests=[Guest(250, "docs", "pve-q1"), Guest(251, "mail", "pve-q1")],
)

SCENARIOS = [BACKUP_IO, OOM_LEAK, DISK_FILL_LOGS, NOISY_NEIGHBOUR, PBS_DATASTORE_FULL]
