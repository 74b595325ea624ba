"""Incidents whose cause no keyword list names: a daemon announcing a state change, a tool announcing the update it
applied, a setting quietly changed; causes in series outside the usual CPU/memory/disk/network (swap, inodes,
pressure, SMART, a UPS, one label of the alert's own query); causes that began long before the alert; and worlds
where a new capability must not fire (an unrelated event on the node, a routine job, a line that was always there).
"""

from __future__ import annotations

from tests.scenarios.common import background, container, journal, kernel, node_host
from tests.scenarios.model import (
    AlertSpec,
    Expect,
    Filesystem,
    Guest,
    Host,
    Log,
    Node,
    PveTask,
    Raw,
    Scenario,
    flat,
    ramp,
    step,
)

KEEPALIVED_BACKUP = Scenario(
    name="keepalived_gives_up_the_vip",
    tags=("vocabulary-free", "state-change", "noisy-info-negative", "reboot"),
    story=(
        "lb02 is rebooted for a kernel update and comes back with a leftover keepalived priority of 150, above "
        "lb01's 100, but haproxy on lb02 is disabled. Six minutes before the alert lb01's keepalived receives the "
        "higher-priority advert, enters BACKUP state and removes the VIP; requests reach lb02 where nothing listens. "
        "No daemon logs an error; keepalived's health-check script keeps saying 'succeeded' as it always does."
    ),
    alert=AlertSpec(
        "HaproxyFrontendNoTraffic",
        {"instance": "lb01:8405", "job": "haproxy", "proxy": "fe_https", "severity": "critical"},
        {"summary": "haproxy frontend fe_https on lb01 receives almost no requests"},
        generator_expr='sum(rate(haproxy_frontend_http_requests_total{instance="lb01:8405",proxy="fe_https"}[5m])) < 1',
    ),
    causal=Expect(
        "lb01's keepalived entered BACKUP state and removed the VIP",
        sources=("loki",),
        words=(("backup state",), ("higher priority",), ("removing", "vip")),
    ),
    distractors=[Expect("the health-check script succeeds, as always", words=(("chk_haproxy", "succeeded"),))],
    hosts=[
        node_host("lb01", net_mbps=step(18, 0.4, -6)),
        node_host("lb02", gone_min=-12, back_min=-9),
    ],
    raw=[
        Raw(
            "haproxy_frontend_http_requests_total",
            {"instance": "lb01:8405", "job": "haproxy", "proxy": "fe_https"},
            step(45, 0.2, -6),
            counter=True,
        ),
    ],
    logs=[
        *background("lb01"),
        Log(
            journal("lb01", "keepalived.service"),
            -124,
            "Keepalived_vrrp[934]: VRRP_Script(chk_haproxy) succeeded",
            repeat=26,
            every_s=300,
        ),
        Log(
            journal("lb01", "keepalived.service"),
            -6.1,
            "Keepalived_vrrp[934]: (VI_1) Master received advert from 10.0.30.3 with higher priority 150, ours 100",
        ),
        Log(journal("lb01", "keepalived.service"), -6.0, "Keepalived_vrrp[934]: (VI_1) Entering BACKUP STATE"),
        Log(journal("lb01", "keepalived.service"), -6.0, "Keepalived_vrrp[934]: (VI_1) removing VIPs."),
        Log(journal("lb02", "systemd-logind.service"), -12.2, "systemd-logind[611]: The system will reboot now!"),
        Log(journal("lb02", "keepalived.service"), -8.5, "Keepalived_vrrp[702]: (VI_1) Entering MASTER STATE"),
    ],
)

WATCHTOWER_UPDATE = Scenario(
    name="watchtower_pulled_a_new_image",
    tags=("vocabulary-free", "tool-applied-update", "noisy-info-negative"),
    story=(
        "Watchtower on docker02 checks for new images every half hour and usually finds none. Eleven minutes before "
        "the alert it finds a new sonarr:latest image, stops the container and recreates it. The new release "
        "expects a database column the old one never created, and every API call fails."
    ),
    alert=AlertSpec(
        "SonarrUnhealthy",
        {"instance": "docker02:8989", "job": "blackbox", "severity": "warning"},
        {"summary": "Sonarr health check fails"},
        generator_expr='probe_success{instance="docker02:8989",job="blackbox"} == 0',
    ),
    causal=Expect(
        "watchtower replaced sonarr with a new image",
        sources=("loki",),
        words=(("found new",), ("sonarr:latest",), ("creating", "/sonarr")),
    ),
    supporting=[Expect("the new release fails on the database", sources=("loki",), words=(("no such column",),))],
    distractors=[Expect("watchtower's routine session summary", words=(("session done",),))],
    hosts=[node_host("docker02")],
    raw=[
        Raw(
            "probe_success",
            {"instance": "docker02:8989", "job": "blackbox"},
            step(1, 0, -10, over_min=0.25),
            noise=False,
        ),
    ],
    logs=[
        *background("docker02"),
        Log(
            container("docker02", "watchtower"),
            -121,
            'time="2026-11-26T08:00:00Z" level=info msg="Session done" Failed=0 Scanned=14 Updated=0 notify=no',
            repeat=5,
            every_s=1800,
        ),
        Log(
            container("docker02", "watchtower"),
            -11.2,
            'time="2026-11-26T09:49:48Z" level=info msg="Found new lscr.io/linuxserver/sonarr:latest image '
            '(5e1c2a9f0b3d)"',
        ),
        Log(
            container("docker02", "watchtower"),
            -11.0,
            'time="2026-11-26T09:49:59Z" level=info msg="Stopping /sonarr (9a8b7c6d5e4f) with SIGTERM"',
        ),
        Log(
            container("docker02", "watchtower"),
            -10.8,
            'time="2026-11-26T09:50:11Z" level=info msg="Creating /sonarr"',
        ),
        Log(
            container("docker02", "sonarr"),
            -10,
            "[Error] SonarrErrorPipeline: Request Failed. GET /api/v3/queue: code = Error (1), message = "
            "System.Data.SQLite.SQLiteException (0x800007BF): SQL logic error no such column: "
            "Episodes.LastSearchTime",
            repeat=20,
            every_s=30,
        ),
    ],
)

SWAP_THRASH = Scenario(
    name="swap_thrash_tick_lag",
    tags=("metric-discovery", "swap", "pressure", "app-metric"),
    story=(
        "The minecraft container mc01 has run at 92 % memory for weeks. Twenty-five minutes before the alert a "
        "player's farm loads many chunks; the kernel swaps the JVM's heap out, swap use climbs from 5 % to 90 % and "
        "tasks stall on memory a third of the time. The server falls behind on ticks; memory use itself does not "
        "move."
    ),
    alert=AlertSpec(
        "MinecraftTickLag",
        {"instance": "mc01:9225", "job": "minecraft", "severity": "warning"},
        {"summary": "Minecraft tick duration above 50 ms"},
        generator_expr='minecraft_tick_duration_seconds{instance="mc01:9225"} > 0.05',
    ),
    causal=Expect("mc01 swaps heavily", sources=("prometheus",), words=(("swap",),)),
    supporting=[Expect("tasks stall waiting for memory", sources=("prometheus",), words=(("pressure",), ("psi",)))],
    hosts=[
        Host(
            "mc01:9100",
            extended=True,
            mem_used=flat(0.92),
            mem_total_gb=12,
            swap_used=ramp(0.05, 0.9, -25, -2),
            pressure_memory=ramp(0.0, 0.35, -22, -4),
            disk_read_mbps=step(1.0, 14.0, -22),
        ),
    ],
    raw=[
        Raw(
            "minecraft_tick_duration_seconds",
            {"instance": "mc01:9225", "job": "minecraft"},
            ramp(0.018, 0.09, -20, -2),
        ),
        Raw("minecraft_players_online", {"instance": "mc01:9225", "job": "minecraft"}, flat(4), noise=False),
    ],
    logs=[
        *background("mc01"),
        Log(
            container("mc01", "minecraft"),
            -8,
            "[09:52:00] [Server thread/WARN]: Can't keep up! Is the server overloaded? Running 5012ms or 100 ticks "
            "behind",
            repeat=8,
            every_s=60,
        ),
    ],
    nodes=[Node("sirius")],
    guests=[Guest(510, "mc01", "sirius", kind="lxc", ips=["10.0.31.10"], maxmem_gb=12, mem_used=0.92)],
)

INODES_EXHAUSTED = Scenario(
    name="inodes_exhausted_on_spool",
    tags=("metric-discovery", "inodes", "multiple-filesystems", "slow-burn"),
    story=(
        "Roundcube's cleanup cron on mail01 broke in an upgrade an hour ago and its temp directory on /var fills "
        "with tiny files. /var is only 41 % full in bytes, but its inodes run out three minutes before the alert: "
        "postfix can no longer create queue files and the queue backs up."
    ),
    alert=AlertSpec(
        "PostfixQueueGrowing",
        {"instance": "mail01:9154", "job": "postfix", "severity": "warning"},
        {"summary": "Postfix queue above 200 messages"},
        generator_expr='postfix_showq_message_size_bytes_count{instance="mail01:9154"} > 200',
    ),
    causal=Expect(
        "/var on mail01 has no free inodes left",
        sources=("prometheus",),
        words=(("inode",), ("files_free",), ("node_filesystem_files",)),
    ),
    hosts=[
        Host(
            "mail01:9100",
            extended=True,
            filesystems=[
                Filesystem(
                    "/var",
                    "/dev/vdb1",
                    size_gb=50,
                    used=ramp(0.40, 0.41, -60, -3),
                    inodes=3_276_800,
                    inodes_used=ramp(0.62, 1.0, -60, -3),
                ),
                Filesystem("/srv/vmail", "/dev/vdc1", size_gb=200, used=flat(0.55), inodes=13_107_200),
            ],
        ),
    ],
    raw=[
        Raw(
            "postfix_showq_message_size_bytes_count",
            {"instance": "mail01:9154", "job": "postfix", "queue": "deferred"},
            ramp(3, 260, -3, -0.5),
        ),
    ],
    logs=[
        *background("mail01"),
        Log(
            journal("mail01", "postfix@-.service"),
            -2.5,
            "postfix/pickup[30112]: warning: maildrop/5E2A11C04F: error writing 5E2A11C04F: No space left on device",
            repeat=12,
            every_s=20,
        ),
    ],
    nodes=[Node("antlia")],
    guests=[Guest(520, "mail01", "antlia", ips=["10.0.32.20"])],
)

PG_CONNECTIONS_BY_DB = Scenario(
    name="pg_connections_one_database",
    tags=("query-breakdown", "app-metric"),
    story=(
        "A Nextcloud upgrade twelve minutes before the alert drops its connection pooling setting; the nextcloud "
        "database on pgdb02 goes from 8 to 82 connections while authentik, grafana and immich stay where they were. "
        "The alert only sums the connections; which database took them is in the breakdown."
    ),
    alert=AlertSpec(
        "PostgresTooManyConnections",
        {"instance": "pgdb02:9187", "job": "postgres", "severity": "warning"},
        {"summary": "More than 90 connections on pgdb02"},
        generator_expr='sum(pg_stat_activity_count{instance="pgdb02:9187"}) > 90',
    ),
    causal=Expect("the nextcloud database holds the connections", sources=("prometheus",), words=(("nextcloud",),)),
    distractors=[Expect("authentik's steady connections", sources=("prometheus",), words=(("authentik",),))],
    hosts=[node_host("pgdb02")],
    raw=[
        Raw(
            "pg_stat_activity_count",
            {"instance": "pgdb02:9187", "job": "postgres", "datname": "nextcloud", "state": "idle"},
            step(8, 82, -12),
        ),
        Raw(
            "pg_stat_activity_count",
            {"instance": "pgdb02:9187", "job": "postgres", "datname": "authentik", "state": "idle"},
            flat(9),
        ),
        Raw(
            "pg_stat_activity_count",
            {"instance": "pgdb02:9187", "job": "postgres", "datname": "grafana", "state": "idle"},
            flat(3),
        ),
        Raw(
            "pg_stat_activity_count",
            {"instance": "pgdb02:9187", "job": "postgres", "datname": "immich", "state": "active"},
            flat(5),
        ),
        Raw("pg_settings_max_connections", {"instance": "pgdb02:9187", "job": "postgres"}, flat(100), noise=False),
    ],
    logs=[
        *background("pgdb02"),
        Log(
            container("pgdb02", "postgres"),
            -2,
            "2026-11-26 09:58:01.004 UTC [9912] FATAL:  sorry, too many clients already",
            repeat=10,
            every_s=12,
        ),
    ],
)

MOUNT_FILLING = Scenario(
    name="one_mount_of_many_fills",
    tags=("query-breakdown", "multiple-filesystems", "slow-burn", "long-for"),
    story=(
        "files01 serves four filesystems. The Time Machine share's size cap was removed by a Samba config rewrite; "
        "for ninety minutes a Mac's first full backup fills /srv/timemachine from 60 % to 93 %. The alert takes the "
        "minimum free share of all mounts and holds for 30 minutes, so it names no mount. /srv/media has sat at "
        "82 % for months."
    ),
    alert=AlertSpec(
        "HostOutOfDiskSpace",
        {"instance": "files01:9100", "job": "node", "severity": "warning"},
        {"summary": "A filesystem on files01 has less than 10% free"},
        generator_expr='min by (instance) (node_filesystem_avail_bytes{instance="files01:9100",fstype!="tmpfs"} / '
        'node_filesystem_size_bytes{instance="files01:9100",fstype!="tmpfs"}) < 0.1',
    ),
    causal=Expect("/srv/timemachine is filling up", sources=("prometheus",), words=(("timemachine",),)),
    distractors=[Expect("/srv/media has been at 82 % for months", sources=("prometheus",), words=(("/srv/media",),))],
    hosts=[
        Host(
            "files01:9100",
            extended=True,
            fs_used=flat(0.35),
            disk_write_mbps=step(2, 55, -92),
            filesystems=[
                Filesystem(
                    "/srv/timemachine", "tank/timemachine", fstype="zfs", size_gb=2000, used=ramp(0.6, 0.93, -92, 0)
                ),
                Filesystem("/srv/photos", "tank/photos", fstype="zfs", size_gb=3000, used=flat(0.7)),
                Filesystem("/srv/media", "tank/media", fstype="zfs", size_gb=8000, used=flat(0.82)),
            ],
        ),
    ],
    logs=[
        *background("files01"),
        Log(
            journal("files01", "smbd.service"),
            -93,
            "smbd[1201]: [2026/11/26 08:27:02.114212,  2] ../../source3/smbd/service.c:1122(make_connection_snum)  "
            "mbp-anna (ipv4:10.0.33.51:50122) connect to service timemachine initially as user anna (uid=1001, "
            "gid=1001) (pid 40211)",
        ),
    ],
)

SMART_PENDING = Scenario(
    name="smart_pending_sectors_slow_reads",
    tags=("metric-discovery", "smart", "non-node-exporter", "slow-burn"),
    story=(
        "A disk of the NAS store02 (sdc) is dying quietly: for seventy minutes smartctl has counted more and more "
        "sectors pending reallocation, now 56. The drive retries each bad read internally without reporting an "
        "error to the kernel, so the only symptom is that the NAS's disk is saturated; its logs are clean."
    ),
    alert=AlertSpec(
        "HostDiskIoSaturated",
        {"instance": "store02:9100", "job": "node", "severity": "warning"},
        {"summary": "Disk IO saturated on store02:9100"},
        generator_expr='rate(node_disk_io_time_seconds_total{instance="store02:9100"}[5m]) > 0.8',
    ),
    causal=Expect(
        "SMART counts a growing number of pending sectors on sdc",
        sources=("prometheus",),
        words=(("pending",), ("smartctl",)),
    ),
    hosts=[
        node_host("store02", disk_util=ramp(0.2, 0.95, -70, -5), iowait=ramp(0.01, 0.2, -70, -5)),
    ],
    raw=[
        *(
            Raw(
                "smartctl_device_attribute",
                {
                    "instance": "store02:9633",
                    "job": "smartctl",
                    "device": device,
                    "attribute_id": "197",
                    "attribute_name": "Current_Pending_Sector",
                    "attribute_flags_short": "-O--CK",
                    "attribute_value_type": "raw",
                },
                ramp(0, 56, -70, -5) if device == "sdc" else flat(0),
                noise=False,
            )
            for device in ("sda", "sdb", "sdc")
        ),
        *(
            Raw(
                "smartctl_device_attribute",
                {
                    "instance": "store02:9633",
                    "job": "smartctl",
                    "device": device,
                    "attribute_id": "5",
                    "attribute_name": "Reallocated_Sector_Ct",
                    "attribute_flags_short": "PO--CK",
                    "attribute_value_type": "raw",
                },
                flat(0),
                noise=False,
            )
            for device in ("sda", "sdb", "sdc")
        ),
        *(
            Raw(
                "smartctl_device_temperature",
                {"instance": "store02:9633", "job": "smartctl", "device": device, "temperature_type": "current"},
                flat(36 + i),
                noise=False,
            )
            for i, device in enumerate(("sda", "sdb", "sdc"))
        ),
    ],
    logs=[*background("store02")],
)

UPS_POWER_CUT = Scenario(
    name="ups_on_battery_then_shutdown",
    tags=("vocabulary-free", "ups", "reboot", "non-node-exporter"),
    story=(
        "A power cut fourteen minutes before the alert: the UPS feeding nvr01 goes on battery (NUT's upsmon says so "
        "at notice level). When the battery runs low eight minutes later, upsmon shuts nvr01 down; power is back "
        "and the host boots again two minutes before the alert, which fires on its fresh boot time."
    ),
    alert=AlertSpec(
        "HostRebooted",
        {"instance": "nvr01:9100", "job": "node", "severity": "info"},
        {"summary": "nvr01:9100 rebooted less than 10 minutes ago"},
        generator_expr='time() - node_boot_time_seconds{instance="nvr01:9100"} < 600',
    ),
    causal=Expect(
        "the UPS went on battery and upsmon shut the host down",
        words=(("on battery",), ("power-fail",), ("battery", "low"), ("ups_status",)),
    ),
    hosts=[node_host("nvr01", gone_min=-6, back_min=-2, cpu_busy=flat(0.45))],
    raw=[
        Raw(
            "network_ups_tools_ups_status",
            {"instance": "nvr01:9199", "job": "nut", "ups": "cyber1500", "flag": "OB"},
            step(0, 1, -14, over_min=0.25),
            noise=False,
            gone_min=-6,
            back_min=-2,
        ),
        Raw(
            "network_ups_tools_ups_status",
            {"instance": "nvr01:9199", "job": "nut", "ups": "cyber1500", "flag": "OL"},
            step(1, 0, -14, over_min=0.25),
            noise=False,
            gone_min=-6,
            back_min=-2,
        ),
        Raw(
            "network_ups_tools_battery_charge",
            {"instance": "nvr01:9199", "job": "nut", "ups": "cyber1500"},
            ramp(100, 20, -14, -6),
            noise=False,
            gone_min=-6,
            back_min=-2,
        ),
    ],
    logs=[
        *background("nvr01"),
        Log(journal("nvr01", "nut-monitor.service"), -14, "upsmon[812]: UPS cyber1500@localhost on battery"),
        Log(journal("nvr01", "nut-monitor.service"), -6.5, "upsmon[812]: UPS cyber1500@localhost battery is low"),
        Log(journal("nvr01", "nut-monitor.service"), -6.3, "upsmon[812]: Executing automatic power-fail shutdown"),
        Log(journal("nvr01", "nut-monitor.service"), -1.5, "upsmon[790]: UPS cyber1500@localhost on line power"),
        Log(
            container("nvr01", "frigate"),
            -1.2,
            "2026-11-26 09:58:50.112 INFO    : Starting Frigate (0.14.1-f4f3cfa)",
        ),
    ],
)

DEBUG_LOGGING_SLOW_BURN = Scenario(
    name="debug_logging_slow_burn",
    tags=("slow-burn", "long-for", "vocabulary-free", "feeding-pattern"),
    story=(
        "An hour and forty minutes before the alert someone switches zigbee2mqtt's log level to debug from its "
        "frontend to chase a flaky sensor, and forgets. Every Zigbee message is now logged; the root filesystem of "
        "z2m02 grows steadily from 55 % until the fill-prediction rule, which must hold for an hour, fires."
    ),
    alert=AlertSpec(
        "HostDiskWillFillIn24Hours",
        {"instance": "z2m02:9100", "job": "node", "mountpoint": "/", "severity": "warning"},
        {"summary": "Filesystem / on z2m02 will fill within 24 hours"},
        generator_expr='predict_linear(node_filesystem_avail_bytes{instance="z2m02:9100",mountpoint="/"}[1h], 86400) '
        "< 0",
    ),
    causal=Expect(
        "zigbee2mqtt's log level was switched to debug",
        sources=("loki",),
        words=(("log_level",), ("debug",)),
    ),
    supporting=[
        Expect("debug lines for every Zigbee message fill the disk", sources=("loki",), words=(("zigbee message",),))
    ],
    hosts=[
        Host(
            "z2m02:9100",
            extended=True,
            fs_used=ramp(0.55, 0.9, -100, 0),
            fs_size_gb=16,
            disk_write_mbps=step(0.2, 1.1, -100),
        )
    ],
    logs=[
        *background("z2m02"),
        Log(
            journal("z2m02", "zigbee2mqtt.service"),
            -100.2,
            "zigbee2mqtt[512]: [2026-11-26 08:20:02] info: \tz2m: Successfully changed options",
        ),
        Log(
            journal("z2m02", "zigbee2mqtt.service"),
            -100.1,
            "zigbee2mqtt[512]: [2026-11-26 08:20:02] info: \tz2m: Changed config value 'advanced.log_level' to 'debug'",
        ),
        Log(
            journal("z2m02", "zigbee2mqtt.service"),
            -100,
            "zigbee2mqtt[512]: [2026-11-26 08:20:03] debug: \tz2m: Received Zigbee message from 'kitchen_plug', "
            "type 'attributeReport', cluster 'haElectricalMeasurement', data '{\"rmsCurrent\":412}' from endpoint 1",
            repeat=2000,
            every_s=3.0,
        ),
    ],
    nodes=[Node("mensa")],
    guests=[Guest(530, "z2m02", "mensa", kind="lxc", ips=["10.0.34.30"])],
)

CRAWLER_SURGE = Scenario(
    name="crawler_surge_feeds_load",
    tags=("feeding-pattern", "onset", "routine-job-negative"),
    story=(
        "A crawler calling itself Bytespider has always visited git02's forgejo a few times an hour. Forty minutes "
        "before the alert it starts walking every commit of every mirror, several requests a second; the load "
        "average climbs until the high-load rule, held for fifteen minutes, fires. The hourly mirror update runs as "
        "it always does."
    ),
    alert=AlertSpec(
        "HostHighLoad",
        {"instance": "git02:9100", "job": "node", "severity": "warning"},
        {"summary": "Load average above 8 on git02"},
        generator_expr='node_load1{instance="git02:9100"} > 8',
    ),
    causal=Expect("the Bytespider crawler hammers forgejo", sources=("loki",), words=(("bytespider",),)),
    distractors=[Expect("forgejo's hourly mirror update", words=(("update_mirrors",),))],
    hosts=[
        Host(
            "git02:9100",
            extended=True,
            cpu_busy=ramp(0.15, 0.85, -40, -25),
            load1=ramp(0.8, 11.0, -40, -20),
            pressure_cpu=ramp(0.02, 0.4, -40, -20),
        ),
    ],
    logs=[
        *background("git02"),
        Log(
            container("git02", "nginx"),
            -125,
            '10.0.35.1 - - [26/Nov/2026:07:55:12 +0000] "GET /mirrors/linux/commit/3f9c2ab HTTP/1.1" 200 48211 "-" '
            '"Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 '
            '(compatible; Bytespider; spider-feedback@bytedance.com)"',
            repeat=14,
            every_s=360,
        ),
        Log(
            container("git02", "nginx"),
            -40,
            '10.0.35.1 - - [26/Nov/2026:09:20:03 +0000] "GET /mirrors/linux/commit/81d0e4c HTTP/1.1" 200 51822 "-" '
            '"Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 '
            '(compatible; Bytespider; spider-feedback@bytedance.com)"',
            repeat=1800,
            every_s=1.4,
        ),
        Log(
            container("git02", "forgejo"),
            -118,
            '2026/11/26 08:02:00 ...s/graceful/manager.go:114:doHammerTime() [I] Finished "update_mirrors" '
            "(took 41.2s)",
            repeat=3,
            every_s=3600,
        ),
    ],
)

UNRELATED_NODE_EVENT = Scenario(
    name="oom_in_guest_with_busy_node",
    tags=("neighbourhood-negative", "unrelated-node-event"),
    story=(
        "wikijs, a container on node antares, leaks memory after a plugin update and is OOM-killed three minutes "
        "before the alert. At the same time on antares someone plugs in a USB stick and starts VM 545, whose tap "
        "interface joins the bridge: node events that have nothing to do with wikijs."
    ),
    alert=AlertSpec(
        "HostOomKillDetected",
        {"instance": "wikijs:9100", "job": "node", "severity": "warning"},
        {"summary": "OOM kill detected on wikijs:9100"},
        generator_expr='increase(node_vmstat_oom_kill{instance="wikijs:9100"}[5m]) > 0',
    ),
    causal=Expect(
        "wikijs runs out of memory and its node.js process is killed",
        words=(("out of memory",), ("oom",), ("memory",)),
    ),
    distractors=[
        Expect("a USB stick plugged into the node", words=(("usb",),)),
        Expect("VM 545's tap interface joins the bridge", words=(("tap545i0",), ("forwarding state",))),
    ],
    hosts=[
        Host("wikijs:9100", mem_used=ramp(0.55, 0.98, -30, -3), mem_total_gb=2),
        node_host("antares"),
    ],
    raw=[Raw("node_vmstat_oom_kill", {"instance": "wikijs:9100", "job": "node"}, step(0, 0.005, -3), counter=True)],
    logs=[
        *background("wikijs"),
        *background("antares"),
        Log(
            kernel("wikijs"),
            -3,
            "Memory cgroup out of memory: Killed process 2211 (node) total-vm:1912340kB, anon-rss:1688210kB, "
            "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:3411kB oom_score_adj:0",
            repeat=2,
            every_s=100,
        ),
        Log(kernel("antares"), -4, "usb 1-4: new high-speed USB device number 9 using xhci_hcd"),
        Log(kernel("antares"), -3.9, "usb-storage 1-4:1.0: USB Mass Storage device detected"),
        Log(kernel("antares"), -3.5, "vmbr0: port 7(tap545i0) entered blocking state"),
        Log(kernel("antares"), -3.5, "vmbr0: port 7(tap545i0) entered forwarding state"),
        Log(
            journal("antares", "pvedaemon.service"),
            -3.6,
            "pvedaemon[1822]: <root@pam> starting task UPID:antares:00003A1C:0012F00D:6745A2B0:qmstart:545:root@pam:",
        ),
    ],
    nodes=[Node("antares", booted_min=-3 * 24 * 60.0)],
    guests=[
        Guest(540, "wikijs", "antares", kind="lxc", ips=["10.0.36.40"], maxmem_gb=2, mem_used=0.98),
        Guest(545, "win11-lab", "antares", status="running", booted_min=-3.5, maxmem_gb=8),
    ],
    pve_tasks=[PveTask("antares", "qmstart", -3.6, -3.4, vmid=545)],
)

SCENARIOS = [
    KEEPALIVED_BACKUP,
    WATCHTOWER_UPDATE,
    SWAP_THRASH,
    INODES_EXHAUSTED,
    PG_CONNECTIONS_BY_DB,
    MOUNT_FILLING,
    SMART_PENDING,
    UPS_POWER_CUT,
    DEBUG_LOGGING_SLOW_BURN,
    CRAWLER_SURGE,
    UNRELATED_NODE_EVENT,
]
