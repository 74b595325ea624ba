"""Saturation check: CPU, memory, disk and network of the host or guest behind the alert, during vs before.

Queries cover node_exporter (``instance`` of the host) and pve_exporter (``id="qemu/105"`` for a guest,
``id="node/pve1"`` for a node). Each series is split at ``starts_at - 15 min`` (so a rise that began shortly before
the alert counts as recent); the shift of the recent mean from the baseline, in baseline standard deviations, is
the anomaly size. Metrics an exporter does not provide return nothing and are skipped.

A target that stopped reporting (a host that went down) is its own finding, kind ``availability``; its values after
the last sample are left out, since Prometheus keeps answering for minutes from stale samples and those values
would read as a shift.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from reports.models import Evidence
from tools.errors import SourceError
from tools.prometheus import PrometheusClient
from tools.prometheus_models import QueryResult
from tools.proxmox_models import split_instance
from tools.selectors import Matcher, regex_escape, selector
from tools.types import Series
from triage.evidence_facts import facts, facts_data
from triage.pipeline.checks._families import alert_families, as_symptom
from triage.pipeline.checks._liveness import Liveness, liveness, liveness_query, until
from triage.pipeline.checks._stats import Shift, shift
from triage.pipeline.checks.check_context import CheckContext, evidence_id
from triage.pipeline.checks.result import NO_EVIDENCE, CheckResult
from triage.pipeline.checks.spec import CheckSpec
from triage.pipeline.ranking import saturate

NAME = "saturation"
RECENT_MIN = 15
Z_HALF = 3.0
HIGH_LEVEL = 0.9
MAX_ITEMS = 6
NODE_EXPORTER_PORT = 9100
# fewer recent points than this (a series that ended around the split) is no basis for a shift
MIN_RECENT_POINTS = 3
STOPPED_SCORE = 0.7
MAX_SERIES_PER_QUERY = 50
PER_QUERY = 3


@dataclass(frozen=True)
class Target:
    name: str
    queries: list[MetricQuery]
    liveness: str


@dataclass(frozen=True)
class MetricQuery:
    key: str
    label: str
    promql: str
    ratio: bool = True
    two_sided: bool = False


def _fmt(value: float, ratio: bool) -> str:
    if ratio:
        return f"{value * 100:.0f}%"
    for unit, size in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.2f}"


def host_queries(instance_matcher: Matcher, mountpoint: str | None) -> list[MetricQuery]:
    """node_exporter queries for one host, selected by its ``instance`` label."""

    def sel(metric: str, *extra: Matcher, **labels: str) -> str:
        return selector(metric, labels, [instance_matcher, *extra])

    fs = [Matcher("fstype", "tmpfs|overlay|squashfs|ramfs|nsfs", "!~")]
    if mountpoint:
        fs.append(Matcher("mountpoint", mountpoint))
    return [
        # busy leaves out iowait and steal (idle time waiting on disks, time the hypervisor gave to other guests):
        # they are measured on their own, and counting them as busy would blame the processor for a slow disk
        MetricQuery(
            "cpu",
            "CPU busy",
            f"1 - sum by (instance) (rate({sel('node_cpu_seconds_total', Matcher('mode', 'idle|iowait|steal', '=~'))}"
            f"[5m])) / count by (instance) ({sel('node_cpu_seconds_total', mode='idle')})",
        ),
        MetricQuery(
            "memory",
            "memory used",
            f"1 - {sel('node_memory_MemAvailable_bytes')} / {sel('node_memory_MemTotal_bytes')}",
        ),
        MetricQuery(
            "disk_space",
            "disk space used",
            # one series per mount: which filesystem fills is the finding
            f"1 - {sel('node_filesystem_avail_bytes', *fs)} / {sel('node_filesystem_size_bytes', *fs)}",
        ),
        MetricQuery(
            "disk_io", "disk busy time", f"max by (instance) (rate({sel('node_disk_io_time_seconds_total')}[5m]))"
        ),
        MetricQuery(
            "iowait",
            "CPU iowait",
            f"avg by (instance) (rate({sel('node_cpu_seconds_total', mode='iowait')}[5m]))",
        ),
        # in a VM, time the hypervisor gave to other guests: the mark of a noisy neighbour on the same node
        MetricQuery(
            "steal",
            "CPU steal",
            f"avg by (instance) (rate({sel('node_cpu_seconds_total', mode='steal')}[5m]))",
        ),
        MetricQuery(
            "network",
            "network traffic",
            f"sum by (instance) (rate({sel('node_network_receive_bytes_total', Matcher('device', 'lo', '!='))}[5m]))"
            f" + sum by (instance) (rate({sel('node_network_transmit_bytes_total', Matcher('device', 'lo', '!='))}[5m]))",
            ratio=False,
            two_sided=True,
        ),
    ]


def pve_queries(pve_id: str) -> list[MetricQuery]:
    """pve_exporter queries for a guest (``qemu/105``, ``lxc/105``) or a node (``node/pve1``)."""
    ident = {"id": pve_id}
    return [
        MetricQuery("pve_cpu", "CPU (Proxmox)", selector("pve_cpu_usage_ratio", ident)),
        MetricQuery(
            "pve_memory",
            "memory of its limit (Proxmox)",
            f"{selector('pve_memory_usage_bytes', ident)} / {selector('pve_memory_size_bytes', ident)}",
        ),
        MetricQuery(
            "pve_disk_io",
            "disk IO (Proxmox)",
            # pve_exporter 3 names the counters *_total; older versions export the deprecated gauges
            f"(rate({selector('pve_disk_read_bytes_total', ident)}[5m]) "
            f"+ rate({selector('pve_disk_written_bytes_total', ident)}[5m])) "
            f"or (rate({selector('pve_disk_read_bytes', ident)}[5m]) + rate({selector('pve_disk_write_bytes', ident)}[5m]))",
            ratio=False,
            two_sided=True,
        ),
    ]


def _host(name: str, matcher: Matcher, mountpoint: str | None) -> Target:
    idle = selector("node_cpu_seconds_total", {"mode": "idle"}, [matcher])
    return Target(name, host_queries(matcher, mountpoint), liveness_query(idle))


def _pve(name: str, pve_id: str) -> Target:
    return Target(name, pve_queries(pve_id), liveness_query(selector("pve_cpu_usage_ratio", {"id": pve_id})))


async def _targets(ctx: CheckContext) -> list[Target]:
    plan = ctx.plan
    targets: list[Target] = []
    if plan.instance:
        # an alert from another exporter of the host (postgres :9187, nginx :9113) names the host with that
        # exporter's port, while node_exporter's series carry :9100: then match the host with any port
        host, _ = split_instance(plan.instance)
        matcher = Matcher("instance", plan.instance)
        if host and not plan.instance.endswith(f":{NODE_EXPORTER_PORT}") and host != plan.instance:
            matcher = Matcher("instance", f"{regex_escape(host)}(:[0-9]+)?", "=~")
        targets.append(_host(plan.instance, matcher, plan.mountpoint))
    elif plan.hosts or plan.addresses:
        host = (plan.hosts + plan.addresses)[0]
        matcher = Matcher("instance", f"{regex_escape(host)}(:[0-9]+)?", "=~")
        targets.append(_host(host, matcher, plan.mountpoint))
    vmid = plan.vmid
    kind = None
    if vmid is None and ctx.deps.proxmox is not None:
        try:
            match = await ctx.guest()
        except SourceError as exc:
            ctx.note_failure("saturation:guest-lookup", exc)
            match = None
        if match is not None:
            vmid, kind = match.guest.vmid, match.guest.kind
    if vmid is not None:
        pve_id = f"{kind}/{vmid}" if kind else f"qemu/{vmid}"
        targets.append(_pve(f"guest {vmid}", pve_id))
        if kind is None:
            targets.append(_pve(f"guest {vmid}", f"lxc/{vmid}"))
    for node in plan.nodes[:1]:
        targets.append(_pve(f"node {node}", f"node/{node}"))
    return targets


def _evidence(ctx: CheckContext, target: str, query: MetricQuery, series: Series, found: Shift) -> Evidence | None:
    z = found.z if query.two_sided else max(0.0, found.z)
    anomaly = saturate(abs(z), Z_HALF)
    if query.ratio and found.recent_peak >= HIGH_LEVEL:
        anomaly = max(anomaly, 0.5 + (found.recent_peak - HIGH_LEVEL) * 4)
    anomaly = min(1.0, anomaly)
    direction = "rose" if found.z >= 0 else "fell"
    title = (
        f"{query.label} of {target} {direction} from {_fmt(found.baseline_mean, query.ratio)} "
        f"to {_fmt(found.recent_mean, query.ratio)} ({found.z:+.1f}σ)"
    )
    detail = (
        f"baseline {_fmt(found.baseline_mean, query.ratio)} ± {_fmt(found.baseline_std, query.ratio)}, "
        f"recent mean {_fmt(found.recent_mean, query.ratio)}, peak {_fmt(found.recent_peak, query.ratio)}"
    )
    if found.onset is not None:
        offset = (found.onset - ctx.alert.starts_at).total_seconds() / 60
        detail += f"; left its usual range at {offset:+.0f} min from the alert start"
    at = found.onset or found.peak_at
    return Evidence(
        id=evidence_id("sat", query.key, target, query.promql),
        source="prometheus",
        kind="saturation",
        title=title,
        detail=detail,
        at=at,
        score=anomaly,
        ref=query.promql,
        series=[(p.t, p.value) for p in series.points][-240:],
        data={
            **facts_data(metric=query.key),
            "z": round(found.z, 2),
            **facts_data(target=target),
            "peak": found.recent_peak,
        },
    )


def _stopped(ctx: CheckContext, target: Target, state: Liveness) -> Evidence:
    offset = (state.last_sample - ctx.alert.starts_at).total_seconds() / 60
    silent = (ctx.plan.window_end - state.last_sample).total_seconds() / 60
    return Evidence(
        id=evidence_id("sat", "stopped", target.name, target.liveness),
        source="prometheus",
        kind="availability",
        title=f"{target.name} stopped reporting at {state.last_sample:%H:%M} UTC",
        detail=(
            f"its last sample is {offset:+.0f} min from the alert start, none in the {silent:.0f} min since "
            "(target down or unreachable); its metrics after that are not measured and are not compared"
        ),
        at=state.last_sample,
        score=STOPPED_SCORE,
        ref=target.liveness,
        data={**facts_data(target=target.name), "last_sample": state.last_sample.timestamp()},
    )


def _shifts(
    ctx: CheckContext, target: Target, query: MetricQuery, result: QueryResult, end: datetime | None
) -> list[Evidence]:
    split_at = ctx.alert.starts_at - timedelta(minutes=RECENT_MIN)
    found: list[Evidence] = []
    for series in result.series[:MAX_SERIES_PER_QUERY]:
        kept = until(series, end) if end else series
        measured = shift(kept, split_at, min_recent=MIN_RECENT_POINTS)
        if measured is None:
            continue
        part = series.labels.get("mountpoint") or series.labels.get("device")
        name = f"{target.name} ({part})" if part and len(result.series) > 1 else target.name
        item = _evidence(ctx, name, query, kept, measured)
        if item is not None:
            found.append(item)
    found.sort(key=lambda e: e.score, reverse=True)
    return found[:PER_QUERY]


async def _target(ctx: CheckContext, prometheus: PrometheusClient, target: Target) -> list[Evidence]:
    start, end = ctx.plan.window_start, ctx.plan.window_end
    answers = await asyncio.gather(
        prometheus.query_range(target.liveness, start, end),
        *(prometheus.query_range(q.promql, start, end) for q in target.queries),
        return_exceptions=True,
    )
    alive, results = answers[0], answers[1:]
    state = None if isinstance(alive, BaseException) else liveness(alive, end)
    found = [_stopped(ctx, target, state)] if state is not None and state.stopped else []
    cut = state.last_sample if state is not None and state.stopped else None
    errors: list[BaseException] = []
    for query, result in zip(target.queries, results, strict=True):
        if isinstance(result, BaseException):
            errors.append(result)
        else:
            found.extend(_shifts(ctx, target, query, result, cut))
    if errors and len(errors) == len(results):
        raise errors[0]
    return found


# the resource each query measures (see triage.pipeline.checks._families); the CPU busy query names the iowait mode only to
# leave it out, so its text would say "io"
RESOURCE_OF: dict[str, str] = {
    "cpu": "cpu",
    "steal": "cpu",
    "pve_cpu": "cpu",
    "memory": "memory",
    "pve_memory": "memory",
    "disk_space": "filesystem",
    "disk_io": "io",
    "iowait": "io",
    "pve_disk_io": "io",
    "network": "network",
}


def resources(item: Evidence) -> frozenset[str]:
    """The resources a saturation finding measures: its query's, else read from the query's text."""
    known = RESOURCE_OF.get(facts(item).metric or "")
    return frozenset({known}) if known else alert_families(item.ref)


def restating(evidence: list[Evidence], families: frozenset[str]) -> list[Evidence]:
    """``evidence`` with the target's shifts of the resource the alert measures weighed down: the alert signal
    already shows them, and as a cause they only say the symptom again. A node's measures are a neighbour's and
    keep their weight."""
    out: list[Evidence] = []
    for item in evidence:
        target = facts(item).target or ""
        if item.kind == "saturation" and resources(item) & families and not target.startswith("node "):
            item = as_symptom(item, "the resource the alert measures")
        out.append(item)
    return out


async def run(ctx: CheckContext) -> CheckResult:
    """CPU, memory, disk and network of the alert's host/guest: the size of the shift since before the alert, and
    targets that stopped reporting (whose later values are not compared)."""
    prometheus = ctx.deps.prometheus
    if prometheus is None:
        return NO_EVIDENCE
    evidence = await _gathered(ctx, prometheus)
    evidence = restating(evidence, alert_families(await ctx.alert_promql()))
    evidence.sort(key=lambda e: e.score, reverse=True)
    return CheckResult(tuple(evidence[:MAX_ITEMS]))


async def _gathered(ctx: CheckContext, prometheus: PrometheusClient) -> list[Evidence]:
    targets = await _targets(ctx)
    if not targets:
        return []
    results = await asyncio.gather(*(_target(ctx, prometheus, t) for t in targets), return_exceptions=True)
    evidence: list[Evidence] = []
    errors: list[BaseException] = []
    for result in results:
        if isinstance(result, BaseException):
            errors.append(result)
        else:
            evidence.extend(result)
    if errors and len(errors) == len(results):
        raise errors[0]
    return evidence


CHECK = CheckSpec(NAME, run, sources=("prometheus",))
