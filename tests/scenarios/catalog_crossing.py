"""Incidents that cross capabilities: an upstream upgrade seen only through the target's errors, a clock that a
suspended VM lost, one service among many behind a proxy, a node that rebooted and left a guest stopped, and a
routine job on the node that must not be blamed for what the guest did to itself.
"""

from __future__ import annotations

from tests.scenarios.common import background, container, journal, kernel, node_host
from tests.scenarios.model import (
    AlertSpec,
    Expect,
    Guest,
    Host,
    Log,
    Node,
    PveTask,
    Raw,
    Scenario,
    flat,
    step,
)

MARIADB_UPGRADE_BEHIND_NEXTCLOUD = Scenario(
    name="mariadb_upgrade_behind_nextcloud",
    tags=("neighbourhood:topology", "tool-applied-update", "change-elsewhere-negative"),
    story=(
        "Nextcloud on cloud01 keeps its data in MariaDB on mdb01, a dependency declared in the topology file. Twelve "
        "minutes before the alert unattended-upgrades on mdb01 upgrades mariadb-server; the server restarts and "
        "spends ten minutes in InnoDB crash recovery, refusing connections. Nextcloud answers 503 and logs "
        "'Connection refused' without saying to what. Earlier that night cloud01 itself upgraded tzdata, which "
        "changed nothing."
    ),
    alert=AlertSpec(
        "NextcloudServerErrors",
        {"instance": "cloud01:9205", "job": "nextcloud", "severity": "critical"},
        {"summary": "Nextcloud answers with 5xx"},
        generator_expr='sum(rate(nextcloud_http_responses_total{instance="cloud01:9205",code=~"5.."}[5m])) > 1',
    ),
    causal=Expect(
        "unattended-upgrades upgraded mariadb-server on mdb01",
        words=(("mariadb-server",), ("mariadb", "upgrade")),
    ),
    supporting=[Expect("MariaDB runs InnoDB crash recovery", sources=("loki",), words=(("crash recovery",),))],
    distractors=[Expect("cloud01 upgraded tzdata", words=(("tzdata",),))],
    topology={"hosts": {"cloud01": {"depends_on": ["mdb01"]}}},
    hosts=[
        Host("cloud01:9100", cpu_busy=flat(0.15)),
        node_host("mdb01", cpu_busy=step(0.06, 0.55, -11), disk_read_mbps=step(2.0, 60.0, -11)),
    ],
    raw=[
        Raw(
            "nextcloud_http_responses_total",
            {"instance": "cloud01:9205", "job": "nextcloud", "code": "503"},
            step(0.0, 3.5, -11),
            counter=True,
        ),
        Raw(
            "nextcloud_http_responses_total",
            {"instance": "cloud01:9205", "job": "nextcloud", "code": "200"},
            step(6.0, 2.5, -11),
            counter=True,
        ),
    ],
    logs=[
        *background("cloud01"),
        *background("mdb01"),
        Log(
            journal("cloud01", "unattended-upgrades.service"),
            -38,
            "unattended-upgrade[901]: Packages that will be upgraded: tzdata",
        ),
        Log(
            journal("cloud01", "unattended-upgrades.service"), -37.5, "unattended-upgrade[901]: All upgrades installed"
        ),
        Log(
            journal("mdb01", "unattended-upgrades.service"),
            -12.5,
            "unattended-upgrade[2210]: Packages that will be upgraded: mariadb-client mariadb-common mariadb-server",
        ),
        Log(journal("mdb01", "unattended-upgrades.service"), -11.2, "unattended-upgrade[2210]: All upgrades installed"),
        Log(
            journal("mdb01", "mariadb.service"),
            -11,
            "mariadbd[3318]: 2026-11-30  3:12:04 0 [Note] InnoDB: Starting crash recovery from checkpoint LSN=48213377",
        ),
        Log(
            journal("mdb01", "mariadb.service"),
            -10.8,
            "mariadbd[3318]: 2026-11-30  3:12:05 0 [Note] InnoDB: To recover: 1843 pages",
        ),
        Log(
            container("cloud01", "nextcloud"),
            -10.9,
            '{"reqId":"Zx1","level":3,"app":"core","message":"An exception occurred in the driver: SQLSTATE[HY000] '
            '[2002] Connection refused","url":"/ocs/v2.php/apps/notifications/api/v2/notifications"}',
            repeat=30,
            every_s=20,
        ),
    ],
)

CLOCK_LOST_IN_SUSPEND = Scenario(
    name="clock_lost_in_suspend_backup",
    tags=("vocabulary-free", "non-node-exporter", "proxmox:task", "state-change"),
    story=(
        "The VM auth01 (Authelia) is backed up in suspend mode: vzdump freezes it for six minutes. When it resumes, "
        "nine minutes before the alert, its clock is five minutes behind; chronyd only slews, and logs that the "
        "system clock is wrong by 312 seconds. Every one-time password is now checked against the wrong time and "
        "Authelia rejects each second-factor login."
    ),
    alert=AlertSpec(
        "AutheliaSecondFactorFailures",
        {"instance": "auth01:9959", "job": "authelia", "severity": "warning"},
        {"summary": "Many failed second-factor logins on Authelia"},
        generator_expr='sum(rate(authelia_authn_total{instance="auth01:9959",success="false"}[5m])) > 0.2',
    ),
    causal=Expect(
        "auth01's clock is five minutes off",
        words=(("clock",), ("chronyd",), ("timex",), ("offset",)),
    ),
    supporting=[Expect("a suspend-mode backup froze the VM", sources=("proxmox",), words=(("vzdump",),))],
    hosts=[Host("auth01:9100", extended=True)],
    raw=[
        Raw(
            "authelia_authn_total",
            {"instance": "auth01:9959", "job": "authelia", "success": "false", "type": "totp"},
            step(0.01, 0.6, -8),
            counter=True,
        ),
        Raw(
            "authelia_authn_total",
            {"instance": "auth01:9959", "job": "authelia", "success": "true", "type": "totp"},
            step(0.4, 0.02, -8),
            counter=True,
        ),
        Raw("node_timex_offset_seconds", {"instance": "auth01:9100", "job": "node"}, step(0.0004, -312.0, -9)),
    ],
    logs=[
        *background("auth01"),
        Log(
            journal("auth01", "chrony.service"),
            -9,
            "chronyd[612]: System clock wrong by -312.418231 seconds, adjustment started",
        ),
        Log(
            container("auth01", "authelia"),
            -8,
            'level=error msg="Unsuccessful 2FA attempt: one-time password is invalid" method=POST '
            "path=/api/secondfactor/totp remote_ip=10.0.40.77",
            repeat=24,
            every_s=20,
        ),
    ],
    nodes=[Node("sadr")],
    guests=[Guest(530, "auth01", "sadr", ips=["10.0.30.30"], booted_min=-40 * 24 * 60)],
    pve_tasks=[
        PveTask(
            "sadr",
            "vzdump",
            -15,
            -9,
            vmid=530,
            log=[
                "INFO: starting new backup job: vzdump 530 --mode suspend --storage pbs-main",
                "INFO: Starting Backup of VM 530 (qemu)",
                "INFO: suspending guest",
                "INFO: resuming VM again",
                "INFO: Finished Backup of VM 530 (00:06:02)",
            ],
        )
    ],
)

ONE_SERVICE_BEHIND_THE_PROXY = Scenario(
    name="one_service_behind_the_proxy",
    tags=("query-breakdown", "app-metric"),
    story=(
        "Traefik on edge01 fronts a dozen services. Ten minutes before the alert a botnet starts guessing "
        "passwords on vaultwarden: its request rate goes from 2 to 120 per second while every other service stays "
        "as it was, and vaultwarden logs each failed login with the attacker's address."
    ),
    alert=AlertSpec(
        "TraefikHighRequestRate",
        {"instance": "edge01:8082", "job": "traefik", "severity": "warning"},
        {"summary": "Traefik on edge01 serves more than 50 requests per second"},
        generator_expr='sum(rate(traefik_service_requests_total{instance="edge01:8082"}[5m])) > 50',
    ),
    causal=Expect("the extra requests all go to vaultwarden", words=(("vaultwarden",),)),
    hosts=[Host("edge01:9100", cpu_busy=step(0.1, 0.3, -10))],
    raw=[
        Raw(
            "traefik_service_requests_total",
            {"instance": "edge01:8082", "job": "traefik", "service": name, "code": "200"},
            shape,
            counter=True,
        )
        for name, shape in (
            ("vaultwarden@docker", step(2.0, 120.0, -10)),
            ("jellyfin@docker", flat(8.0)),
            ("nextcloud@docker", flat(15.0)),
            ("homeassistant@docker", flat(5.0)),
            ("immich@docker", flat(6.0)),
        )
    ],
    logs=[
        *background("edge01"),
        Log(
            container("edge01", "vaultwarden"),
            -10,
            "[2026-11-30 03:12:04.118][vaultwarden::api::identity][ERROR] Username or password is incorrect. Try "
            "again. IP: 185.220.101.4. Username: admin@example.com.",
            repeat=40,
            every_s=15,
        ),
    ],
)

NODE_REBOOT_LEFT_GUEST_STOPPED = Scenario(
    name="node_reboot_left_guest_stopped",
    tags=("neighbourhood:node", "reboot", "node-kernel-log"),
    story=(
        "The kernel of node alnair locks up seven minutes before the alert and the hardware watchdog resets the "
        "machine. Alnair is back a minute later and starts the guests marked to start on boot; the bookstack VM is not "
        "marked, so it stays stopped and its exporter is gone."
    ),
    alert=AlertSpec(
        "InstanceDown",
        {"instance": "bookstack:9100", "job": "node", "severity": "critical"},
        {"summary": "bookstack:9100 is down"},
        generator_expr='up{instance="bookstack:9100"} == 0',
    ),
    causal=Expect(
        "node alnair was reset by its watchdog after a kernel lock-up",
        words=(("alnair", "reboot"), ("alnair", "boot"), ("soft lockup",), ("watchdog",), ("linux version",)),
    ),
    supporting=[Expect("the bookstack VM is stopped", sources=("proxmox",), words=(("stopped",),))],
    hosts=[
        Host("bookstack:9100", gone_min=-7.4),
        node_host("alnair", gone_min=-7.3, back_min=-6.0, booted_min=-6.0),
    ],
    logs=[
        *background("alnair"),
        Log(
            kernel("alnair"),
            -7.6,
            "watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:1234]",
            repeat=2,
            every_s=10,
        ),
        Log(
            kernel("alnair"),
            -6.0,
            "Linux version 6.8.12-4-pve (build@proxmox) (gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for "
            "Debian) 2.40) #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-4 (2024-11-06T15:04Z) ()",
        ),
        Log(
            journal("alnair", "pve-guests.service"),
            -5.2,
            "pve-guests[1410]: <root@pam> starting task UPID:alnair:00000582:00001F4A:6745A0C1:startall::root@pam:",
        ),
    ],
    nodes=[Node("alnair", booted_min=-6.0)],
    guests=[
        Guest(540, "bookstack", "alnair", status="stopped", ips=["10.0.32.40"]),
        Guest(541, "forgejo2", "alnair", kind="lxc", ips=["10.0.32.41"], booted_min=-5.0),
    ],
    pve_tasks=[PveTask("alnair", "startall", -5.2, -4.6)],
)

LIBRARY_SCAN_DURING_SCRUB = Scenario(
    name="library_scan_during_node_scrub",
    tags=("vocabulary-free", "routine-job-negative", "neighbourhood-negative"),
    story=(
        "On the first Sunday of the month the ZFS pool of node mirfak scrubs, as it always does, from an hour and a "
        "half before the alert. Ten minutes before the alert someone adds a new folder to Jellyfin, which starts a "
        "full library scan: its ffprobe workers take the VM's CPU from 15 % to 95 %. The scrub only slows disk "
        "reads a little and is not what the CPU alert is about."
    ),
    alert=AlertSpec(
        "HostHighCpuLoad",
        {"instance": "media01:9100", "job": "node", "severity": "warning"},
        {"summary": "CPU above 90 % on media01:9100"},
        generator_expr=(
            '1 - avg by (instance) (rate(node_cpu_seconds_total{instance="media01:9100",mode="idle"}[5m])) > 0.9'
        ),
    ),
    causal=Expect("Jellyfin started a full library scan", sources=("loki",), words=(("scan",),)),
    distractors=[Expect("the node's monthly scrub", words=(("scrub",),))],
    hosts=[
        Host("media01:9100", cpu_busy=step(0.15, 0.95, -10)),
        node_host("mirfak", disk_read_mbps=step(30.0, 250.0, -90)),
    ],
    logs=[
        *background("media01"),
        *background("mirfak"),
        Log(journal("mirfak", "zfs-zed.service"), -90, "zed[1880]: eid=41 class=scrub_start pool='rpool'"),
        Log(
            container("media01", "jellyfin"),
            -10,
            "[03:12:04] [INF] [12] Emby.Server.Implementations.ScheduledTasks.TaskManager: Scan Media Library Started",
        ),
        Log(
            container("media01", "jellyfin"),
            -9.8,
            '[03:12:16] [INF] [31] MediaBrowser.Providers.MediaInfo.FFProbeVideoInfo: ffprobe "/media/new/"',
            repeat=30,
            every_s=18,
        ),
    ],
    nodes=[Node("mirfak")],
    guests=[Guest(550, "media01", "mirfak", ips=["10.0.33.50"], maxmem_gb=8)],
)

MQTT_BROKER_CONFIG_TYPO = Scenario(
    name="mqtt_broker_reload_with_a_typo",
    tags=("neighbourhood:topology", "config-change", "vocabulary-free"),
    story=(
        "Home Assistant on hass01 talks to the Mosquitto broker on mqtt01, declared as its dependency. Eight "
        "minutes before the alert someone adds a listener to mosquitto.conf with a typo and restarts the broker; "
        "mosquitto logs the bad option and exits, and systemd gives up restarting it. Home Assistant logs that it "
        "was disconnected from mqtt01 and every Zigbee sensor becomes unavailable."
    ),
    alert=AlertSpec(
        "HomeAssistantSensorsUnavailable",
        {"instance": "hass01:8123", "job": "homeassistant", "severity": "warning"},
        {"summary": "More than 20 Home Assistant entities are unavailable"},
        generator_expr='count(homeassistant_entity_available{instance="hass01:8123"} == 0) > 20',
    ),
    causal=Expect(
        "mosquitto on mqtt01 refused its edited configuration",
        sources=("loki",),
        words=(("mosquitto", "error"), ("mosquitto", "config"), ("listener",)),
    ),
    topology={"hosts": {"hass01": {"depends_on": ["mqtt01"]}}},
    hosts=[Host("hass01:9100"), node_host("mqtt01", net_mbps=step(0.8, 0.05, -8))],
    raw=[
        Raw(
            "homeassistant_entity_available",
            {"instance": "hass01:8123", "job": "homeassistant", "entity": f"sensor.zigbee_{i}"},
            step(1.0, 0.0, -7.5),
            noise=False,
        )
        for i in range(24)
    ],
    logs=[
        *background("hass01"),
        *background("mqtt01"),
        Log(
            journal("mqtt01", "mosquitto.service"),
            -8.1,
            'mosquitto[771]: 1764471124: Error: Unknown configuration variable "listner".',
        ),
        Log(
            journal("mqtt01", "mosquitto.service"),
            -8.1,
            "mosquitto[771]: 1764471124: Error found at /etc/mosquitto/conf.d/lan.conf:3.",
        ),
        Log(
            journal("mqtt01", "systemd"),
            -7.9,
            "systemd[1]: mosquitto.service: Start request repeated too quickly.",
        ),
        Log(
            container("hass01", "homeassistant"),
            -8,
            "2026-11-30 03:12:04.118 ERROR (MainThread) [homeassistant.components.mqtt.client] Disconnected from "
            "MQTT server mqtt01:1883 (7)",
        ),
        Log(
            container("hass01", "homeassistant"),
            -7.8,
            "2026-11-30 03:12:16.002 WARNING (MainThread) [homeassistant.components.mqtt.client] Error re-connecting "
            "to MQTT server due to exception: [Errno 111] Connection refused",
            repeat=40,
            every_s=10,
        ),
    ],
)

NIC_FLAPPING_ON_NODE = Scenario(
    name="nic_flapping_on_node",
    tags=("neighbourhood:node", "node-kernel-log", "vocabulary-free"),
    story=(
        "The uplink of node hadar sits on a switch port with a failing cable. From twelve minutes before the alert "
        "the node's kernel logs the NIC going down and up again every couple of minutes; the bridge ports of its "
        "guests go with it. The blackbox probe of the Paperless VM on hadar loses a third of its pings."
    ),
    alert=AlertSpec(
        "BlackboxProbeFailing",
        {"instance": "paperless01", "job": "blackbox-icmp", "severity": "warning"},
        {"summary": "ICMP probe of paperless01 failing"},
        generator_expr='avg_over_time(probe_success{instance="paperless01",job="blackbox-icmp"}[5m]) < 0.8',
    ),
    causal=Expect(
        "hadar's NIC keeps losing its link",
        sources=("loki",),
        words=(("link is down",), ("link down",), ("nic link",)),
    ),
    hosts=[Host("paperless01:9100"), node_host("hadar")],
    raw=[
        Raw(
            "probe_success",
            {"instance": "paperless01", "job": "blackbox-icmp"},
            lambda m: 1.0 if m < -12 else (0.0 if int(m * 3) % 3 == 0 else 1.0),
            noise=False,
        )
    ],
    logs=[
        *background("paperless01"),
        *background("hadar"),
        Log(kernel("hadar"), -12, "igb 0000:03:00.0 enp3s0: igb: enp3s0 NIC Link is Down", repeat=6, every_s=120),
        Log(
            kernel("hadar"),
            -11.9,
            "igb 0000:03:00.0 enp3s0: igb: enp3s0 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: RX/TX",
            repeat=6,
            every_s=120,
        ),
        Log(
            kernel("hadar"),
            -11.95,
            "vmbr0: port 1(enp3s0) entered disabled state",
            repeat=6,
            every_s=120,
        ),
    ],
    nodes=[Node("hadar")],
    guests=[Guest(560, "paperless01", "hadar", ips=["10.0.34.60"])],
)

LONG_TRANSACTION_BLOCKS_SHOP = Scenario(
    name="long_transaction_blocks_the_shop",
    tags=("metric-discovery", "app-metric", "slow-burn"),
    story=(
        "On shop01 a reporting script opens a transaction on the PostgreSQL database 'shop' and forgets to close "
        "it, forty minutes before the alert. Its locks pile up slowly behind one table; the oldest transaction "
        "grows to forty minutes, the waiting queries grow with it, and the web shop's 99th-percentile latency "
        "finally crosses two seconds."
    ),
    alert=AlertSpec(
        "ShopLatencyHigh",
        {"instance": "shop01:9113", "job": "shop", "severity": "warning"},
        {"summary": "p99 latency of the shop above 2 s"},
        generator_expr='shop_request_duration_p99_seconds{instance="shop01:9113"} > 2',
    ),
    causal=Expect(
        "a transaction has stayed open for forty minutes",
        words=(("max_tx_duration",), ("transaction",)),
    ),
    supporting=[Expect("queries wait on locks", words=(("lock",),))],
    hosts=[Host("shop01:9100")],
    raw=[
        Raw(
            "shop_request_duration_p99_seconds",
            {"instance": "shop01:9113", "job": "shop"},
            lambda m: 0.3 if m < -40 else 0.3 + 1.9 * min(1.0, (m + 40) / 40),
        ),
        Raw(
            "pg_stat_activity_max_tx_duration",
            {"instance": "shop01:9187", "job": "postgres", "datname": "shop", "state": "idle in transaction"},
            lambda m: 2.0 if m < -40 else 2.0 + (m + 40) * 60,
        ),
        Raw(
            "pg_locks_count",
            {"instance": "shop01:9187", "job": "postgres", "datname": "shop", "mode": "rowexclusivelock"},
            lambda m: 3.0 if m < -40 else 3.0 + (m + 40) * 1.5,
        ),
    ],
    logs=[*background("shop01")],
)

SCENARIOS = [
    MARIADB_UPGRADE_BEHIND_NEXTCLOUD,
    CLOCK_LOST_IN_SUSPEND,
    ONE_SERVICE_BEHIND_THE_PROXY,
    NODE_REBOOT_LEFT_GUEST_STOPPED,
    LIBRARY_SCAN_DURING_SCRUB,
    MQTT_BROKER_CONFIG_TYPO,
    NIC_FLAPPING_ON_NODE,
    LONG_TRANSACTION_BLOCKS_SHOP,
]
