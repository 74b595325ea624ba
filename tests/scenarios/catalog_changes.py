"""Change incidents: a bad deploy, a bad config reload, an unattended upgrade that reboots a guest, and a red
herring (an unrelated change earlier in the window while the real cause is a batch job's disk load)."""

from __future__ import annotations

from tests.scenarios.common import background, container, journal
from tests.scenarios.model import (
    AlertSpec,
    Annotation,
    Expect,
    GrafanaRule,
    Guest,
    Host,
    Log,
    Node,
    PveGuestMetrics,
    PveTask,
    Raw,
    Scenario,
    flat,
    ramp,
    step,
)

SHOP_5XX_EXPR = (
    'sum(rate(nginx_http_requests_total{host="web01",status=~"5.."}[5m])) / '
    'sum(rate(nginx_http_requests_total{host="web01"}[5m])) > 0.05'
)

BAD_DEPLOY = Scenario(
    name="bad_deploy_5xx",
    story=(
        "CI deploys shop v2.14.0 six minutes before the alert; the new build dereferences a nil cart for guests and "
        "panics, nginx answers 502 for a fifth of the requests."
    ),
    alert=AlertSpec(
        "Shop5xxRate",
        {
            "__alert_rule_uid__": "shop-5xx",
            "instance": "web01:9100",
            "service": "shop",
            "severity": "critical",
            "grafana_folder": "Shop",
        },
        {"summary": "More than 5% of shop requests fail", "runbook_url": "https://wiki.lab.example/runbooks/shop"},
        source="grafana",
        dashboard_uid="shop-overview",
        panel_id=4,
    ),
    causal=Expect("shop v2.14.0 was deployed 6 minutes before the errors", words=(("deploy",), ("v2.14.0",))),
    supporting=[Expect("the new build panics", sources=("loki",), words=(("panic",), ("nil pointer",)))],
    hosts=[Host("web01:9100", cpu_busy=flat(0.22))],
    raw=[
        Raw(
            "nginx_http_requests_total",
            {"host": "web01", "status": "200", "job": "nginx"},
            step(40, 33, -5),
            counter=True,
        ),
        Raw(
            "nginx_http_requests_total",
            {"host": "web01", "status": "502", "job": "nginx"},
            step(0.05, 8, -5),
            counter=True,
        ),
    ],
    rules=[GrafanaRule("shop-5xx", "Shop5xxRate", SHOP_5XX_EXPR, labels={"service": "shop"})],
    annotations=[
        Annotation(-6, "Deploy shop v2.14.0 (commit 3f9c2ab) by ci-runner", ["deploy", "shop"]),
        Annotation(-26 * 60, "Deploy shop v2.13.2 (commit 81d0e4c) by ci-runner", ["deploy", "shop"]),
    ],
    logs=[
        *background("web01"),
        Log(container("web01", "shop"), -6.5, "Pulling image registry.lab.example/shop:v2.14.0"),
        Log(container("web01", "shop"), -6.2, 'level=info msg="shop v2.14.0 listening" addr=:8080'),
        Log(
            container("web01", "shop"),
            -5,
            "panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV: "
            "segmentation violation code=0x1 addr=0x18 pc=0x8a3f21]",
            repeat=20,
            every_s=20,
        ),
        Log(
            container("web01", "nginx"),
            -5,
            "[error] 31#31: *88412 upstream prematurely closed connection while reading response header from upstream, "
            'client: 10.0.6.77, server: shop.lab.example, request: "POST /api/cart HTTP/1.1"',
            repeat=60,
            every_s=6,
        ),
    ],
    nodes=[Node("pve-f1")],
    guests=[Guest(260, "web01", "pve-f1", ips=["10.0.6.60"])],
)

PROXY_5XX_EXPR = (
    'sum(rate(nginx_http_requests_total{instance="proxy01:9113",status=~"^5.."}[1m])) / '
    'sum(rate(nginx_http_requests_total{instance="proxy01:9113"}[1m])) * 100 > 5'
)

CONFIG_CHANGE = Scenario(
    name="config_change_5xx",
    story=(
        "An Ansible run rewrites the reverse proxy's upstream block with a wrong port and reloads nginx four minutes "
        "before the alert; every request to the cloud vhost is refused upstream."
    ),
    alert=AlertSpec(
        "NginxHighHttp5xxErrorRate",
        {"instance": "proxy01:9113", "job": "nginx", "severity": "critical"},
        {"summary": "Too many HTTP requests with status 5xx on proxy01"},
        generator_expr=PROXY_5XX_EXPR,
    ),
    causal=Expect("nginx was reloaded with a new configuration", words=(("reload",), ("config",))),
    supporting=[Expect("upstream connections are refused", sources=("loki",), words=(("refused",),))],
    raw=[
        Raw(
            "nginx_http_requests_total",
            {"instance": "proxy01:9113", "job": "nginx", "status": "200"},
            step(25, 17, -3),
            counter=True,
        ),
        Raw(
            "nginx_http_requests_total",
            {"instance": "proxy01:9113", "job": "nginx", "status": "502"},
            step(0.05, 8, -3),
            counter=True,
        ),
    ],
    hosts=[Host("proxy01:9100")],
    logs=[
        *background("proxy01"),
        Log(
            journal("proxy01", "nginx.service"),
            -4.2,
            "systemd[1]: Reloading nginx.service - A high performance web server and a reverse proxy server...",
        ),
        Log(
            journal("proxy01", "nginx.service"),
            -4.1,
            "nginx[3012]: 2026/11/26 09:56:02 [notice] 3012#3012: signal process started",
        ),
        Log(
            journal("proxy01", "nginx.service"),
            -4.0,
            "systemd[1]: Reloaded nginx.service - A high performance web server and a reverse proxy server.",
        ),
        Log(
            journal("proxy01", "nginx.service"),
            -3.5,
            "nginx[3014]: [error] 3014#3014: *1127 connect() failed (111: Connection refused) while connecting to "
            'upstream, client: 10.0.7.77, server: cloud.lab.example, request: "GET /status.php HTTP/1.1", '
            'upstream: "http://10.0.3.21:8081/status.php"',
            repeat=90,
            every_s=5,
        ),
    ],
    nodes=[Node("pve-g1")],
    guests=[Guest(270, "proxy01", "pve-g1", kind="lxc", ips=["10.0.7.70"])],
)

UPGRADE_REBOOT = Scenario(
    name="upgrade_reboot",
    story=(
        "unattended-upgrades installs a new kernel in the homeassistant VM and, with Automatic-Reboot on, reboots it; "
        "Home Assistant is unreachable for three minutes."
    ),
    alert=AlertSpec(
        "HomeAssistantDown",
        {"instance": "homeassistant:8123", "job": "homeassistant", "severity": "critical"},
        {"summary": "Home Assistant is down"},
        generator_expr='up{job="homeassistant"} == 0',
    ),
    causal=Expect("unattended-upgrades rebooted the VM", words=(("upgrade",), ("reboot",), ("uptime",))),
    raw=[
        Raw(
            "up",
            {"instance": "homeassistant:8123", "job": "homeassistant"},
            step(1, 0, -3.5, over_min=0.25),
            noise=False,
        )
    ],
    pve_metrics=[PveGuestMetrics("qemu/280", cpu=step(0.05, 0.4, -1))],
    logs=[
        *background("homeassistant"),
        Log(
            journal("homeassistant", "unattended-upgrades.service"),
            -9,
            "unattended-upgrade[1822]: Packages that will be upgraded: linux-image-6.1.0-28-amd64 linux-image-amd64 "
            "openssl",
        ),
        Log(
            journal("homeassistant", "unattended-upgrades.service"),
            -8,
            "unattended-upgrade[1822]: All upgrades installed",
        ),
        Log(
            journal("homeassistant", "unattended-upgrades.service"),
            -4,
            "unattended-upgrade[1822]: Found /var/run/reboot-required, rebooting",
        ),
        Log(
            journal("homeassistant", "systemd-logind.service"), -3.8, "systemd-logind[512]: The system will reboot now!"
        ),
        Log(
            journal("homeassistant", "kernel"),
            -1.5,
            "kernel: Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0)",
        ),
        Log(
            journal("homeassistant", "init.scope"),
            -1.0,
            "systemd[1]: Startup finished in 3.1s (kernel) + 9.8s (userspace) = 12.9s.",
        ),
    ],
    nodes=[Node("pve-h1")],
    guests=[Guest(280, "homeassistant", "pve-h1", ips=["10.0.8.20"], booted_min=-1.5)],
)

RED_HERRING = Scenario(
    name="red_herring",
    story=(
        "A nightly export job on db02 starts seven minutes before the alert and saturates the disk, so the replica "
        "falls behind. Fifty minutes earlier an unrelated frontend deploy and a config change of another guest were "
        "made — they are in the window but explain nothing."
    ),
    alert=AlertSpec(
        "PostgresqlReplicationLag",
        {"instance": "db02:9187", "job": "postgres", "severity": "warning", "cluster": "main"},
        {"summary": "Replica db02 is more than 30s behind"},
        generator_expr='pg_replication_lag_seconds{instance="db02:9187"} > 30',
    ),
    causal=Expect("db02's disk is saturated", sources=("prometheus",), words=(("disk",), ("iowait",))),
    supporting=[Expect("the nightly export started", words=(("export",),))],
    distractors=[
        Expect("the unrelated frontend deploy", words=(("frontend",),)),
        Expect("the unrelated config change of guest 291", sources=("proxmox",), words=(("291",), ("qmconfig",))),
    ],
    hosts=[
        Host(
            "db02:9100",
            disk_util=step(0.2, 0.99, -7),
            disk_write_mbps=step(5, 180, -7),
            iowait=step(0.02, 0.3, -7),
            cpu_busy=flat(0.25),
        )
    ],
    raw=[Raw("pg_replication_lag_seconds", {"instance": "db02:9187", "job": "postgres"}, ramp(0.5, 95, -6, 0))],
    annotations=[Annotation(-52, "Deploy frontend v3.1.0", ["deploy", "frontend"])],
    pve_tasks=[PveTask("pve-i1", "qmconfig", -50, -50, vmid=291, user="admin@pve")],
    logs=[
        *background("db02"),
        Log(
            journal("db02", "cron.service"),
            -7.2,
            "CRON[8812]: (postgres) CMD (/usr/local/bin/nightly-export.sh analytics)",
        ),
        Log(journal("db02", "cron.service"), -7.1, "nightly-export.sh[8813]: starting export of database analytics"),
        Log(
            journal("db02", "postgresql@15-main.service"),
            -5,
            "postgres[5512]: LOG:  checkpoints are occurring too frequently (9 seconds apart)",
            repeat=5,
            every_s=60,
        ),
    ],
    nodes=[Node("pve-i1")],
    guests=[Guest(290, "db02", "pve-i1", ips=["10.0.9.20"]), Guest(291, "frontend", "pve-i1", kind="lxc")],
)

SCENARIOS = [BAD_DEPLOY, CONFIG_CHANGE, UPGRADE_REBOOT, RED_HERRING]
