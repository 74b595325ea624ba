"""Incidents whose cause sits one hop from the alert: on the Proxmox node under the guest (its disks, its ZFS pool),
on the NFS server behind a mount or behind the Proxmox storage of a guest's disk, on the PBS server behind a
datastore, on a host a user declared as a dependency — and Proxmox/PBS detail where the cause usually is (a guest's
config change, its lock, a task log, a namespace, the storage holding its disks)."""

from __future__ import annotations

from tests.scenarios.common import background, container, journal, kernel, node_host
from tests.scenarios.model import (
    AlertSpec,
    Datastore,
    Expect,
    Filesystem,
    GrafanaRule,
    Guest,
    Host,
    Log,
    Node,
    PbsTask,
    PveGuestMetrics,
    PveTask,
    Raw,
    Scenario,
    Storage,
    flat,
    ramp,
    step,
)

NODE_DISK_ERRORS = Scenario(
    name="node_disk_errors_guest_iowait",
    tags=("neighbourhood:node", "node-kernel-log", "iowait"),
    story=(
        "One of the four disks of the ZFS pool on Proxmox node castor starts failing eleven minutes before the alert: "
        "the node's kernel logs ATA exceptions and I/O errors on sdd while ZFS retries every read. Seafile, a VM on "
        "castor, sees its own IO wait climb to 35 % although nothing in the VM changed."
    ),
    alert=AlertSpec(
        "HostHighIoWait",
        {"instance": "seafile:9100", "job": "node", "severity": "warning"},
        {"summary": "IO wait above 20% on seafile:9100"},
        generator_expr='avg by (instance) (rate(node_cpu_seconds_total{instance="seafile:9100",mode="iowait"}[5m]))'
        " > 0.2",
    ),
    causal=Expect(
        "the node's kernel reports I/O errors on disk sdd",
        sources=("loki",),
        words=(("i/o error", "sdd"), ("ata4",), ("failed command",)),
    ),
    supporting=[
        Expect("the node castor itself waits on its disks", sources=("prometheus", "proxmox"), words=(("castor",),))
    ],
    hosts=[
        Host("seafile:9100", iowait=step(0.02, 0.35, -9), disk_util=step(0.1, 0.7, -9)),
        node_host("castor", iowait=step(0.01, 0.28, -11), disk_util=step(0.15, 0.97, -11), load1=step(2.0, 9.5, -10)),
    ],
    pve_metrics=[
        PveGuestMetrics("qemu/410", disk_read_mbps=step(12, 3, -9), current_names=True),
        PveGuestMetrics("node/castor", mem_size_gb=128, current_names=True),
    ],
    logs=[
        *background("seafile"),
        *background("castor"),
        Log(
            container("seafile", "seahub"),
            -8,
            "[2026-11-26 09:52:11 +0000] [812] [CRITICAL] WORKER TIMEOUT (pid:1433)",
            repeat=4,
            every_s=120,
        ),
        Log(
            kernel("castor"),
            -11,
            "ata4.00: exception Emask 0x0 SAct 0x8000 SErr 0x0 action 0x0",
            repeat=20,
            every_s=30,
        ),
        Log(kernel("castor"), -11, "ata4.00: failed command: READ FPDMA QUEUED", repeat=20, every_s=30),
        Log(
            kernel("castor"),
            -10.9,
            "I/O error, dev sdd, sector 2391843712 op 0x0:(READ) flags 0x700 phys_seg 1 prio class 2",
            repeat=20,
            every_s=30,
        ),
        Log(
            journal("castor", "zfs-zed.service"),
            -10.8,
            "zed[2291]: eid=4412 class=io pool='tank' vdev=ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1TF4L2S-part1 size=131072 "
            "offset=1224622669824 priority=0 err=5 flags=0x180880",
            repeat=10,
            every_s=60,
        ),
    ],
    nodes=[Node("castor", iowait=0.28, loadavg=(9.5, 6.1, 3.2)), Node("pollux-b")],
    guests=[
        Guest(410, "seafile", "castor", ips=["10.0.20.10"], maxmem_gb=8),
        Guest(411, "collabora", "castor", kind="lxc", ips=["10.0.20.11"]),
        Guest(412, "adguard", "pollux-b", kind="lxc", ips=["10.0.20.12"]),
    ],
)

ZFS_RESILVER = Scenario(
    name="zfs_resilver_on_node",
    tags=("neighbourhood:node", "vocabulary-free", "zfs"),
    story=(
        "A failed disk in the ZFS pool of node pollux was replaced this morning; fourteen minutes before the alert "
        "the ZFS event daemon announces that the resilver started. The resilver reads the whole pool, and forgejo, a "
        "container on pollux, sees its disk latency triple. Nobody logged an error: the node only says the resilver "
        "began."
    ),
    alert=AlertSpec(
        "HostDiskIoSaturated",
        {"instance": "forgejo:9100", "job": "node", "severity": "warning"},
        {"summary": "Disk IO saturated on forgejo:9100"},
        generator_expr='rate(node_disk_io_time_seconds_total{instance="forgejo:9100"}[5m]) > 0.8',
    ),
    causal=Expect("the ZFS pool of the node is resilvering", words=(("resilver",),)),
    distractors=[
        Expect("the node's status daemon always reports its update time", words=(("status update time",),)),
    ],
    hosts=[
        Host("forgejo:9100", disk_util=step(0.2, 0.92, -13), iowait=step(0.02, 0.18, -13)),
        node_host("pollux", disk_read_mbps=step(40, 480, -14), disk_util=step(0.2, 0.99, -14)),
    ],
    raw=[
        # node_exporter's zfs collector: the pool is online the whole time — a resilver is not a failure
        Raw(
            "node_zfs_zpool_state",
            {"instance": "pollux:9100", "job": "node", "zpool": "tank", "state": "online"},
            flat(1),
            noise=False,
        ),
    ],
    logs=[
        *background("forgejo"),
        *background("pollux"),
        Log(
            journal("pollux", "pvestatd.service"),
            -124,
            "pvestatd[1893]: status update time (5.211 seconds)",
            repeat=62,
            every_s=120,
        ),
        Log(
            journal("pollux", "zfs-zed.service"),
            -14.2,
            "zed[2931]: eid=88 class=vdev_attach pool='tank' vdev=ata-ST4000VN008-2DR166_ZDHB3K1Q-part1 "
            "vdev_state=ONLINE",
        ),
        Log(journal("pollux", "zfs-zed.service"), -14, "zed[2931]: eid=89 class=resilver_start pool='tank'"),
        Log(journal("pollux", "zfs-zed.service"), -13.9, "zed[2931]: eid=90 class=config_sync pool='tank'"),
    ],
    nodes=[Node("pollux", iowait=0.09)],
    guests=[Guest(420, "forgejo", "pollux", kind="lxc", ips=["10.0.21.20"])],
)

NFS_SERVER_GONE = Scenario(
    name="nfs_server_behind_mount",
    tags=("neighbourhood:storage", "multiple-filesystems", "nfs"),
    story=(
        "unattended-upgrades on the NAS apollo upgrades nfs-kernel-server seven minutes before the alert; the NFS "
        "server stops for the upgrade and fails to start again. Plex, whose media library is the NFS mount "
        "apollo:/volume1/media, sees the mount hang: node_exporter can no longer stat it and the kernel says the "
        "server is not responding."
    ),
    alert=AlertSpec(
        "HostFilesystemDeviceError",
        {
            "instance": "plex01:9100",
            "job": "node",
            "device": "apollo:/volume1/media",
            "fstype": "nfs4",
            "mountpoint": "/mnt/media",
            "severity": "critical",
        },
        {"summary": "plex01:9100: device error on /mnt/media"},
        generator_expr='node_filesystem_device_error{instance="plex01:9100",fstype=~"nfs.*"} == 1',
    ),
    causal=Expect(
        "the NFS server on apollo stopped and did not start again",
        sources=("loki",),
        words=(("nfs-server",), ("nfsd",)),
    ),
    supporting=[
        Expect("the NFS server does not respond to plex01", sources=("loki",), words=(("not responding",),)),
    ],
    hosts=[
        Host(
            "plex01:9100",
            extended=True,
            filesystems=[
                Filesystem(
                    "/mnt/media",
                    "apollo:/volume1/media",
                    fstype="nfs4",
                    size_gb=16000,
                    used=flat(0.71),
                    device_error=step(0, 1, -6, over_min=0.25),
                )
            ],
        ),
        node_host("apollo", net_mbps=step(35, 0.5, -7)),
    ],
    logs=[
        *background("plex01"),
        *background("apollo"),
        Log(
            journal("apollo", "unattended-upgrades.service"),
            -7.6,
            "unattended-upgrade[40211]: Packages that will be upgraded: libnfsidmap1 nfs-common nfs-kernel-server",
        ),
        Log(
            journal("apollo", "nfs-server.service"),
            -7.2,
            "systemd[1]: Stopping nfs-server.service - NFS server and services...",
        ),
        Log(kernel("apollo"), -7.1, "nfsd: last server has exited, flushing export cache"),
        Log(
            journal("apollo", "nfs-server.service"),
            -7.0,
            "systemd[1]: Stopped nfs-server.service - NFS server and services.",
        ),
        Log(
            journal("apollo", "nfs-server.service"),
            -6.8,
            "systemd[1]: Dependency failed for nfs-server.service - NFS server and services.",
        ),
        Log(
            journal("apollo", "nfs-server.service"),
            -6.8,
            "systemd[1]: nfs-server.service: Job nfs-server.service/start failed with result 'dependency'.",
        ),
        Log(kernel("plex01"), -5.5, "nfs: server apollo not responding, still trying", repeat=6, every_s=60),
        Log(
            journal("plex01", "plexmediaserver.service"),
            -5,
            "Plex Media Server[811]: Library section 'Movies': scanner could not access /mnt/media/movies",
            repeat=3,
            every_s=120,
        ),
    ],
    nodes=[Node("vega")],
    guests=[Guest(430, "plex01", "vega", ips=["10.0.22.30"], maxmem_gb=8)],
    storages=[Storage("vega-local-zfs", "zfspool", pool="rpool/data", nodes=["vega"])],
)

VZDUMP_FAILED_EXPR = (
    'sum by (host) (count_over_time({host="rigel", unit="pvescheduler.service"} |= "Backup job finished with errors" '
    "[15m])) > 0"
)

PBS_USB_DISK_GONE = Scenario(
    name="pbs_disk_gone_behind_datastore",
    tags=("neighbourhood:pbs", "task-log", "grafana-loki-rule", "slow-burn"),
    story=(
        "The offsite datastore of the PBS server pbs-mira lives on a USB disk. Fifty minutes before the alert the "
        "disk drops off the bus (the PBS server's kernel logs a USB disconnect). Tonight's backup job on node rigel "
        "starts half an hour later and fails for every VM: the vzdump task log says the backup write failed because "
        "the chunk store cannot be opened. A Grafana rule on Loki counts the job's 'finished with errors' line."
    ),
    alert=AlertSpec(
        "VzdumpBackupFailed",
        {"__alert_rule_uid__": "vzdump-failed", "host": "rigel", "severity": "warning", "grafana_folder": "Backups"},
        {"summary": "A backup job on rigel finished with errors"},
        source="grafana",
    ),
    causal=Expect(
        "the PBS server's USB disk holding the datastore disconnected",
        words=(("usb", "disconnect"), ("device removed",)),
    ),
    supporting=[
        Expect(
            "the backup task log says the chunk store cannot be opened",
            sources=("proxmox", "pbs"),
            words=(("chunk store",), ("write data failed",)),
        )
    ],
    hosts=[node_host("rigel"), node_host("pbs-mira", disk_write_mbps=step(40, 0.1, -50))],
    rules=[
        GrafanaRule(
            "vzdump-failed",
            "VzdumpBackupFailed",
            VZDUMP_FAILED_EXPR,
            datasource="loki",
            for_="0s",
            labels={"severity": "warning"},
        )
    ],
    logs=[
        *background("rigel"),
        *background("pbs-mira"),
        Log(kernel("pbs-mira"), -50.3, "usb 2-1: USB disconnect, device number 3"),
        Log(kernel("pbs-mira"), -50.2, "sd 6:0:0:0: [sdb] Synchronizing SCSI cache"),
        Log(kernel("pbs-mira"), -50.1, "EXT4-fs (sdb1): shutting down: device removed"),
        Log(
            journal("pbs-mira", "proxmox-backup-proxy.service"),
            -28,
            "proxmox-backup-proxy[1021]: starting new backup on datastore 'offsite-usb' from ::ffff:10.0.23.2: "
            '"vm/440/2026-11-26T02:00:04Z"',
        ),
        Log(
            journal("rigel", "pvescheduler.service"),
            -2,
            "pvescheduler[41223]: INFO: Backup job finished with errors",
        ),
        Log(
            journal("rigel", "pvescheduler.service"),
            -2,
            "pvescheduler[41223]: job errors",
        ),
    ],
    nodes=[Node("rigel")],
    guests=[
        Guest(440, "vaultwarden", "rigel", kind="lxc", ips=["10.0.23.40"]),
        Guest(441, "immich", "rigel", ips=["10.0.23.41"], maxmem_gb=8),
    ],
    pve_tasks=[
        PveTask(
            "rigel",
            "vzdump",
            -30,
            -2,
            status="job errors",
            log=[
                "INFO: starting new backup job: vzdump 440 441 --storage pbs-offsite --mode snapshot --notes-template "
                "'{{guestname}}'",
                "INFO: Starting Backup of VM 440 (lxc)",
                "INFO: creating Proxmox Backup Server archive 'ct/440/2026-11-26T02:00:04Z'",
                "ERROR: Backup of VM 440 failed - backup write data failed: command error: write_data upload error: "
                "pipelined request failed: unable to open chunk store 'offsite-usb' at "
                '"/mnt/datastore/offsite-usb/.chunks" - No such file or directory (os error 2)',
                "INFO: Starting Backup of VM 441 (qemu)",
                "ERROR: Backup of VM 441 failed - backup write data failed: command error: write_data upload error: "
                "pipelined request failed: unable to open chunk store 'offsite-usb' at "
                '"/mnt/datastore/offsite-usb/.chunks" - No such file or directory (os error 2)',
                "INFO: Failed at 2026-11-26 02:28:01",
                "INFO: Backup job finished with errors",
            ],
        )
    ],
    storages=[
        Storage(
            "pbs-offsite",
            "pbs",
            content="backup",
            server="pbs-mira.lab.example",
            datastore="offsite-usb",
            namespace="rigel",
        )
    ],
    pbs_host="pbs-mira",
    datastores=[
        Datastore(
            "offsite-usb",
            total_tb=5.0,
            used_ratio=0.6,
            namespaces=["rigel"],
            error="unable to open chunk store 'offsite-usb' at \"/mnt/datastore/offsite-usb/.chunks\" - "
            "No such file or directory (os error 2)",
        ),
        Datastore("mira-main", total_tb=8.0, used_ratio=0.44, namespaces=["rigel", "lyra-b"]),
    ],
    pbs_tasks=[
        PbsTask(
            "backup",
            "offsite-usb:rigel/ct/440",
            -28,
            -27.9,
            status="unable to open chunk store 'offsite-usb' - No such file or directory (os error 2)",
        ),
        PbsTask("garbage_collection", "mira-main", -90, -75),
    ],
)

TOPOLOGY_DB_DISK_FULL = Scenario(
    name="declared_dependency_db_disk_full",
    tags=("neighbourhood:topology", "topology-alias", "multiple-filesystems"),
    story=(
        "Immich on photos01 keeps its metadata in PostgreSQL on pgdb01, a dependency declared in the topology file "
        "(pgdb01's containers ship their logs as postgres-main). The WAL volume of pgdb01 fills up five minutes "
        "before the alert; PostgreSQL panics with 'No space left on device' and Immich's jobs fail with refused "
        "database connections."
    ),
    alert=AlertSpec(
        "ImmichJobsFailing",
        {"instance": "photos01:8081", "job": "immich", "severity": "warning"},
        {"summary": "Immich background jobs are failing"},
        generator_expr='increase(immich_jobs_failed_total{instance="photos01:8081"}[10m]) > 5',
    ),
    causal=Expect(
        "PostgreSQL on pgdb01 ran out of space for its WAL",
        sources=("loki",),
        words=(("no space left",), ("pg_wal",)),
    ),
    supporting=[
        Expect(
            "pgdb01's /var/lib/postgresql filesystem is full",
            sources=("prometheus",),
            words=(("/var/lib/postgresql",), ("pgdb01",)),
        )
    ],
    topology={
        "hosts": {
            "photos01": {"depends_on": ["pgdb01"]},
            "pgdb01": {"aliases": ["postgres-main", "10.0.24.20"]},
        }
    },
    hosts=[
        Host("photos01:9100", cpu_busy=flat(0.2)),
        Host(
            "pgdb01:9100",
            extended=True,
            filesystems=[
                Filesystem("/var/lib/postgresql", "/dev/vdb1", size_gb=40, used=ramp(0.82, 1.0, -40, -5)),
            ],
        ),
    ],
    raw=[
        Raw(
            "immich_jobs_failed_total",
            {"instance": "photos01:8081", "job": "immich", "queue": "metadataExtraction"},
            step(0.0, 0.4, -5),
            counter=True,
        ),
    ],
    logs=[
        *background("photos01"),
        *background("postgres-main"),
        Log(
            container("photos01", "immich-server"),
            -4.8,
            "[Nest] 7  - 11/26/2026, 9:55:12 AM   ERROR [Microservices:JobService] Unable to run job handler "
            "(metadataExtraction/metadata-extraction): Error: connect ECONNREFUSED 10.0.24.20:5432",
            repeat=15,
            every_s=20,
        ),
        Log(
            container("postgres-main", "postgres"),
            -5.2,
            '2026-11-26 09:54:48.112 UTC [412] PANIC:  could not write to file "pg_wal/xlogtemp.412": '
            "No space left on device",
        ),
        Log(
            container("postgres-main", "postgres"),
            -5.1,
            "2026-11-26 09:54:48.320 UTC [1] LOG:  server process (PID 412) was terminated by signal 6: Aborted",
        ),
        Log(
            container("postgres-main", "postgres"),
            -5.0,
            "2026-11-26 09:54:48.322 UTC [1] LOG:  terminating any other active server processes",
        ),
    ],
    nodes=[Node("deneb-t")],
    guests=[
        Guest(450, "photos01", "deneb-t", ips=["10.0.24.10"], maxmem_gb=8),
        Guest(451, "pgdb01", "deneb-t", ips=["10.0.24.20"], maxmem_gb=8),
    ],
)

GUEST_MEMORY_CHANGE = Scenario(
    name="guest_memory_lowered_in_config",
    tags=("proxmox:guest-config", "proxmox:task", "config-change"),
    story=(
        "Tidying up node altair, an admin lowers the memory of VM 460 (docspell) from 8192 to 2048 MB in the web UI "
        "and restarts it nine minutes before the alert. The JVM inside no longer fits: the kernel of the VM "
        "OOM-kills it every few minutes. The VM's own logs show the kills; the change that caused them is in its "
        "Proxmox configuration and in the node's pvedaemon log."
    ),
    alert=AlertSpec(
        "HostOomKillDetected",
        {"instance": "docspell:9100", "job": "node", "severity": "warning"},
        {"summary": "OOM kill detected on docspell:9100"},
        generator_expr='increase(node_vmstat_oom_kill{instance="docspell:9100"}[5m]) > 0',
    ),
    causal=Expect(
        "the VM's memory was lowered to 2048 MB",
        sources=("proxmox", "loki"),
        words=(("memory", "2048"), ("update vm", "460")),
    ),
    supporting=[Expect("the JVM is OOM-killed", sources=("loki",), words=(("out of memory",), ("oom",)))],
    # the restart: node_exporter's scrapes stop while the VM reboots, its counters restart after
    hosts=[
        Host(
            "docspell:9100",
            mem_total_gb=2,
            mem_used=ramp(0.5, 0.97, -7, -3),
            extended=True,
            gone_min=-8.1,
            back_min=-7.5,
        )
    ],
    raw=[
        Raw("node_vmstat_oom_kill", {"instance": "docspell:9100", "job": "node"}, step(0, 0.006, -4), counter=True),
    ],
    pve_metrics=[PveGuestMetrics("qemu/460", mem_size_gb=2, mem_used=ramp(0.5, 0.97, -7, -3), current_names=True)],
    logs=[
        *background("docspell"),
        *background("altair"),
        Log(
            journal("altair", "pvedaemon.service"),
            -9.5,
            "pvedaemon[2231]: <root@pam> update VM 460: -balloon 0 -memory 2048",
        ),
        Log(
            journal("altair", "pvedaemon.service"),
            -8.2,
            "pvedaemon[2231]: <root@pam> starting task UPID:altair:0000A1F2:00B2C3D4:6745A0C1:qmreboot:460:root@pam:",
        ),
        Log(
            kernel("docspell"),
            -4,
            "Out of memory: Killed process 1187 (java) total-vm:4811232kB, anon-rss:1702112kB, file-rss:0kB, "
            "shmem-rss:0kB, UID:1000 pgtables:4012kB oom_score_adj:0",
            repeat=3,
            every_s=90,
        ),
    ],
    nodes=[Node("altair")],
    guests=[
        Guest(
            460,
            "docspell",
            "altair",
            ips=["10.0.25.60"],
            maxmem_gb=2,
            mem_used=0.97,
            booted_min=-8,
            config={"memory": 2048, "balloon": 0},
        ),
        Guest(461, "solr", "altair", kind="lxc", ips=["10.0.25.61"], pending={"cores": 4}),
    ],
    pve_tasks=[
        PveTask("altair", "qmreboot", -8.2, -7.6, vmid=460, log=["VM 460 reboot"]),
        PveTask("altair", "vzdump", -300, -290, vmid=461, user="root@pam"),
    ],
)

GUEST_BACKUP_LOCK = Scenario(
    name="guest_frozen_by_stuck_backup",
    tags=("proxmox:lock", "proxmox:task-log", "long-running-task", "slow-burn"),
    story=(
        "The nightly snapshot backup of VM 470 (homeassistant) on node deneb began more than three hours before the "
        "alert. vzdump froze the guest's filesystems through the guest agent and the thaw command timed out: the "
        "VM has been frozen since, still locked 'backup', while the backup crawls at 1 MiB/s. Home Assistant stops "
        "answering once its buffers are spent."
    ),
    alert=AlertSpec(
        "HomeAssistantDown",
        {"instance": "homeassistant:8123", "job": "blackbox", "severity": "critical"},
        {"summary": "Home Assistant does not answer"},
        generator_expr='probe_success{instance="homeassistant:8123",job="blackbox"} == 0',
    ),
    causal=Expect(
        "a backup that has held the VM for three hours (locked, frozen filesystems)",
        sources=("proxmox",),
        words=(("backup",), ("vzdump",), ("freeze",), ("fsfreeze",)),
    ),
    hosts=[Host("homeassistant:9100", gone_min=-6), node_host("deneb")],
    raw=[
        Raw(
            "probe_success",
            {"instance": "homeassistant:8123", "job": "blackbox"},
            step(1, 0, -6, over_min=0.25),
            noise=False,
        ),
    ],
    logs=[
        *background("deneb"),
        Log(
            journal("deneb", "pvescheduler.service"),
            -125,
            "pvescheduler[8812]: INFO: starting new backup job: vzdump 470 --mode snapshot --storage local-backup",
        ),
    ],
    nodes=[Node("deneb")],
    guests=[Guest(470, "homeassistant", "deneb", ips=["10.0.26.70"], lock="backup")],
    pve_tasks=[
        PveTask(
            "deneb",
            "vzdump",
            -190,
            None,
            vmid=470,
            log=[
                "INFO: starting new backup job: vzdump 470 --mode snapshot --storage local-backup --compress zstd",
                "INFO: Starting Backup of VM 470 (qemu)",
                "INFO: Backup started at 2026-11-26 02:00:02",
                "INFO: status = running",
                "INFO: issuing guest-agent 'fs-freeze' command",
                "INFO: issuing guest-agent 'fs-thaw' command",
                "ERROR: VM 470 qmp command 'guest-fsfreeze-thaw' failed - got timeout",
                "INFO: started backup task '7d1c9a52-4b0e-4f5c-9a1d-2e8f3b6c0a11'",
                "INFO:   1% (2.6 GiB of 256.0 GiB) in 47m 10s, read: 0.9 MiB/s, write: 0.9 MiB/s",
                "INFO:   2% (5.1 GiB of 256.0 GiB) in 1h 36m 02s, read: 0.9 MiB/s, write: 0.8 MiB/s",
                "INFO:   3% (7.7 GiB of 256.0 GiB) in 2h 24m 51s, read: 0.9 MiB/s, write: 0.9 MiB/s",
                "INFO:   4% (10.2 GiB of 256.0 GiB) in 3h 08m 33s, read: 0.9 MiB/s, write: 0.9 MiB/s",
            ],
        ),
        PveTask("deneb", "vncproxy", -20, -19, vmid=470, user="admin@pve"),
    ],
)

PBS_SYNC_FILLS_DATASTORE = Scenario(
    name="pbs_sync_into_namespace_fills_datastore",
    tags=("pbs:namespace", "pbs:task-log", "long-running-task", "routine-job-negative"),
    story=(
        "A new sync job pulls the remote site's backups into namespace offsite/site-b of datastore ds-lyra. It has "
        "been running for five hours and is still copying; the datastore climbs past 95 %. Garbage collection and "
        "verification ran as every night and finished fine."
    ),
    alert=AlertSpec(
        "PbsDatastoreAlmostFull",
        {"datastore": "ds-lyra", "instance": "pbs-exporter-lyra:10019", "job": "pbs", "severity": "warning"},
        {"summary": "PBS datastore ds-lyra is 95% full"},
        generator_expr='pbs_used{datastore="ds-lyra"} / pbs_size{datastore="ds-lyra"} > 0.95',
    ),
    causal=Expect(
        "a sync job into the offsite namespace is filling the datastore", sources=("pbs",), words=(("sync",),)
    ),
    distractors=[
        Expect("last night's garbage collection finished OK", sources=("pbs",), words=(("garbage",),)),
        Expect("the verification job finished OK", sources=("pbs",), words=(("verif",),)),
    ],
    raw=[
        Raw(
            "pbs_used",
            {"datastore": "ds-lyra", "instance": "pbs-exporter-lyra:10019", "job": "pbs"},
            ramp(4.9e12, 5.75e12, -125, 0),
            noise=False,
        ),
        Raw(
            "pbs_size",
            {"datastore": "ds-lyra", "instance": "pbs-exporter-lyra:10019", "job": "pbs"},
            flat(6.0e12),
            noise=False,
        ),
    ],
    hosts=[node_host("pbs-lyra", net_mbps=step(2, 110, -300))],
    logs=[*background("pbs-lyra")],
    pbs_host="pbs-lyra",
    datastores=[
        Datastore("ds-lyra", total_tb=6.0, used_ratio=0.958, namespaces=["local", "offsite", "offsite/site-b"])
    ],
    pbs_tasks=[
        PbsTask(
            "syncjob",
            "site-b:store1:ds-lyra:offsite/site-b:s-7f3e21a0",
            -300,
            None,
            log=[
                "Starting datastore sync job 'site-b:store1:ds-lyra:offsite/site-b:s-7f3e21a0'",
                "sync datastore 'ds-lyra' from 'site-b/store1'",
                "Syncing datastore 'store1', root namespace into datastore 'ds-lyra', namespace 'offsite/site-b'",
                "found 64 groups to sync (out of 64 total)",
                "sync group vm/701",
                "sync snapshot vm/701/2026-11-20T01:00:02Z",
                "sync archive drive-scsi0.img.fidx",
                "downloaded 412.3 GiB (98.2 MiB/s)",
                "sync group vm/702",
                "sync snapshot vm/702/2026-11-20T01:10:41Z",
                "sync archive drive-scsi0.img.fidx",
            ],
        ),
        PbsTask("garbage_collection", "ds-lyra", -240, -200, log=["starting garbage collection on store ds-lyra"]),
        PbsTask(
            "verificationjob",
            "ds-lyra:v-2b91c04e",
            -180,
            -150,
            log=["verify datastore ds-lyra", "verified 412 of 412 snapshots"],
        ),
        PbsTask("backup", "ds-lyra:local/vm/480", -40, -32),
    ],
    nodes=[Node("lyra-pve")],
    guests=[Guest(480, "unifi-lyra", "lyra-pve", kind="lxc")],
)

NFS_STORAGE_NAS_SUSPENDED = Scenario(
    name="nfs_storage_of_guest_disk_stops_answering",
    tags=("neighbourhood:storage", "proxmox:storage", "nfs", "neighbourhood-negative"),
    story=(
        "Gitea, VM 490 on node sirius, keeps its disk on the NFS storage hera-vmstore that the NAS hera exports. "
        "Twelve minutes before the alert hera's disk controller resets and its ZFS pool vmpool is suspended after an "
        "uncorrectable I/O failure (the NAS's kernel says so, and its ZFS event daemon logs io_failure events); nfsd "
        "stops answering. Node sirius finds the NFS server hera not responding and the storage hera-vmstore no "
        "longer online, so the storage is not active on sirius. Inside the VM, whose own disk is just /dev/sda, the "
        "kernel reports tasks blocked for more than 120 seconds and IO wait climbs. The ISO share rhea-iso on "
        "another NAS has been 97 % full for weeks and holds no disk of the VM."
    ),
    alert=AlertSpec(
        "HostHighIoWait",
        {"instance": "gitea01:9100", "job": "node", "severity": "warning"},
        {"summary": "IO wait above 20% on gitea01:9100"},
        generator_expr='avg by (instance) (rate(node_cpu_seconds_total{instance="gitea01:9100",mode="iowait"}[5m]))'
        " > 0.2",
    ),
    causal=Expect(
        "the NAS hera's ZFS pool was suspended after an uncorrectable I/O failure",
        sources=("loki",),
        words=(("suspended",), ("uncorrectable",), ("io_failure",)),
    ),
    supporting=[
        Expect("the storage hera-vmstore is not active on sirius", sources=("proxmox",), words=(("hera-vmstore",),)),
        Expect("the VM's kernel reports blocked tasks", sources=("loki",), words=(("blocked for more than",),)),
    ],
    distractors=[Expect("the ISO share rhea-iso has long been nearly full", words=(("rhea-iso",),))],
    hosts=[
        Host("gitea01:9100", iowait=step(0.02, 0.62, -11), load1=step(0.6, 11.0, -10), disk_util=step(0.1, 1.0, -11)),
        node_host("hera", net_mbps=step(60, 0.3, -12), disk_util=step(0.35, 0.0, -12)),
        node_host("sirius"),
    ],
    logs=[
        *background("gitea01"),
        *background("hera"),
        *background("sirius"),
        Log(kernel("hera"), -12.3, "mpt3sas_cm0: fault_state(0x2651)!"),
        Log(kernel("hera"), -12.2, "mpt3sas_cm0: sending diag reset !!"),
        Log(
            kernel("hera"),
            -12.0,
            "WARNING: Pool 'vmpool' has encountered an uncorrectable I/O failure and has been suspended.",
        ),
        Log(
            journal("hera", "zfs-zed.service"),
            -11.9,
            "zed[1822]: eid=733 class=io_failure pool='vmpool'",
            repeat=6,
            every_s=90,
        ),
        Log(kernel("hera"), -9.5, "INFO: task nfsd:1456 blocked for more than 122 seconds.", repeat=3, every_s=120),
        Log(kernel("sirius"), -11.5, "nfs: server hera.lab.example not responding, timed out", repeat=8, every_s=60),
        Log(
            journal("sirius", "pvestatd.service"),
            -11.2,
            "pvestatd[1502]: storage 'hera-vmstore' is not online",
            repeat=10,
            every_s=60,
        ),
        Log(
            kernel("gitea01"),
            -9,
            "INFO: task jbd2/sda1-8:245 blocked for more than 122 seconds.",
            repeat=4,
            every_s=120,
        ),
    ],
    nodes=[Node("sirius", iowait=0.06)],
    guests=[
        Guest(
            490,
            "gitea01",
            "sirius",
            ips=["10.0.30.90"],
            disks={
                "scsi0": "hera-vmstore:490/vm-490-disk-0.qcow2,discard=on,size=64G",
                "efidisk0": "local-lvm:vm-490-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M",
                "ide2": "none,media=cdrom",
            },
        ),
        Guest(491, "wikijs", "sirius", kind="lxc", ips=["10.0.30.91"]),
    ],
    storages=[
        Storage(
            "hera-vmstore",
            "nfs",
            content="images",
            server="hera.lab.example",
            export="/vmpool/pve",
            shared=True,
            active=False,
        ),
        Storage("rhea-iso", "nfs", content="iso,vztmpl", server="10.0.31.8", export="/volume2/iso", used_ratio=0.97),
    ],
)

THIN_POOL_FULL_PAUSES_VM = Scenario(
    name="thin_pool_full_pauses_vm_with_io_error",
    tags=("proxmox:storage", "thin-pool", "io-error", "neighbourhood-negative"),
    story=(
        "The LVM-thin storage mimosa-thin of node mimosa (thin pool data in volume group pve) is overcommitted: its "
        "guests were promised more disk than the pool has. Nextcloud, VM 495, has been syncing a large upload for "
        "an hour; six minutes before the alert the thin pool reaches 100 % and the node's kernel switches it to "
        "out-of-data-space mode while dmeventd warns the thin pool is full. QEMU pauses the VM with an io-error and "
        "Nextcloud stops answering its probe. The node's backup directory mimosa-backup is 93 % full, as every week "
        "before the pruning, and holds no disk of the VM."
    ),
    alert=AlertSpec(
        "NextcloudDown",
        {"instance": "nextcloud01:443", "job": "blackbox", "severity": "critical"},
        {"summary": "Nextcloud does not answer"},
        generator_expr='probe_success{instance="nextcloud01:443",job="blackbox"} == 0',
    ),
    causal=Expect(
        "the thin pool mimosa-thin on mimosa is full",
        sources=("proxmox", "loki"),
        words=(("mimosa-thin",), ("thin pool", "full"), ("out-of-data-space",)),
    ),
    supporting=[Expect("QEMU paused the VM with an io-error", sources=("proxmox",), words=(("io-error",),))],
    distractors=[Expect("the backup directory mimosa-backup is nearly full as usual", words=(("mimosa-backup",),))],
    hosts=[
        Host("nextcloud01:9100", disk_write_mbps=step(45, 45, -60), gone_min=-6),
        node_host("mimosa", disk_write_mbps=step(48, 0.4, -6)),
    ],
    raw=[
        Raw(
            "probe_success",
            {"instance": "nextcloud01:443", "job": "blackbox"},
            step(1, 0, -5.5, over_min=0.25),
            noise=False,
        ),
    ],
    logs=[
        *background("nextcloud01"),
        *background("mimosa"),
        Log(
            journal("mimosa", "dm-event.service"),
            -24,
            "dmeventd[604]: WARNING: Thin pool pve-data-tpool data is now 95.07% full.",
        ),
        Log(
            kernel("mimosa"),
            -20,
            "device-mapper: thin: 252:4: reached low water mark for data device: sending event.",
        ),
        Log(
            journal("mimosa", "dm-event.service"),
            -6.3,
            "dmeventd[604]: WARNING: Thin pool pve-data-tpool data is now 100.00% full.",
        ),
        Log(kernel("mimosa"), -6.2, "device-mapper: thin: 252:4: switching pool to out-of-data-space (queue IO) mode"),
        Log(kernel("mimosa"), -5.2, "device-mapper: thin: 252:4: switching pool to out-of-data-space (error IO) mode"),
        Log(
            kernel("mimosa"),
            -5.1,
            "buffer_io_error: 14 callbacks suppressed",
        ),
    ],
    nodes=[Node("mimosa")],
    guests=[
        Guest(
            495,
            "nextcloud01",
            "mimosa",
            ips=["10.0.32.95"],
            maxmem_gb=8,
            qmpstatus="io-error",
            disks={
                "scsi0": "mimosa-thin:vm-495-disk-0,discard=on,size=64G",
                "scsi1": "mimosa-thin:vm-495-disk-1,discard=on,size=1T",
                "ide2": "local:iso/debian-12.7.0-amd64-netinst.iso,media=cdrom,size=631M",
            },
        ),
        Guest(
            496,
            "paperless",
            "mimosa",
            kind="lxc",
            ips=["10.0.32.96"],
            disks={"rootfs": "mimosa-thin:vm-496-disk-0,size=16G"},
        ),
    ],
    storages=[
        Storage(
            "mimosa-thin", "lvmthin", vgname="pve", thinpool="data", nodes=["mimosa"], total_gb=900, used_ratio=1.0
        ),
        Storage("mimosa-backup", "dir", content="backup", path="/mnt/backup", nodes=["mimosa"], used_ratio=0.93),
    ],
)

SCENARIOS = [
    NODE_DISK_ERRORS,
    ZFS_RESILVER,
    NFS_SERVER_GONE,
    PBS_USB_DISK_GONE,
    TOPOLOGY_DB_DISK_FULL,
    GUEST_MEMORY_CHANGE,
    GUEST_BACKUP_LOCK,
    PBS_SYNC_FILLS_DATASTORE,
    NFS_STORAGE_NAS_SUSPENDED,
    THIN_POOL_FULL_PAUSES_VM,
]
