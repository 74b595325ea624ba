"""The plan: from an alert's labels and annotations, which checks apply, on which targets, over which window.

Only label *names* decide which checks run; label *values* only become targets (escaped wherever they enter a
query). Free text — annotations, descriptions, log lines — never changes the plan, so nothing an alert carries can
add or remove a check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from reports.grafana_target import rule_uid_of
from reports.models import Alert
from tools.numbers import ascii_int
from tools.proxmox_models import host_names, split_instance
from triage.settings import TriageSettings

CHECK_ALERT_SIGNAL = "alert_signal"
CHECK_SATURATION = "saturation"
CHECK_METRIC_SHIFTS = "metric_shifts"
CHECK_LOG_ERRORS = "log_errors"
CHECK_CHANGES = "changes"
CHECK_GUEST_STATUS = "guest_status"
CHECK_GUEST_STORAGE = "guest_storage"
CHECK_BACKUPS = "backups"
CHECK_RUNBOOKS = "runbooks"
CHECK_HISTORY = "history"
ALL_CHECKS = (
    CHECK_ALERT_SIGNAL,
    CHECK_SATURATION,
    CHECK_METRIC_SHIFTS,
    CHECK_LOG_ERRORS,
    CHECK_CHANGES,
    CHECK_GUEST_STATUS,
    CHECK_GUEST_STORAGE,
    CHECK_BACKUPS,
    CHECK_RUNBOOKS,
    CHECK_HISTORY,
)

HOST_LABELS = ("host", "hostname", "nodename", "server", "machine")
NODE_LABELS = ("node", "pve_node", "proxmox_node")
SERVICE_LABELS = ("service", "container", "container_name", "name", "app", "unit", "systemd_unit", "guest", "vm")
VMID_LABELS = ("vmid", "vm_id", "guest_id")
MAX_TARGET_CHARS = 253
MAX_TARGETS = 6

_PVE_ID = re.compile(r"(?:qemu|lxc)/([0-9]{1,9})\Z")


@dataclass(frozen=True)
class Plan:
    """What to look at for one alert. Lists are ordered best guess first."""

    window_start: datetime
    window_end: datetime
    starts_at: datetime
    checks: tuple[str, ...]
    instance: str | None = None
    job: str | None = None
    hosts: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    vmid: int | None = None
    services: tuple[str, ...] = ()
    namespace: str | None = None
    mountpoint: str | None = None
    datastore: str | None = None
    device: str | None = None
    severity: str = ""
    dashboard_uid: str | None = None
    panel_id: int | None = None
    runbook_url: str | None = None
    rule_uid: str | None = None
    rule_name: str | None = None
    expr: str | None = None
    guest_hints: tuple[str, ...] = field(default=())

    @property
    def before(self) -> tuple[datetime, datetime]:
        """The baseline part of the window (before the alert started)."""
        return self.window_start, min(self.starts_at, self.window_end)

    @property
    def during(self) -> tuple[datetime, datetime]:
        """The part of the window from the alert's start on (at least one minute)."""
        start = min(self.starts_at, self.window_end - timedelta(minutes=1))
        return start, self.window_end

    @property
    def previous_start(self) -> datetime:
        """Start of the window of equal length just before this one: the baseline of the checks that compare."""
        return self.window_start - (self.window_end - self.window_start)

    @property
    def has_target(self) -> bool:
        return bool(self.instance or self.hosts or self.addresses or self.nodes or self.vmid is not None)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > MAX_TARGET_CHARS:
        return None
    return text


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))[:MAX_TARGETS]


def window(starts_at: datetime, now: datetime, settings: TriageSettings) -> tuple[datetime, datetime]:
    """``[starts_at - before, min(now, starts_at + after)]``, capped to ``window_max_min`` ending at its end.

    A start in the future (clock skew between Grafana and us) still gets a window of ``after`` minutes.
    """
    start = starts_at - timedelta(minutes=settings.window_before_min)
    end = min(now, starts_at + timedelta(minutes=settings.window_after_min))
    if end <= starts_at:
        end = starts_at + timedelta(minutes=max(1, settings.window_after_min))
    longest = timedelta(minutes=settings.window_max_min)
    if end - start > longest:
        start = end - longest
    return start, end


def expr_from_generator_url(url: str | None) -> str | None:
    """The PromQL of a Prometheus alert, from its generator URL (``/graph?g0.expr=…``)."""
    if not url:
        return None
    query = parse_qs(urlsplit(url).query)
    values = query.get("g0.expr")
    return values[0].strip() or None if values else None


def _vmid(labels: dict[str, str]) -> int | None:
    for key in VMID_LABELS:
        value = (labels.get(key) or "").strip()
        vmid = ascii_int(value, max_digits=9)
        if vmid is not None:
            return vmid
    match = _PVE_ID.match((labels.get("id") or "").strip())
    return int(match.group(1)) if match else None


def _targets(labels: dict[str, str]) -> tuple[list[str], list[str], list[str], list[str]]:
    """Host names, addresses, Proxmox nodes and services named by the labels."""
    hosts: list[str] = []
    addresses: list[str] = []
    instance = _clean(labels.get("instance"))
    if instance:
        host, is_address = split_instance(instance)
        if is_address:
            addresses.append(host)
        elif host_names(host):
            hosts.append(host.lower().rstrip("."))
    for key in HOST_LABELS:
        value = _clean(labels.get(key))
        if value is None:
            continue
        host, is_address = split_instance(value)
        if is_address:
            addresses.append(host)
        elif host_names(host):
            hosts.append(host.lower().rstrip("."))
    nodes = [v for v in (_clean(labels.get(k)) for k in NODE_LABELS) if v and host_names(v)]
    services = [v for v in (_clean(labels.get(k)) for k in SERVICE_LABELS) if v]
    return hosts, addresses, nodes, services


def _checks(plan_has_target: bool, has_logs_target: bool, has_query: bool) -> tuple[str, ...]:
    checks = [CHECK_CHANGES, CHECK_BACKUPS, CHECK_RUNBOOKS, CHECK_HISTORY]
    if has_query:
        checks.insert(0, CHECK_ALERT_SIGNAL)
    if plan_has_target:
        checks += [CHECK_SATURATION, CHECK_METRIC_SHIFTS, CHECK_GUEST_STATUS, CHECK_GUEST_STORAGE]
    if has_logs_target:
        checks.append(CHECK_LOG_ERRORS)
    return tuple(c for c in ALL_CHECKS if c in checks)


def make_plan(alert: Alert, settings: TriageSettings, *, now: datetime | None = None) -> Plan:
    """Decide the checks, targets and window for ``alert``."""
    labels = alert.labels
    now = now or datetime.now(UTC)
    start, end = window(alert.starts_at, now, settings)
    hosts, addresses, nodes, services = _targets(labels)
    vmid = _vmid(labels)
    instance = _clean(labels.get("instance"))
    job = _clean(labels.get("job"))
    namespace = _clean(labels.get("namespace"))
    expr = expr_from_generator_url(alert.generator_url)
    rule_uid = rule_uid_of(alert)
    # Grafana's DatasourceError/DatasourceNoData alerts name the rule they are about in ``rulename``
    rule_name = _clean(labels.get("rulename"))
    hints = [str(vmid)] if vmid is not None else []
    hints += [h.split(".", 1)[0] for h in hosts] + addresses
    hints += [s for s in services if host_names(s)]
    has_target = bool(instance or hosts or addresses or nodes or vmid is not None)
    logs_target = has_target or bool(services or job or namespace)
    return Plan(
        window_start=start,
        window_end=end,
        starts_at=alert.starts_at,
        checks=_checks(has_target, logs_target, bool(expr or rule_uid or rule_name)),
        instance=instance,
        job=job,
        hosts=_unique(hosts),
        addresses=_unique(addresses),
        nodes=_unique(nodes),
        vmid=vmid,
        services=_unique(services),
        namespace=namespace,
        mountpoint=_clean(labels.get("mountpoint")),
        datastore=_clean(labels.get("datastore") or labels.get("store")),
        device=_clean(labels.get("device")),
        severity=_clean(labels.get("severity")) or "",
        dashboard_uid=alert.dashboard_uid or _clean(labels.get("__dashboardUid__")),
        panel_id=alert.panel_id,
        runbook_url=_clean(alert.annotations.get("runbook_url")),
        rule_uid=rule_uid,
        rule_name=rule_name,
        expr=expr,
        guest_hints=_unique(hints),
    )
