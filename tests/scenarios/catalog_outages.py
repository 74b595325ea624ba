"""Outages: a node down taking its guests with it, a DNS server failing under every service, a certificate that
was never renewed, a Grafana rule whose data source is down, and an alert triaged while our own Loki is down."""

from __future__ import annotations

from tests.scenarios.common import background, container, journal
from tests.scenarios.model import (
    AlertSpec,
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
    step,
)

DOWN_AT_MIN = -2.0
STORM_GUESTS = (
    (300, "gitea", "qemu"),
    (301, "paperless", "lxc"),
    (302, "wiki", "lxc"),
    (303, "vikunja", "lxc"),
    (304, "freshrss", "lxc"),
    (305, "mealie", "lxc"),
    (306, "uptime-kuma", "lxc"),
    (307, "syncthing", "lxc"),
    (308, "octoprint", "lxc"),
    (309, "calibre-web", "lxc"),
    (310, "audiobookshelf", "lxc"),
    (311, "navidrome", "lxc"),
    (312, "nodered", "lxc"),
    (313, "ntfy", "lxc"),
    (314, "linkding", "lxc"),
    (315, "windows-vm", "qemu"),
)

NODE_DOWN = Scenario(
    name="node_down_storm",
    story=(
        "Node pve-j3 loses power two minutes before the alert; corosync on the other nodes sees it leave, and its 16 "
        "guests stop answering at once — a storm of TargetDown alerts of which this is the first."
    ),
    alert=AlertSpec(
        "TargetDown",
        {"instance": "gitea:9100", "job": "node", "severity": "critical"},
        {"summary": "gitea:9100 is down"},
        generator_expr='up{job="node"} == 0',
    ),
    causal=Expect(
        "the node hosting the guest, pve-j3, is offline",
        words=(("pve-j3", "offline"), ("pve-j3", "down"), ("pve-j3", "unreachable"), ("node", "offline")),
    ),
    hosts=[
        Host("pve-j3:9100", gone_min=DOWN_AT_MIN, cpu_busy=flat(0.4)),
        *(Host(f"{name}:9100", gone_min=DOWN_AT_MIN) for _, name, _ in STORM_GUESTS),
    ],
    pve_metrics=[
        PveGuestMetrics("node/pve-j3", gone_min=DOWN_AT_MIN, mem_size_gb=128),
        *(PveGuestMetrics(f"{kind}/{vmid}", gone_min=DOWN_AT_MIN) for vmid, _, kind in STORM_GUESTS),
    ],
    logs=[
        *background("gitea"),
        *background("pve-j1"),
        Log(journal("pve-j1", "corosync.service"), -2.1, "corosync[1432]: [KNET  ] link: host: 3 link: 0 is down"),
        Log(
            journal("pve-j1", "corosync.service"),
            -2.0,
            "corosync[1432]: [KNET  ] host: host: 3 (passive) best link: 0 (pri: 1) has no active links",
        ),
        Log(journal("pve-j1", "corosync.service"), -1.8, "corosync[1432]: [QUORUM] Members[2]: 1 2"),
        Log(journal("pve-j1", "pve-cluster.service"), -1.7, "pmxcfs[1290]: [status] notice: members: 1/1290, 2/1301"),
    ],
    nodes=[Node("pve-j1"), Node("pve-j2"), Node("pve-j3", online=False)],
    guests=[Guest(vmid, name, "pve-j3", kind=kind, status="unknown") for vmid, name, kind in STORM_GUESTS]
    + [Guest(320, "unifi", "pve-j1", kind="lxc")],
)

DNS_CASCADE = Scenario(
    name="dns_cascade",
    story=(
        "unbound on dns01 crashes five minutes before the alert; nothing resolves any more and paperless's workers "
        "fail every task with 'Temporary failure in name resolution'."
    ),
    alert=AlertSpec(
        "PaperlessTaskFailures",
        {"instance": "paperless-ng:8000", "job": "paperless", "service": "paperless-ng", "severity": "warning"},
        {"summary": "paperless tasks are failing"},
        generator_expr='increase(celery_tasks_total{state="FAILURE",job="paperless"}[10m]) > 5',
    ),
    causal=Expect(
        "names do not resolve: the DNS server is down",
        words=(("name resolution",), ("dns",), ("resolve",), ("unbound",)),
    ),
    raw=[
        Raw("probe_success", {"instance": "dns01:53", "job": "dns"}, step(1, 0, -5, over_min=0.25), noise=False),
        Raw(
            "celery_tasks_total",
            {"instance": "paperless-ng:8000", "job": "paperless", "state": "FAILURE"},
            step(0.001, 0.3, -4),
            counter=True,
        ),
    ],
    hosts=[Host("paperless-ng:9100"), Host("dns01:9100", gone_min=None)],
    logs=[
        *background("paperless-ng"),
        Log(
            container("paperless-ng", "paperless-ng"),
            -4,
            "[2026-11-26 09:41:12,004] [ERROR] [celery.app.trace] Task documents.tasks.consume_file"
            "[4f1d2c9e-8a7b-4c1d-9e2f-3a4b5c6d7e8f] raised unexpected: OperationalError('could not translate host "
            'name "db.lab.example" to address: Temporary failure in name resolution\')',
            repeat=12,
            every_s=20,
        ),
        Log(
            container("paperless-ng", "paperless-ng"),
            -3.5,
            "[2026-11-26 09:41:40,220] [ERROR] [paperless_mail] Error while processing mail account Inbox: "
            "[Errno -3] Temporary failure in name resolution",
            repeat=4,
            every_s=60,
        ),
        Log(
            journal("dns01", "unbound.service"),
            -5.1,
            "unbound[412]: [412:0] fatal error: could not open autotrust file for writing, /var/lib/unbound/root.key",
        ),
        Log(journal("dns01", "unbound.service"), -5.0, "systemd[1]: unbound.service: Failed with result 'exit-code'."),
    ],
    nodes=[Node("pve-k1")],
    guests=[
        Guest(330, "paperless-ng", "pve-k1", kind="lxc", ips=["10.0.11.30"]),
        Guest(331, "dns01", "pve-k1", kind="lxc", ips=["10.0.11.53"]),
    ],
)

CERT_EXPIRY = Scenario(
    name="cert_expiry",
    story=(
        "vault.lab.example's Let's Encrypt certificate expires in five days: certbot's renewal, 42 minutes before the "
        "alert as twice every day, fails its HTTP-01 challenge because the reverse proxy no longer routes "
        "/.well-known/acme-challenge."
    ),
    alert=AlertSpec(
        "SslCertificateExpiringSoon",
        {"instance": "vault:8200", "job": "blackbox-tls", "severity": "warning"},
        {"summary": "TLS certificate of vault:8200 expires in 5 days"},
        generator_expr='probe_ssl_earliest_cert_expiry{instance="vault:8200"} - time() < 86400 * 7',
    ),
    causal=Expect(
        "certbot fails to renew the certificate",
        words=(("renew",), ("challenge",), ("certbot",)),
    ),
    raw=[
        Raw(
            "probe_ssl_earliest_cert_expiry",
            {"instance": "vault:8200", "job": "blackbox-tls"},
            lambda m: 5 * 86400 - m * 60,
            relative_to_t0=True,
        ),
        Raw("probe_success", {"instance": "vault:8200", "job": "blackbox-tls"}, flat(1), noise=False),
    ],
    logs=[
        *background("vault"),
        Log(
            journal("vault", "certbot.service"),
            -42.2,
            "certbot[2231]: Renewing an existing certificate for vault.lab.example",
        ),
        Log(
            journal("vault", "certbot.service"),
            -42.0,
            "certbot[2231]: Certbot failed to authenticate some domains (authenticator: webroot). The Certificate "
            "Authority reported these problems: Domain: vault.lab.example Type: unauthorized Detail: Invalid response "
            "from http://vault.lab.example/.well-known/acme-challenge/Xy3kP0aZ: 404",
        ),
        Log(
            journal("vault", "certbot.service"),
            -41.9,
            "certbot[2231]: Failed to renew certificate vault.lab.example with error: Some challenges have failed.",
        ),
        Log(journal("vault", "certbot.service"), -41.8, "systemd[1]: certbot.service: Failed with result 'exit-code'."),
    ],
    nodes=[Node("pve-l1")],
    guests=[Guest(340, "vault", "pve-l1", kind="lxc", ips=["10.0.12.40"])],
)

DATASOURCE_ERROR = Scenario(
    name="datasource_error",
    story=(
        "An admin stopped the influxdb container 20 minutes before the alert to resize its disk and forgot to start it; "
        "Grafana cannot evaluate the UPS runtime rule and sends DatasourceError."
    ),
    alert=AlertSpec(
        "DatasourceError",
        {
            "__alert_rule_uid__": "ups-runtime",
            "rulename": "UPS battery runtime low",
            "datasource_uid": "influx-ups",
            "ref_id": "A",
            "grafana_folder": "Power",
        },
        {
            "Error": '[sse.dataQueryError] failed to execute query [A]: Post "http://influxdb:8086/api/v2/query": '
            "dial tcp 10.0.13.40:8086: connect: connection refused"
        },
        source="grafana",
    ),
    causal=Expect(
        "the rule's data source refuses connections: influxdb was stopped",
        words=(
            ("connection refused",),
            ("datasource",),
            ("data source",),
            ("influx",),
            ("vzstop",),
            ("stop",),
            ("shutdown",),
        ),
    ),
    rules=[
        GrafanaRule(
            "ups-runtime",
            "UPS battery runtime low",
            'from(bucket: "ups") |> range(start: -5m) |> filter(fn: (r) => r._field == "battery_runtime")',
            state="error",
            health="error",
            last_error='[sse.dataQueryError] failed to execute query [A]: Post "http://influxdb:8086/api/v2/query": '
            "dial tcp 10.0.13.40:8086: connect: connection refused",
        )
    ],
    pve_tasks=[PveTask("pve-m1", "vzshutdown", -20, -19.5, vmid=350, user="admin@pve")],
    nodes=[Node("pve-m1")],
    guests=[Guest(350, "influxdb", "pve-m1", kind="lxc", status="stopped"), Guest(351, "nut", "pve-m1", kind="lxc")],
)

LOKI_DOWN = Scenario(
    name="loki_down",
    story=(
        "A CI pipeline on ci-runner starts a parallel build six minutes before the alert and pins every core. Loki is "
        "down at the same time: the triage must still report the CPU evidence and say that the logs were unavailable."
    ),
    alert=AlertSpec(
        "HostHighCpuLoad",
        {"instance": "ci-runner:9100", "job": "node", "severity": "warning"},
        {"summary": "CPU load above 80% on ci-runner:9100"},
        generator_expr='100 - (avg by (instance) (rate(node_cpu_seconds_total{instance="ci-runner:9100",mode="idle"}'
        "[2m])) * 100) > 80",
    ),
    causal=Expect("ci-runner's CPU is saturated", sources=("prometheus",), words=(("cpu",), ("load",))),
    hosts=[
        Host("ci-runner:9100", cpu_busy=step(0.2, 0.97, -6), load1=step(1.0, 14.0, -6), mem_used=step(0.3, 0.55, -6))
    ],
    pve_metrics=[PveGuestMetrics("qemu/360", cpu=step(0.2, 0.98, -6), mem_size_gb=16)],
    logs=[
        *background("ci-runner"),
        Log(
            journal("ci-runner", "gitlab-runner.service"),
            -6.1,
            "gitlab-runner[811]: Checking for jobs... received job=88122 repo_url=https://git.lab.example/app.git",
        ),
    ],
    nodes=[Node("pve-n1")],
    guests=[Guest(360, "ci-runner", "pve-n1", ips=["10.0.14.60"], maxmem_gb=16)],
    pve_tasks=[PveTask("pve-n1", "qmsnapshot", -300, -299, vmid=360)],
    down=("loki",),
)

SCENARIOS = [NODE_DOWN, DNS_CASCADE, CERT_EXPIRY, DATASOURCE_ERROR, LOKI_DOWN]
