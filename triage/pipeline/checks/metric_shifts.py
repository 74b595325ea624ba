"""Metric discovery check: every series the target and its neighbours export, ranked by how much it shifted.

The saturation check reads a fixed set of node_exporter and pve_exporter series. Causes often show in others: swap,
inodes, load, pressure, one filesystem among several, or an exporter nobody listed (UPS, SMART, ZFS, blackbox, an
application's own metrics). For each place of the neighbourhood this check asks Prometheus which series carry the
place's name (``/api/v1/series`` on its ``instance``/host labels and pve_exporter ``id``, bounded by
``TRIAGE_SERIES_MAX``), drops the exporters' self-metrics and what the saturation check already reads, queries the rest
in a few batched range queries (counters turned into per-second rates here, since ``rate()`` over many names would
drop them), and reports the series whose level shifted most at the alert, in standard deviations of its baseline,
whichever way. A note says when a bound left series out.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import defaultdict
from datetime import timedelta

from reports.models import Evidence
from tools.errors import SourceError
from tools.prometheus import PrometheusClient
from tools.selectors import Matcher, regex_escape, selector
from tools.types import Point, Series
from triage.evidence_facts import facts, facts_data
from triage.pipeline.checks._breakdown import query_metrics
from triage.pipeline.checks._families import alert_families, as_symptom
from triage.pipeline.checks._metric_words import plain_words
from triage.pipeline.checks._neighbourhood import Place
from triage.pipeline.checks._stats import MIN_SPREAD_ABS, Shift, level_change
from triage.pipeline.checks.check_context import CheckContext, evidence_id
from triage.pipeline.checks.result import NO_EVIDENCE, CheckResult
from triage.pipeline.checks.spec import CheckSpec
from triage.pipeline.ranking import saturate

NAME = "metric_shifts"
RECENT_MIN = 15
MIN_Z = 4.0
Z_HALF = 4.0
# a discovered series counts a little less than the same shift in a series chosen for the alert's kind
DISCOVERED_WEIGHT = 0.85
NAMES_PER_QUERY = 40
PER_METRIC = 1
PER_PLACE = 5
STEM_TOKENS = 3
# points per discovered series: a level change needs no finer grain, and there may be hundreds of series
DISCOVERY_POINTS = 120
MAX_ITEMS = 8
MIN_RECENT_POINTS = 3
HOST_LABELS = ("host", "hostname", "nodename", "server")
# what exporters say about themselves
SKIP = re.compile(
    r"^(up|scrape_.*|go_.*|process_.*|promhttp_.*|.*_info|.*_created|.*_bucket|node_scrape_collector_.*)$"
)
# what the saturation check reads for the target (a neighbour's are read here)
SATURATION = re.compile(
    r"^(node_cpu_seconds_total|node_memory_MemAvailable_bytes|node_memory_MemTotal_bytes"
    r"|node_disk_io_time_seconds_total|node_network_(receive|transmit)_bytes_total"
    r"|pve_cpu_usage_ratio|pve_memory_usage_bytes|pve_memory_size_bytes|pve_up"
    r"|pve_disk_read_bytes(_total)?|pve_disk_write_bytes|pve_disk_written_bytes_total)$"
)
COUNTER = re.compile(r"(_total|_count|_sum)$")
# a gauge of what is left of something (free swap, free inodes, available bytes): when most of it is gone, the
# resource is running out, the most common cause there is; Linux fills free memory with page cache by design, so
# MemFree is no such gauge
LEFT = re.compile(r"(?i)(free|avail|remaining)")
NOT_LEFT = re.compile(r"^node_memory_MemFree_bytes$")
# at most this share of its usual level left
RUNNING_OUT_SHARE = 0.25
# a gauge of a configured limit (``redis_memory_max_bytes``, ``container_spec_memory_limit_bytes``,
# ``node_filefd_maximum``, ``pg_settings_max_connections``): it moves only when someone changes the configuration,
# and what uses the resource then hits the new limit; an observed maximum (``pg_stat_activity_max_tx_duration``)
# is no limit
LIMIT = re.compile(
    r"(?i)((^|_)(limit|limits|max|maximum)(_(bytes|seconds|connections|entries|count))?$"
    r"|(^|_)(config|settings|spec|variables)_)"
)
# at most this share of its usual level kept
LIMIT_LOWERED_SHARE = 0.5
# a counter of events: Prometheus names a counter of an amount by its base unit (``_seconds_total``,
# ``_bytes_total``), one of occurrences (throttles, errors, drops, kills) without one
EVENTS = re.compile(r"_total$")
AMOUNT = re.compile(r"_(seconds|bytes|joules|watts|volts|amperes|celsius|meters|grams|ratio|percent|hertz)_total$")
_LABELS_SHOWN = frozenset({"__name__", "instance", "job", "host", "hostname", "nodename", "server", "id"})


def _matchers(place: Place, vmid: int | None) -> list[Matcher]:
    names = "|".join(regex_escape(n) for n in place.names)
    found = [Matcher("instance", f"(?i)({names})(:[0-9]+)?", "=~")]
    found += [Matcher(label, f"(?i)({names})", "=~") for label in HOST_LABELS]
    if place.role == "node":
        found.append(Matcher("id", f"node/{regex_escape(place.name)}", "=~"))
    elif place.role == "target" and vmid is not None:
        found.append(Matcher("id", f"(qemu|lxc)/{vmid}", "=~"))
    return found


def stem(metric: str) -> str:
    """The family a metric belongs to (``node_pressure_memory`` for its ``_stalled``/``_waiting`` series), so one
    measure moving does not fill every place with its variants."""
    return "_".join(metric.split("_")[:STEM_TOKENS])


def rates(series: Series) -> Series:
    """A counter's per-second rate between consecutive samples (a reset starts again from the new value)."""
    points: list[Point] = []
    for before, after in zip(series.points, series.points[1:], strict=False):
        elapsed = after.t - before.t
        if elapsed <= 0 or not (math.isfinite(before.value) and math.isfinite(after.value)):
            continue
        increase = after.value - before.value if after.value >= before.value else after.value
        points.append(Point(after.t, increase / elapsed))
    return Series(series.labels, points)


def _fmt(value: float) -> str:
    magnitude = abs(value)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if magnitude >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}"


def describe(metric: str, labels: dict[str, str], counter: bool) -> str:
    """``metric{device=sda}`` with the labels that tell the series apart, and a plain word for it when known."""
    parts = [f"{k}={v}" for k, v in sorted(labels.items()) if k not in _LABELS_SHOWN][:3]
    name = metric + (f"{{{', '.join(parts)}}}" if parts else "")
    words = plain_words(metric)
    rate = " rate" if counter else ""
    return f"{words}: {name}{rate}" if words else f"{name}{rate}"


def running_out(metric: str, series: Series, found: Shift, *, counter: bool) -> float | None:
    """How much of what was left is gone (0..1) when ``metric`` measures what is left of a resource and at most
    :data:`RUNNING_OUT_SHARE` of its usual level remains; None otherwise."""
    if counter or found.z >= 0 or found.baseline_mean <= 0 or not series.points:
        return None
    if not LEFT.search(metric) or NOT_LEFT.match(metric):
        return None
    left = max(0.0, series.points[-1].value) / found.baseline_mean
    return 1.0 - left if left <= RUNNING_OUT_SHARE else None


def limit_lowered(metric: str, series: Series, found: Shift, *, counter: bool) -> float | None:
    """How much of a configured limit was taken away (0..1) when ``metric`` is a limit lowered to at most
    :data:`LIMIT_LOWERED_SHARE` of its usual level; None otherwise."""
    if counter or found.z >= 0 or found.baseline_mean <= 0 or not series.points or not LIMIT.search(metric):
        return None
    kept = max(0.0, series.points[-1].value) / found.baseline_mean
    return 1.0 - kept if kept <= LIMIT_LOWERED_SHARE else None


def events_began(metric: str, found: Shift, *, counter: bool) -> bool:
    """Whether ``metric`` counts events (not an amount) and counted none in the baseline but does now."""
    if not counter or found.z <= 0 or abs(found.baseline_mean) > MIN_SPREAD_ABS:
        return False
    return bool(EVENTS.search(metric)) and not AMOUNT.search(metric)


def _evidence(ctx: CheckContext, place: Place, series: Series, counter: bool, found: Shift) -> Evidence:
    metric = series.labels.get("__name__", "series")
    what = describe(metric, series.labels, counter)
    direction = "rose" if found.z >= 0 else "fell"
    gone = running_out(metric, series, found, counter=counter)
    lowered = limit_lowered(metric, series, found, counter=counter)
    began = events_began(metric, found, counter=counter)
    title = place.describe(
        f"{what} {direction} from {_fmt(found.baseline_mean)} to {_fmt(found.recent_mean)} ({found.z:+.1f}σ)"
        + (f", {gone:.0%} of it gone" if gone is not None else "")
        + (f", a limit lowered by {lowered:.0%}" if lowered is not None else "")
        + (", none before" if began else "")
    )
    anomaly = saturate(abs(found.z), Z_HALF) * DISCOVERED_WEIGHT
    if began:
        # events that did not happen in the baseline and now do (throttles, errors, drops): weighed like a new log
        # message rather than as a measure that moved
        anomaly = 1.0
    if gone is not None or lowered is not None:
        # running out, or a limit lowered, outweighs any shift of a measure that only moves: it is what the others
        # wait on or hit
        anomaly = max(anomaly, 0.75 + 0.25 * max(gone or 0.0, lowered or 0.0))
    detail = f"baseline {_fmt(found.baseline_mean)} ± {_fmt(found.baseline_std)}, recent peak {_fmt(found.recent_peak)}"
    if found.onset is not None:
        offset = (found.onset - ctx.alert.starts_at).total_seconds() / 60
        detail += f"; left its usual range at {offset:+.0f} min from the alert start"
    shown = ",".join(f'{k}="{v}"' for k, v in sorted(series.labels.items()) if k != "__name__")
    return Evidence(
        id=evidence_id("met", metric, place.name, shown),
        source="prometheus",
        kind="metric_shift",
        title=title,
        detail=detail,
        at=found.onset or found.peak_at,
        score=anomaly * place.weight,
        ref=f"{metric}{{{shown}}}",
        series=[(p.t, p.value) for p in series.points][-240:],
        # a level that moved and stayed moved is a condition still present at the alert, however early it began
        data={
            **facts_data(metric=metric),
            "z": round(found.z, 2),
            **facts_data(place=place.role, where=place.name, persisting=True),
            **({"running_out": round(gone, 3)} if gone is not None else {}),
            **facts_data(limit_lowered=round(lowered, 3) if lowered is not None else None),
        },
    )


def _skipped(place: Place, series_seen: int, names_left: int, bound: str) -> Evidence:
    return Evidence(
        id=evidence_id("met", "bound", place.name),
        source="prometheus",
        kind="note",
        title=place.describe(f"Metric discovery stopped at a bound: {bound}"),
        detail=f"{series_seen} series seen, {names_left} metric names not queried; raise the bound to look further",
        score=0.02,
    )


async def _place(ctx: CheckContext, prometheus: PrometheusClient, place: Place, vmid: int | None) -> list[Evidence]:
    plan, limits = ctx.plan, ctx.settings
    matchers = _matchers(place, vmid)
    rows = await prometheus.series(
        [selector(None, None, [m]) for m in matchers], plan.window_start, plan.window_end, limit=limits.series_max
    )
    by_matcher: dict[int, set[str]] = defaultdict(set)
    # the alert signal and its breakdown already show the rule's own series
    symptoms = query_metrics(await ctx.alert_promql())
    for row in rows:
        name = row.get("__name__", "")
        if not name or SKIP.match(name) or name in symptoms or (place.role == "target" and SATURATION.match(name)):
            continue
        for index, matcher in enumerate(matchers):
            if matcher.name in row and re.fullmatch(matcher.value.removeprefix("(?i)"), row[matcher.name], re.I):
                by_matcher[index].add(name)
                break
    names = sorted({n for group in by_matcher.values() for n in group})
    notes: list[Evidence] = []
    if len(rows) >= limits.series_max:
        notes.append(_skipped(place, len(rows), 0, f"TRIAGE_SERIES_MAX={limits.series_max} series"))
    if len(names) > limits.metric_names_max:
        notes.append(
            _skipped(
                place,
                len(rows),
                len(names) - limits.metric_names_max,
                f"TRIAGE_METRIC_NAMES_MAX={limits.metric_names_max}",
            )
        )
        keep = set(names[: limits.metric_names_max])
        by_matcher = {i: group & keep for i, group in by_matcher.items()}
    queries: list[str] = []
    for index, group in by_matcher.items():
        ordered = sorted(group)
        for at in range(0, len(ordered), NAMES_PER_QUERY):
            batch = "|".join(re.escape(n) for n in ordered[at : at + NAMES_PER_QUERY])
            queries.append(selector(None, None, [Matcher("__name__", batch, "=~"), matchers[index]]))
    # the window before the triage window is the baseline: a slow change that began early in the triage window
    # would otherwise be its own baseline
    baseline_start = plan.previous_start
    results = await asyncio.gather(
        *(prometheus.query_range(q, baseline_start, plan.window_end, max_points=DISCOVERY_POINTS) for q in queries),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    if queries and len(errors) == len(queries):
        raise errors[0]
    found = _shifts(ctx, place, [s for r in results if not isinstance(r, BaseException) for s in r.series])
    return found + notes


def _shifts(ctx: CheckContext, place: Place, series: list[Series]) -> list[Evidence]:
    recent_from = ctx.alert.starts_at - timedelta(minutes=RECENT_MIN)
    per_metric: dict[str, list[Evidence]] = defaultdict(list)
    for item in series:
        metric = item.labels.get("__name__", "")
        counter = bool(COUNTER.search(metric))
        measured_series = rates(item) if counter else item
        measured = level_change(measured_series, ctx.plan.window_start, recent_from, min_recent=MIN_RECENT_POINTS)
        if measured is None or abs(measured.z) < MIN_Z or not math.isfinite(measured.z):
            continue
        per_metric[stem(metric)].append(_evidence(ctx, place, measured_series, counter, measured))
    kept = [e for items in per_metric.values() for e in sorted(items, key=lambda e: -e.score)[:PER_METRIC]]
    kept.sort(key=lambda e: e.score, reverse=True)
    return kept[:PER_PLACE]


async def run(ctx: CheckContext) -> CheckResult:
    """Series of the target and its neighbours, beyond the standard ones, whose level shifted at the alert."""
    prometheus = ctx.deps.prometheus
    if prometheus is None:
        return NO_EVIDENCE
    places = [p for p in await ctx.places() if p.names]
    if not places:
        return NO_EVIDENCE
    vmid = ctx.plan.vmid
    if vmid is None and ctx.deps.proxmox is not None:
        try:
            match = await ctx.guest()
        except SourceError:
            match = None  # the guest check reports the failed look-up
        vmid = match.guest.vmid if match is not None else None
    evidence = await ctx.search_places(NAME, places, lambda place: _place(ctx, prometheus, place, vmid))
    families = alert_families(await ctx.alert_promql())
    evidence = [as_symptom(e, "the resource the alert measures") if _restates(e, families) else e for e in evidence]
    evidence.sort(key=lambda e: e.score, reverse=True)
    return CheckResult(tuple(evidence[:MAX_ITEMS]))


def _restates(item: Evidence, families: frozenset[str]) -> bool:
    """A target's shift of the resource the alert measures (load for a CPU alert): the symptom again."""
    known = facts(item)
    return known.place == "target" and bool(alert_families(known.metric or "") & families)


CHECK = CheckSpec(NAME, run, sources=("prometheus",))
