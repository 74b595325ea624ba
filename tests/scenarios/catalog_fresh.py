"""Incidents of kinds the other catalogs do not hold, each written from its story before any triage ran: a node
cut off from its cluster's corosync ring, a container's root filesystem full on a healthy node, a certificate
renewal whose hook restarts a web server into a broken configuration, a node throttling its CPU as its fan stops,
a database password rotated under a running application, a verification job on the backup server starving a
running backup, a cache whose memory limit was lowered, and an HA migration onto a smaller node.
"""

from __future__ import annotations

from tests.scenarios.common import background, container, journal, kernel, node_host
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
    Storage,
    flat,
    ramp,
    sequence,
    step,
)

PVE = {"instance": "pve-exporter:9221", "job": "pve"}

COROSYNC_LINK_LOST = Scenario(
    name="corosync_link_lost_node_leaves_quorum",
    tags=("neighbourhood:node", "cluster", "vocabulary-free", "change-elsewhere-negative"),
    story=(
        "Node kochab is one of three in a Proxmox cluster (with zosma and menkar); corosync runs over a dedicated "
        "VLAN. Seven minutes before the alert someone tidies up the switch and drops that VLAN from kochab's port. "
        "The NIC keeps its link, so the kernel says nothing, but corosync on kochab loses both peers: knet reports "
        "the links down, the token times out, and kochab ends up alone in a non-primary component; pmxcfs logs that "
        "it lost quorum. The pve_exporter, which asks the cluster through zosma, reports kochab down. Its guests keep "
        "running. Twenty minutes earlier a user rebooted a VM on zosma, which has nothing to do with it."
    ),
    alert=AlertSpec(
        "PveNodeDown",
        {"id": "node/kochab", "instance": "pve-exporter:9221", "job": "pve", "severity": "critical"},
        {"summary": "Proxmox node kochab is down"},
        generator_expr='pve_up{id=~"node/.*"} == 0',
    ),
    causal=Expect(
        "corosync on kochab lost its peers and the node left the quorum",
        words=(("corosync",), ("knet",), ("quorum",), ("totem",)),
    ),
    distractors=[Expect("a user rebooted a VM on zosma", words=(("qmreboot",), ("reboot",)))],
    hosts=[node_host("kochab"), node_host("zosma"), node_host("menkar")],
    pve_metrics=[
        PveGuestMetrics("node/kochab", cpu=flat(0.22), mem_size_gb=64, gone_min=-6.5),
        PveGuestMetrics("node/zosma", cpu=flat(0.3), mem_size_gb=64),
        PveGuestMetrics("node/menkar", cpu=flat(0.18), mem_size_gb=32),
    ],
    logs=[
        *background("kochab"),
        *background("zosma"),
        Log(
            journal("kochab", "corosync.service"),
            -7.0,
            "corosync[1388]:   [KNET  ] link: host: 2 link: 0 is down",
        ),
        Log(
            journal("kochab", "corosync.service"),
            -7.0,
            "corosync[1388]:   [KNET  ] link: host: 3 link: 0 is down",
        ),
        Log(
            journal("kochab", "corosync.service"),
            -6.95,
            "corosync[1388]:   [KNET  ] host: host: 2 (passive) best link: 0 (pri: 1)",
        ),
        Log(
            journal("kochab", "corosync.service"),
            -6.95,
            "corosync[1388]:   [KNET  ] host: host: 2 has no active links",
        ),
        Log(
            journal("kochab", "corosync.service"),
            -6.9,
            "corosync[1388]:   [TOTEM ] Token has not been received in 3225 ms",
        ),
        Log(
            journal("kochab", "corosync.service"),
            -6.85,
            "corosync[1388]:   [TOTEM ] A processor failed, forming new configuration: token timed out (4300ms), "
            "waiting 5160ms for consensus.",
        ),
        Log(
            journal("kochab", "corosync.service"),
            -6.7,
            "corosync[1388]:   [QUORUM] Sync members[1]: 1",
        ),
        Log(
            journal("kochab", "corosync.service"),
            -6.7,
            "corosync[1388]:   [QUORUM] This node is within the non-primary component and will NOT provide any "
            "services.",
        ),
        Log(
            journal("kochab", "corosync.service"),
            -6.7,
            "corosync[1388]:   [QUORUM] Members[1]: 1",
        ),
        Log(journal("kochab", "pve-cluster.service"), -6.7, "pmxcfs[1290]: [status] notice: node lost quorum"),
        Log(
            journal("kochab", "pve-cluster.service"),
            -6.6,
            "pmxcfs[1290]: [dcdb] notice: members: 1/1290",
        ),
        Log(
            journal("kochab", "pvescheduler.service"),
            -5.0,
            "pvescheduler[2211]: replication: cfs-lock 'file-replication_cfg' error: no quorum!",
            repeat=5,
            every_s=60,
        ),
        Log(
            journal("zosma", "corosync.service"),
            -7.0,
            "corosync[1402]:   [KNET  ] link: host: 1 link: 0 is down",
        ),
        Log(
            journal("zosma", "corosync.service"),
            -6.7,
            "corosync[1402]:   [QUORUM] Members[2]: 2 3",
        ),
        Log(
            journal("zosma", "pvedaemon.service"),
            -27,
            "pvedaemon[3120]: <anna@pve> starting task UPID:zosma:00004A1B:0012F0C2:6745A0C1:qmreboot:862:anna@pve:",
        ),
    ],
    nodes=[Node("kochab", online=False), Node("zosma"), Node("menkar")],
    guests=[
        Guest(860, "ldap01", "kochab", ips=["10.0.86.60"]),
        Guest(861, "syncthing01", "kochab", kind="lxc", ips=["10.0.86.61"]),
        Guest(862, "gameserver", "zosma", ips=["10.0.86.62"], booted_min=-26),
        Guest(863, "pihole02", "menkar", kind="lxc", ips=["10.0.86.63"]),
    ],
    pve_tasks=[PveTask("zosma", "qmreboot", -27, -26, vmid=862, user="anna@pve")],
)

LXC_ROOTFS_FULL = Scenario(
    name="container_rootfs_full_on_a_healthy_node",
    tags=("proxmox:guest", "lxc", "topology-alias", "app-symptom"),
    story=(
        "Forgejo runs natively in the container forge-ct (CT 812) on node tarazed, its root filesystem an 8 GB "
        "volume on local-lvm; there is no node_exporter in the container. For two hours a crawler has been "
        "downloading an archive of every commit, and Forgejo keeps each one in its repo-archive cache until the "
        "container's root filesystem is full. Forgejo then fails to write archives and its SQLite database reports "
        "'database or disk is full'; the blackbox probe of git.lab.example gets 500. The node itself has plenty of "
        "space. An hour earlier the nightly backup of another container on tarazed ran and finished fine."
    ),
    alert=AlertSpec(
        "BlackboxProbeHttpFailure",
        {"instance": "https://git.lab.example", "job": "blackbox-http", "severity": "critical"},
        {"summary": "HTTP status code is not 200-399 for https://git.lab.example"},
        generator_expr='probe_http_status_code{job="blackbox-http"} <= 199 or '
        'probe_http_status_code{job="blackbox-http"} >= 400',
    ),
    causal=Expect(
        "the container's root filesystem is full",
        words=(("no space",), ("disk", "full"), ("rootfs",), ("pve_disk",), ("disk usage",)),
    ),
    distractors=[Expect("the nightly backup of another container", words=(("vzdump",),))],
    topology={"hosts": {"forge-ct": {"aliases": ["git.lab.example"]}}},
    hosts=[node_host("tarazed", fs_used=flat(0.38))],
    raw=[
        Raw(
            "probe_http_status_code",
            {"instance": "https://git.lab.example", "job": "blackbox-http"},
            step(200, 500, -4),
            noise=False,
        ),
        Raw(
            "probe_success",
            {"instance": "https://git.lab.example", "job": "blackbox-http"},
            step(1, 0, -4),
            noise=False,
        ),
        Raw(
            "pve_disk_usage_bytes",
            {"id": "lxc/812", **PVE},
            sequence((-4.0, ramp(5.1e9, 8.55e9, -120, -4)), (1e9, flat(8.58e9))),
        ),
        Raw("pve_disk_size_bytes", {"id": "lxc/812", **PVE}, flat(8.59e9), noise=False),
        Raw("pve_disk_usage_bytes", {"id": "lxc/813", **PVE}, flat(2.2e9)),
        Raw("pve_disk_size_bytes", {"id": "lxc/813", **PVE}, flat(4.29e9), noise=False),
    ],
    logs=[
        *background("tarazed"),
        *background("forge-ct"),
        Log(
            journal("forge-ct", "forgejo.service"),
            -120,
            "forgejo[311]: 2026/11/30 01:16:04 ...eb/routing/logger.go:102:func1() [I] router: completed GET "
            "/kim/dotfiles/archive/3f1c2b9d0a7e.tar.gz for 47.76.35.19:0, 200 OK in 412.3ms @ repo/repo.go:371(repo.Download)",
            repeat=240,
            every_s=30,
        ),
        Log(
            journal("forge-ct", "forgejo.service"),
            -4,
            "forgejo[311]: 2026/11/30 03:12:04 ...s/archiver/archiver.go:213:doArchive() [E] archive: write "
            "/var/lib/forgejo/data/repo-archive/tar.gz/3f/3f1c2b9d0a7e.tar.gz: no space left on device",
            repeat=12,
            every_s=20,
        ),
        Log(
            journal("forge-ct", "forgejo.service"),
            -3.8,
            "forgejo[311]: 2026/11/30 03:12:16 ...rvices/auth/session.go:86:Release() [E] Release: database or disk is "
            "full",
            repeat=10,
            every_s=20,
        ),
        Log(
            journal("tarazed", "vzdump"),
            -62,
            "vzdump[40112]: INFO: Finished Backup of VM 813 (00:03:12)",
        ),
    ],
    nodes=[Node("tarazed")],
    guests=[
        Guest(
            812,
            "forge-ct",
            "tarazed",
            kind="lxc",
            ips=["10.0.81.12"],
            maxmem_gb=2,
            disks={"rootfs": "local-lvm:vm-812-disk-0,size=8G"},
        ),
        Guest(813, "paperless-ct", "tarazed", kind="lxc", ips=["10.0.81.13"]),
    ],
    pve_tasks=[
        PveTask(
            "tarazed",
            "vzdump",
            -65,
            -62,
            vmid=813,
            log=[
                "INFO: starting new backup job: vzdump 813 --mode snapshot --storage local --compress zstd",
                "INFO: Starting Backup of VM 813 (lxc)",
                "INFO: Finished Backup of VM 813 (00:03:12)",
            ],
        )
    ],
)

CERTBOT_HOOK_RESTARTS_NGINX = Scenario(
    name="certbot_hook_restarts_nginx_into_a_broken_config",
    tags=("scheduled-job", "config-change", "vocabulary-free", "routine-job-negative"),
    story=(
        "The reverse proxy edge02 runs nginx with certificates from certbot. Last week a site was retired and its "
        "certificate deleted with 'certbot delete', but its server block stayed in sites-enabled; nginx kept the "
        "certificate it had loaded. Tonight certbot.timer renews another certificate and its deploy hook restarts "
        "nginx: nginx refuses to start because it cannot load the deleted certificate, and systemd leaves it "
        "failed. The nginx exporter reports nginx down. Logrotate rotated nginx's logs twenty minutes earlier, as it "
        "does every night, without trouble."
    ),
    alert=AlertSpec(
        "NginxDown",
        {"instance": "edge02:9113", "job": "nginx", "severity": "critical"},
        {"summary": "nginx on edge02 is down"},
        generator_expr='nginx_up{instance="edge02:9113"} == 0',
    ),
    causal=Expect(
        "nginx refused to start: the configuration names a certificate that no longer exists",
        words=(("emerg",), ("cannot load certificate",), ("deploy-hook",), ("nginx", "failed")),
    ),
    supporting=[Expect("certbot's deploy hook restarted nginx", words=(("certbot",), ("deploy-hook",)))],
    distractors=[Expect("the nightly logrotate", words=(("logrotate",),))],
    hosts=[node_host("edge02", net_mbps=step(6.0, 0.2, -6))],
    raw=[
        Raw("nginx_up", {"instance": "edge02:9113", "job": "nginx"}, step(1, 0, -6, over_min=0.25), noise=False),
        Raw(
            "nginx_http_requests_total",
            {"instance": "edge02:9113", "job": "nginx"},
            sequence((-6.0, flat(45.0)), (1e9, flat(0.0))),
            counter=True,
        ),
    ],
    logs=[
        *background("edge02"),
        Log(
            journal("edge02", "logrotate.service"), -27, "systemd[1]: Starting logrotate.service - Rotate log files..."
        ),
        Log(
            journal("edge02", "logrotate.service"),
            -26.9,
            "logrotate[19804]: 'invoke-rc.d nginx rotate' executed",
        ),
        Log(journal("edge02", "logrotate.service"), -26.8, "systemd[1]: logrotate.service: Deactivated successfully."),
        Log(
            journal("edge02", "certbot.service"),
            -6.6,
            "certbot[20411]: Processing /etc/letsencrypt/renewal/photos.lab.example.conf",
        ),
        Log(
            journal("edge02", "certbot.service"),
            -6.5,
            "certbot[20411]: Renewing an existing certificate for photos.lab.example",
        ),
        Log(
            journal("edge02", "certbot.service"),
            -6.1,
            "certbot[20411]: Running deploy-hook command: systemctl restart nginx",
        ),
        Log(
            journal("edge02", "nginx.service"),
            -6.05,
            'nginx[20502]: nginx: [emerg] cannot load certificate "/etc/letsencrypt/live/grafana.lab.example/'
            'fullchain.pem": BIO_new_file() failed (SSL: error:80000002:system library::No such file or directory:'
            "calling fopen(/etc/letsencrypt/live/grafana.lab.example/fullchain.pem, r) error:10000080:BIO routines::"
            "no such file)",
        ),
        Log(
            journal("edge02", "nginx.service"),
            -6.05,
            "nginx[20502]: nginx: configuration file /etc/nginx/nginx.conf test failed",
        ),
        Log(
            journal("edge02", "nginx.service"),
            -6.0,
            "systemd[1]: nginx.service: Control process exited, code=exited, status=1/FAILURE",
        ),
        Log(journal("edge02", "nginx.service"), -6.0, "systemd[1]: nginx.service: Failed with result 'exit-code'."),
        Log(
            journal("edge02", "nginx.service"),
            -6.0,
            "systemd[1]: Failed to start nginx.service - A high performance web server and a reverse proxy server.",
        ),
        Log(
            journal("edge02", "certbot.service"),
            -5.9,
            "certbot[20411]: Hook 'deploy-hook' reported error code 1",
        ),
        Log(
            journal("edge02", "certbot.service"),
            -5.9,
            "certbot[20411]: Hook 'deploy-hook' ran with error output: Job for nginx.service failed because the "
            'control process exited with error code. See "systemctl status nginx.service" and "journalctl -xeu '
            'nginx.service" for details.',
        ),
    ],
    nodes=[Node("naos")],
    guests=[Guest(870, "edge02", "naos", kind="lxc", ips=["10.0.87.2"])],
)

FAN_STOPS_NODE_THROTTLES = Scenario(
    name="fan_stops_node_throttles_cpu",
    tags=("neighbourhood:node", "node-kernel-log", "hwmon", "tool-applied-update"),
    story=(
        "Node alcor is a small fanned mini PC under a desk. Forty-five minutes before the alert its CPU fan stops "
        "(node_exporter's hwmon fan reading drops to 0 RPM); the package temperature climbs to 99 °C and from a "
        "quarter of an hour before the alert the kernel logs that it throttles the CPU clock, which falls from "
        "3.4 GHz to 800 MHz. Frigate in VM frigate01 on alcor needs four times longer per detection and cannot keep "
        "up with its recording segments. Twenty-five minutes earlier Watchtower on frigate01 updated the unrelated "
        "mosquitto container."
    ),
    alert=AlertSpec(
        "FrigateDetectorSlow",
        {"instance": "frigate01:5000", "job": "frigate", "name": "ov", "severity": "warning"},
        {"summary": "Frigate detector ov needs more than 50 ms per inference"},
        generator_expr='frigate_detector_inference_speed_seconds{instance="frigate01:5000"} > 0.05',
    ),
    causal=Expect(
        "alcor's CPU fan stopped and the CPU is thermally throttled",
        words=(("temperature",), ("throttl",), ("fan",), ("hwmon",), ("frequency",)),
    ),
    distractors=[Expect("watchtower updated mosquitto", words=(("mosquitto",), ("watchtower",)))],
    hosts=[
        Host("frigate01:9100", cpu_busy=step(0.4, 0.88, -15), load1=step(2.1, 5.6, -15)),
        node_host("alcor", cpu_busy=step(0.3, 0.62, -15)),
    ],
    pve_metrics=[
        PveGuestMetrics("qemu/830", cpu=step(0.4, 0.9, -15), mem_size_gb=6),
        PveGuestMetrics("node/alcor", cpu=step(0.3, 0.62, -15), mem_size_gb=32),
    ],
    raw=[
        Raw(
            "frigate_detector_inference_speed_seconds",
            {"instance": "frigate01:5000", "job": "frigate", "name": "ov"},
            step(0.011, 0.046, -15, over_min=10),
        ),
        Raw(
            "node_hwmon_fan_rpm",
            {"instance": "alcor:9100", "job": "node", "chip": "platform_nct6775_656", "sensor": "fan2"},
            step(1450, 0, -45),
        ),
        Raw(
            "node_hwmon_temp_celsius",
            {"instance": "alcor:9100", "job": "node", "chip": "platform_coretemp_0", "sensor": "temp1"},
            ramp(58, 99, -45, -15),
        ),
        *(
            Raw(
                "node_cpu_scaling_frequency_hertz",
                {"instance": "alcor:9100", "job": "node", "cpu": str(cpu)},
                step(3.4e9, 0.8e9, -15, over_min=2),
            )
            for cpu in range(4)
        ),
        Raw(
            "node_cpu_package_throttles_total",
            {"instance": "alcor:9100", "job": "node", "package": "0"},
            step(0.0, 1.5, -15),
            counter=True,
            noise=False,
        ),
    ],
    logs=[
        *background("alcor"),
        *background("frigate01"),
        Log(
            kernel("alcor"),
            -15,
            "mce: CPU2: Core temperature above threshold, cpu clock throttled (total events = 1841)",
            repeat=15,
            every_s=60,
        ),
        Log(
            kernel("alcor"),
            -15,
            "mce: CPU0: Package temperature above threshold, cpu clock throttled (total events = 2210)",
            repeat=15,
            every_s=60,
        ),
        Log(kernel("alcor"), -14.9, "mce: CPU2: Core temperature/speed normal", repeat=15, every_s=60),
        Log(
            container("frigate01", "watchtower"),
            -25,
            'time="2026-11-30T02:58:11Z" level=info msg="Found new eclipse-mosquitto:2 image (3f1c2b9d0a7e)"',
        ),
        Log(
            container("frigate01", "watchtower"),
            -24.9,
            'time="2026-11-30T02:58:13Z" level=info msg="Stopping /mosquitto (8d2e41aa7c10) with SIGTERM"',
        ),
        Log(
            container("frigate01", "watchtower"),
            -24.8,
            'time="2026-11-30T02:58:15Z" level=info msg="Creating /mosquitto"',
        ),
        Log(
            container("frigate01", "frigate"),
            -10,
            "[2026-11-30 03:12:04] frigate.record.maintainer WARNING : Unable to keep up with recording segments in "
            "cache for driveway. Keeping the 5 most recent segments out of 6 and discarding the rest...",
            repeat=20,
            every_s=30,
        ),
    ],
    nodes=[Node("alcor", cpu=0.62)],
    guests=[
        Guest(830, "frigate01", "alcor", ips=["10.0.83.30"], maxmem_gb=6),
        Guest(831, "adguard02", "alcor", kind="lxc", ips=["10.0.83.31"]),
    ],
)

DB_PASSWORD_ROTATED = Scenario(
    name="db_password_rotated_under_the_app",
    tags=("neighbourhood:topology", "topology-alias", "config-change", "auth"),
    story=(
        "Wiki.js on wikijs01 keeps its pages in PostgreSQL on pgwiki01, declared as its dependency; the probe "
        "checks https://wiki.lab.example, an alias of wikijs01. Twenty-six minutes before the alert an Ansible "
        "run rotates the password of the database role wikijs on pgwiki01 (the postgresql_user module logs its "
        "invocation), but the new password never reaches Wiki.js's environment. Open connections keep working until "
        "the pool recycles them five minutes before the alert; from then on PostgreSQL rejects every new connection "
        "with 'password authentication failed for user \"wikijs\"' and the wiki answers 500. Earlier that night "
        "wikijs01 upgraded libcurl."
    ),
    alert=AlertSpec(
        "BlackboxProbeFailed",
        {"instance": "https://wiki.lab.example", "job": "blackbox-http", "severity": "critical"},
        {"summary": "Probe of https://wiki.lab.example failed"},
        generator_expr='probe_success{job="blackbox-http"} == 0',
    ),
    causal=Expect(
        "PostgreSQL rejects the wikijs role's password since the rotation",
        words=(("password authentication failed",), ("postgresql_user",)),
    ),
    supporting=[Expect("Ansible rotated the role's password", words=(("postgresql_user",), ("password", "rotat")))],
    distractors=[Expect("wikijs01 upgraded libcurl", words=(("libcurl",),))],
    topology={"hosts": {"wikijs01": {"aliases": ["wiki.lab.example"], "depends_on": ["pgwiki01"]}}},
    hosts=[Host("wikijs01:9100"), node_host("pgwiki01")],
    raw=[
        Raw(
            "probe_success",
            {"instance": "https://wiki.lab.example", "job": "blackbox-http"},
            step(1, 0, -5),
            noise=False,
        ),
        Raw(
            "probe_http_status_code",
            {"instance": "https://wiki.lab.example", "job": "blackbox-http"},
            step(200, 500, -5),
            noise=False,
        ),
        Raw(
            "pg_stat_database_numbackends",
            {"instance": "pgwiki01:9187", "job": "postgres", "datname": "wiki"},
            step(8, 0, -5),
        ),
        Raw(
            "pg_stat_database_numbackends",
            {"instance": "pgwiki01:9187", "job": "postgres", "datname": "postgres"},
            flat(1),
        ),
    ],
    logs=[
        *background("wikijs01"),
        *background("pgwiki01"),
        Log(
            journal("wikijs01", "unattended-upgrades.service"),
            -52,
            "unattended-upgrade[811]: Packages that will be upgraded: curl libcurl4",
        ),
        Log(
            journal("wikijs01", "unattended-upgrades.service"), -51.5, "unattended-upgrade[811]: All upgrades installed"
        ),
        Log(
            journal("pgwiki01", "session-412.scope"),
            -26,
            "ansible-community.postgresql.postgresql_user[23311]: Invoked with name=wikijs "
            "password=NOT_LOGGING_PARAMETER db=wiki login_user=postgres state=present encrypted=True "
            "no_password_changes=False expires=None conn_limit=None",
        ),
        Log(
            journal("pgwiki01", "postgresql@16-main.service"),
            -120,
            "postgres[1904]: 2026-11-30 01:16:04.118 UTC [1904] LOG:  checkpoint complete: wrote 412 buffers (2.5%); "
            "0 WAL file(s) added, 0 removed, 1 recycled; write=41.233 s, sync=0.004 s, total=41.250 s",
            repeat=25,
            every_s=300,
        ),
        Log(
            journal("pgwiki01", "postgresql@16-main.service"),
            -5,
            "postgres[24410]: 2026-11-30 03:12:04.118 UTC [24410] wikijs@wiki FATAL:  password authentication failed "
            'for user "wikijs"',
            repeat=30,
            every_s=10,
        ),
        Log(
            journal("pgwiki01", "postgresql@16-main.service"),
            -5,
            "postgres[24410]: 2026-11-30 03:12:04.118 UTC [24410] wikijs@wiki DETAIL:  Connection matched file "
            '"/etc/postgresql/16/main/pg_hba.conf" line 102: "host    wiki    wikijs    10.0.0.0/16    scram-sha-256"',
            repeat=30,
            every_s=10,
        ),
        Log(
            container("wikijs01", "wikijs"),
            -5,
            "2026-11-30T03:12:04.120Z [MASTER] error: Database Connection Error: password authentication failed for "
            'user "wikijs"',
            repeat=30,
            every_s=10,
        ),
    ],
    nodes=[Node("phecda")],
    guests=[
        Guest(880, "wikijs01", "phecda", kind="lxc", ips=["10.0.88.80"]),
        Guest(881, "pgwiki01", "phecda", ips=["10.0.88.81"]),
    ],
)

PBS_VERIFY_STARVES_BACKUP = Scenario(
    name="pbs_verify_starves_running_backup",
    tags=("neighbourhood:pbs", "pbs:task-log", "long-running-task", "pressure"),
    story=(
        "The PBS server pbs-hamal keeps datastore hdd-pool on a single RAIDZ of spinning disks. A verification job "
        "of the whole datastore, scheduled by mistake for the same night as the backups, starts forty-five minutes "
        "before the alert and keeps those disks 100 % busy. Node hamal's backup job starts twenty minutes before the "
        "alert and backs up gitlab01 in snapshot mode to that datastore; with the disks busy the backup crawls at a "
        "few MiB/s, and as every guest write to a block not yet backed up must wait for that block to be copied, "
        "gitlab01's IO stalls. Last night's garbage collection on the other datastore ran fine."
    ),
    alert=AlertSpec(
        "HostIoPressureHigh",
        {"instance": "gitlab01:9100", "job": "node", "severity": "warning"},
        {"summary": "Processes on gitlab01 are stalled on IO more than 40 % of the time"},
        generator_expr='rate(node_pressure_io_stalled_seconds_total{instance="gitlab01:9100"}[5m]) > 0.4',
    ),
    causal=Expect(
        "the verification job on pbs-hamal saturates the datastore's disks", sources=("pbs",), words=(("verif",),)
    ),
    supporting=[
        Expect("the backup of gitlab01 is running slowly", sources=("proxmox", "pbs"), words=(("vzdump",), ("backup",)))
    ],
    distractors=[Expect("garbage collection on ssd-pool", words=(("garbage",),))],
    hosts=[
        Host(
            "gitlab01:9100",
            extended=True,
            pressure_io=step(0.01, 0.62, -18),
            iowait=step(0.02, 0.35, -18),
            disk_write_mbps=step(6.0, 0.8, -18),
        ),
        node_host("hamal", net_mbps=step(1.0, 6.0, -20)),
        node_host("pbs-hamal", disk_util=step(0.2, 1.0, -45), disk_read_mbps=step(15.0, 190.0, -45)),
    ],
    pve_metrics=[PveGuestMetrics("qemu/841", disk_read_mbps=step(1.0, 5.0, -20), disk_write_mbps=step(5.0, 0.8, -18))],
    logs=[
        *background("gitlab01"),
        *background("hamal"),
        *background("pbs-hamal"),
        Log(
            journal("pbs-hamal", "proxmox-backup-proxy.service"),
            -45,
            "proxmox-backup-proxy[1021]: starting new verify job 'hdd-pool:v-91c2aa01'",
        ),
        Log(
            journal("pbs-hamal", "proxmox-backup-proxy.service"),
            -20,
            "proxmox-backup-proxy[1021]: starting new backup on datastore 'hdd-pool' from ::ffff:10.0.84.2: "
            '"ns/hamal/vm/841/2026-11-30T02:52:04Z"',
        ),
        Log(
            container("gitlab01", "gitlab"),
            -15,
            "==> /var/log/gitlab/gitlab-rails/production.log <== Completed 500 Internal Server Error in 60012ms "
            "(ActiveRecord: 59874.2ms | Elasticsearch: 0.0ms | Allocations: 41233)",
            repeat=8,
            every_s=90,
        ),
    ],
    nodes=[Node("hamal")],
    guests=[
        Guest(841, "gitlab01", "hamal", ips=["10.0.84.41"], maxmem_gb=12, lock="backup"),
        Guest(842, "runner01", "hamal", kind="lxc", ips=["10.0.84.42"]),
    ],
    pve_tasks=[
        PveTask(
            "hamal",
            "vzdump",
            -20,
            None,
            vmid=841,
            log=[
                "INFO: starting new backup job: vzdump 841 --mode snapshot --storage pbs-hamal --notes-template "
                "'{{guestname}}'",
                "INFO: Starting Backup of VM 841 (qemu)",
                "INFO: creating Proxmox Backup Server archive 'vm/841/2026-11-30T02:52:04Z'",
                "INFO: started backup task 'a1f3c2d0-7d41-4b7e-9b8e-2f0c91d3b6a1'",
                "INFO:   1% (1.2 GiB of 120.0 GiB) in 5m, read: 4.1 MiB/s, write: 3.9 MiB/s",
                "INFO:   2% (2.5 GiB of 120.0 GiB) in 10m, read: 4.4 MiB/s, write: 4.2 MiB/s",
                "INFO:   3% (3.6 GiB of 120.0 GiB) in 15m, read: 3.8 MiB/s, write: 3.7 MiB/s",
            ],
        )
    ],
    storages=[
        Storage(
            "pbs-hamal",
            "pbs",
            content="backup",
            server="pbs-hamal.lab.example",
            datastore="hdd-pool",
            namespace="hamal",
        )
    ],
    pbs_host="pbs-hamal",
    datastores=[
        Datastore("hdd-pool", total_tb=16.0, used_ratio=0.52, namespaces=["hamal"]),
        Datastore("ssd-pool", total_tb=2.0, used_ratio=0.41, namespaces=["hamal"]),
    ],
    pbs_tasks=[
        PbsTask(
            "verificationjob",
            "hdd-pool:v-91c2aa01",
            -45,
            None,
            log=[
                "Starting datastore verify job 'hdd-pool:v-91c2aa01'",
                "verify datastore hdd-pool",
                "found 212 groups",
                "verify group hdd-pool:ns/hamal/vm/801 (14 snapshots)",
                "  verified 12034.21/33841.58 MiB in 1310.42 seconds, speed 9.18/25.83 MiB/s (0 errors)",
                "verify group hdd-pool:ns/hamal/vm/802 (14 snapshots)",
            ],
        ),
        PbsTask("backup", "hdd-pool:hamal/vm/841", -20, None),
        PbsTask(
            "garbage_collection",
            "ssd-pool",
            -300,
            -280,
            log=["starting garbage collection on store ssd-pool", "Removed garbage: 1.2 GiB"],
        ),
    ],
)

REDIS_MAXMEMORY_LOWERED = Scenario(
    name="redis_maxmemory_lowered_evictions",
    tags=("metric-discovery", "config-change", "app-metric", "non-node-exporter"),
    story=(
        "Redis on cache01 serves the sessions and caches of several apps. Eighteen minutes before the alert the "
        "admin, making room for a new service on the VM, lowers maxmemory in redis.conf from 2 GiB to 512 MiB and "
        "restarts redis-server. Redis loads its 1.4 GiB dataset from disk and immediately starts evicting keys to "
        "fit the new limit, and keeps evicting as the apps write; redis_exporter shows redis_memory_max_bytes drop "
        "to a quarter. Forty minutes earlier a new app started using the same Redis, so connected clients rose "
        "from 40 to 70 without changing anything else."
    ),
    alert=AlertSpec(
        "RedisTooManyEvictions",
        {"instance": "cache01:9121", "job": "redis", "severity": "warning"},
        {"summary": "Redis on cache01 is evicting keys"},
        generator_expr='increase(redis_evicted_keys_total{instance="cache01:9121"}[1m]) > 1000',
    ),
    causal=Expect(
        "redis' maxmemory was lowered to a quarter",
        words=(("maxmemory",), ("memory_max",), ("max_bytes",)),
    ),
    supporting=[Expect("redis-server was restarted", words=(("redis", "start"), ("ready to accept",)))],
    distractors=[Expect("more clients connected", words=(("clients",),))],
    hosts=[Host("cache01:9100", mem_used=step(0.62, 0.3, -18))],
    raw=[
        Raw(
            "redis_memory_max_bytes",
            {"instance": "cache01:9121", "job": "redis"},
            step(2.147e9, 5.37e8, -18),
            noise=False,
        ),
        Raw(
            "redis_memory_used_bytes",
            {"instance": "cache01:9121", "job": "redis"},
            sequence((-18.0, flat(1.41e9)), (1e9, flat(5.3e8))),
        ),
        Raw(
            "redis_evicted_keys_total",
            {"instance": "cache01:9121", "job": "redis"},
            sequence((-17.0, flat(0.0)), (-14.0, flat(2500.0)), (1e9, flat(45.0))),
            counter=True,
            noise=False,
        ),
        Raw(
            "redis_keyspace_misses_total",
            {"instance": "cache01:9121", "job": "redis"},
            step(3.0, 60.0, -17),
            counter=True,
        ),
        Raw(
            "redis_keyspace_hits_total",
            {"instance": "cache01:9121", "job": "redis"},
            step(300.0, 240.0, -17),
            counter=True,
        ),
        Raw("redis_connected_clients", {"instance": "cache01:9121", "job": "redis"}, step(40, 70, -40)),
    ],
    logs=[
        *background("cache01"),
        Log(
            journal("cache01", "redis-server.service"),
            -18.2,
            "redis-server[812]: 812:signal-handler (1764472320) Received SIGTERM scheduling shutdown...",
        ),
        Log(
            journal("cache01", "redis-server.service"),
            -18.1,
            "redis-server[812]: 812:M 30 Nov 2026 02:54:00.412 # Redis is now ready to exit, bye bye...",
        ),
        Log(
            journal("cache01", "redis-server.service"),
            -18.0,
            "redis-server[30112]: 30112:C 30 Nov 2026 02:54:01.003 * Redis version=7.0.15, bits=64, commit=00000000, "
            "modified=0, pid=30112, just started",
        ),
        Log(
            journal("cache01", "redis-server.service"),
            -18.0,
            "redis-server[30112]: 30112:C 30 Nov 2026 02:54:01.003 * Configuration loaded",
        ),
        Log(
            journal("cache01", "redis-server.service"),
            -17.9,
            "redis-server[30112]: 30112:M 30 Nov 2026 02:54:04.415 * DB loaded from disk: 3.412 seconds",
        ),
        Log(
            journal("cache01", "redis-server.service"),
            -17.9,
            "redis-server[30112]: 30112:M 30 Nov 2026 02:54:04.415 * Ready to accept connections tcp",
        ),
        Log(
            journal("cache01", "redis-server.service"),
            -120,
            "redis-server[812]: 812:M 30 Nov 2026 01:16:04.118 * 100 changes in 300 seconds. Saving...",
            repeat=24,
            every_s=300,
        ),
    ],
    nodes=[Node("merak")],
    guests=[Guest(890, "cache01", "merak", ips=["10.0.89.10"], maxmem_gb=4)],
)

HA_MIGRATION_TO_SMALLER_NODE = Scenario(
    name="ha_maintenance_moves_guest_to_smaller_node",
    tags=("proxmox:task", "proxmox:ha", "migration", "pressure"),
    story=(
        "Node mizar (16 cores) is put into HA maintenance mode twenty-five minutes before the alert so that it can "
        "be upgraded. The HA manager migrates its services away; the CI runner VM build01 (8 vCPUs) lands on alkaid, "
        "a 4-core mini PC that already runs two containers. On alkaid build01's vCPUs wait for the host: CPU "
        "pressure in the VM goes from 2 % to 70 % and steal to 40 %, and CI jobs time out. On mizar the upgrade "
        "reloads the PVE services, which has nothing to do with build01 any more."
    ),
    alert=AlertSpec(
        "HostCpuPressureHigh",
        {"instance": "build01:9100", "job": "node", "severity": "warning"},
        {"summary": "Processes on build01 wait for CPU more than 50 % of the time"},
        generator_expr='rate(node_pressure_cpu_waiting_seconds_total{instance="build01:9100"}[5m]) > 0.5',
    ),
    causal=Expect(
        "HA migrated build01 from mizar to the smaller node alkaid",
        words=(("migrat",), ("maintenance",)),
    ),
    supporting=[Expect("alkaid's CPU is saturated", words=(("alkaid",), ("steal",)))],
    distractors=[Expect("pveproxy reloads on mizar", words=(("pveproxy",),))],
    hosts=[
        Host(
            "build01:9100",
            extended=True,
            pressure_cpu=step(0.02, 0.7, -23),
            steal=step(0.0, 0.4, -23),
            load1=step(3.0, 11.0, -23),
            cpu_busy=flat(0.55),
        ),
        node_host("alkaid", cpu_busy=step(0.3, 0.99, -23), load1=step(1.5, 9.0, -23)),
        node_host("mizar", cpu_busy=step(0.4, 0.05, -23)),
    ],
    pve_metrics=[
        PveGuestMetrics("qemu/850", cpu=flat(0.55), mem_size_gb=16),
        PveGuestMetrics("node/alkaid", cpu=step(0.3, 0.99, -23), mem_size_gb=32),
        PveGuestMetrics("node/mizar", cpu=step(0.4, 0.05, -23), mem_size_gb=128),
    ],
    logs=[
        *background("build01"),
        *background("alkaid"),
        *background("mizar"),
        Log(
            journal("mizar", "pve-ha-crm.service"),
            -25,
            "pve-ha-crm[1702]: node 'mizar': state changed from 'online' => 'maintenance'",
        ),
        Log(
            journal("mizar", "pve-ha-crm.service"),
            -25,
            "pve-ha-crm[1702]: migrate service 'vm:850' to node 'alkaid' (running)",
        ),
        Log(
            journal("mizar", "pve-ha-crm.service"),
            -25,
            "pve-ha-crm[1702]: service 'vm:850': state changed from 'started' to 'migrate'  (node = mizar, target = "
            "alkaid)",
        ),
        Log(
            journal("mizar", "pve-ha-lrm.service"),
            -24.9,
            "pve-ha-lrm[1544]: <root@pam> starting task UPID:mizar:0000A3F1:0041C2D0:6745A0C1:qmigrate:850:root@pam:",
        ),
        Log(
            journal("mizar", "pve-ha-lrm.service"),
            -23.4,
            "pve-ha-lrm[1544]: service vm:850 - end migrate to node 'alkaid'",
        ),
        Log(
            journal("mizar", "pve-ha-crm.service"),
            -23.2,
            "pve-ha-crm[1702]: service 'vm:850': state changed from 'migrate' to 'started'  (node = alkaid)",
        ),
        Log(
            journal("mizar", "pveproxy.service"),
            -15,
            "systemd[1]: Reloading pveproxy.service - PVE API Proxy Server...",
        ),
        Log(
            journal("mizar", "pveproxy.service"), -14.9, "systemd[1]: Reloaded pveproxy.service - PVE API Proxy Server."
        ),
        Log(
            container("build01", "woodpecker-agent"),
            -12,
            '{"level":"error","error":"context deadline exceeded","time":"2026-11-30T03:12:04Z","message":"step '
            'timed out"}',
            repeat=5,
            every_s=120,
        ),
    ],
    nodes=[Node("mizar", cpu=0.05, mem_used=0.1), Node("alkaid", cpu=0.99, mem_used=0.82)],
    guests=[
        Guest(850, "build01", "alkaid", ips=["10.0.85.50"], maxmem_gb=16, booted_min=-6 * 24 * 60, config={"cores": 8}),
        Guest(851, "adguard03", "alkaid", kind="lxc", ips=["10.0.85.51"]),
        Guest(852, "unifi01", "alkaid", kind="lxc", ips=["10.0.85.52"]),
    ],
    pve_tasks=[
        PveTask(
            "mizar",
            "qmigrate",
            -24.9,
            -23.4,
            vmid=850,
            log=[
                "2026-11-30 02:54:02 use dedicated network address for sending migration traffic (10.0.85.12)",
                "2026-11-30 02:54:02 starting migration of VM 850 to node 'alkaid' (10.0.85.12)",
                "2026-11-30 02:54:40 migration active, transferred 7.9 GiB of 16.0 GiB VM-state, 1.1 GiB/s",
                "2026-11-30 02:55:28 migration finished successfully (duration 00:01:26)",
                "TASK OK",
            ],
        )
    ],
)

SCENARIOS = [
    COROSYNC_LINK_LOST,
    LXC_ROOTFS_FULL,
    CERTBOT_HOOK_RESTARTS_NGINX,
    FAN_STOPS_NODE_THROTTLES,
    DB_PASSWORD_ROTATED,
    PBS_VERIFY_STARVES_BACKUP,
    REDIS_MAXMEMORY_LOWERED,
    HA_MIGRATION_TO_SMALLER_NODE,
]
