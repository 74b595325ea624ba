"""The planner: from an alert's labels and annotations, which checks apply, on which targets, over which window.

Only label *names* decide which checks run; label *values* only become targets (escaped wherever they enter a
query). Free text — annotations, descriptions, log lines — never changes the plan, so nothing an alert carries can
add or remove a check.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from reports.grafana_target import rule_uid_of
from reports.models import Alert
from tools.numbers import ascii_int
from tools.proxmox_models import host_names, split_instance
from triage.pipeline.checks import (
    CHECKS,
    alert_signal,
    backups,
    changes,
    guest_status,
    guest_storage,
    history,
    log_errors,
    metric_shifts,
    runbook_search,
    saturation,
)
from triage.pipeline.plan_model import Plan
from triage.settings import TriageSettings

# which checks apply: always, when the alert has a query, a target, or something to find its logs by
ALWAYS = (changes.CHECK, backups.CHECK, runbook_search.CHECK, history.CHECK)
WITH_QUERY = (alert_signal.CHECK,)
WITH_TARGET = (saturation.CHECK, metric_shifts.CHECK, guest_status.CHECK, guest_storage.CHECK)
WITH_LOGS_TARGET = (log_errors.CHECK,)

HOST_LABELS = ("host", "hostname", "nodename", "server", "machine")
NODE_LABELS = ("node", "pve_node", "proxmox_node")
SERVICE_LABELS = ("service", "container", "container_name", "name", "app", "unit", "systemd_unit", "guest", "vm")
VMID_LABELS = ("vmid", "vm_id", "guest_id")
MAX_TARGET_CHARS = 253
MAX_TARGETS = 6

_PVE_ID = re.compile(r"(?:qemu|lxc)/([0-9]{1,9})\Z")
# pve_exporter names a node's own series ``id="node/pve1"`` (its guests' ``qemu/105``, ``lxc/105``)
_PVE_NODE_ID = re.compile(r"node/(\S+)\Z")


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
    node_id = _PVE_NODE_ID.match(_clean(labels.get("id")) or "")
    if node_id and host_names(node_id.group(1)):
        nodes.append(node_id.group(1))
    services = [v for v in (_clean(labels.get(k)) for k in SERVICE_LABELS) if v]
    return hosts, addresses, nodes, services


def checks_for(*, has_target: bool, has_logs_target: bool, has_query: bool) -> tuple[str, ...]:
    """The names of the checks that apply, in the registry's order."""
    specs = [*ALWAYS]
    if has_query:
        specs += WITH_QUERY
    if has_target:
        specs += WITH_TARGET
    if has_logs_target:
        specs += WITH_LOGS_TARGET
    chosen = {spec.name for spec in specs}
    return tuple(name for name in CHECKS if name in chosen)


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
        checks=checks_for(
            has_target=has_target, has_logs_target=logs_target, has_query=bool(expr or rule_uid or rule_name)
        ),
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
