"""Scenario metrics as exporter series: node_exporter and pve_exporter shapes turned into samples for promtool.

Counters are written as counters (cumulative totals whose ``rate()`` is the scenario's shape), gauges as gauges,
with a little deterministic noise so a baseline has the spread real scrapes have.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from tests.scenarios.model import Host, PveGuestMetrics, Raw, Scenario, Shape
from tests.support.prometheus import SyntheticSeries

STEP_S = 15.0
NOISE = 0.03
GB = 1 << 30
MB = 1_000_000
CPUS = ("0", "1")


def _rng(*parts: str) -> random.Random:
    seed = int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")
    return random.Random(seed)


class _Clock:
    """Sample times of one scenario: from ``start`` to ``end`` every ``STEP_S``, as minutes from T0."""

    def __init__(self, t0: datetime, start: datetime, end: datetime) -> None:
        self.t0 = t0
        self.start = start
        self.end = end

    def ticks(self, gone_min: float | None) -> Iterator[tuple[datetime, float]]:
        at = self.start
        while at <= self.end:
            minute = (at - self.t0).total_seconds() / 60.0
            if gone_min is not None and minute >= gone_min:
                return
            yield at, minute
            at += timedelta(seconds=STEP_S)


def _gauge(
    clock: _Clock,
    name: str,
    labels: dict[str, str],
    shape: Shape,
    *,
    scale: float = 1.0,
    gone: float | None = None,
    noise: float = NOISE,
) -> SyntheticSeries:
    rng = _rng(name, *sorted(f"{k}={v}" for k, v in labels.items()))
    points: list[tuple[datetime | float, float]] = []
    for at, minute in clock.ticks(gone):
        value = shape(minute) * scale
        points.append((at, max(0.0, value * (1 + rng.uniform(-noise, noise)))))
    return SyntheticSeries(name, dict(labels), points)


def _counter(
    clock: _Clock, name: str, labels: dict[str, str], rate: Shape, *, scale: float = 1.0, gone: float | None = None
) -> SyntheticSeries:
    rng = _rng(name, *sorted(f"{k}={v}" for k, v in labels.items()))
    total = rng.uniform(1e5, 1e6)
    points: list[tuple[datetime | float, float]] = []
    for at, minute in clock.ticks(gone):
        per_s = max(0.0, rate(minute) * scale * (1 + rng.uniform(-NOISE, NOISE)))
        total += per_s * STEP_S
        points.append((at, total))
    return SyntheticSeries(name, dict(labels), points)


def host_series(clock: _Clock, host: Host) -> list[SyntheticSeries]:
    """The node_exporter series of one host: CPU modes, memory, filesystem, disk, network, load, ``up``."""
    base = {"instance": host.instance, "job": host.job, **host.extra_labels}
    gone = host.gone_min

    def idle(m: float) -> float:
        return max(0.0, 1.0 - host.cpu_busy(m) - host.iowait(m) - host.steal(m))

    def user(m: float) -> float:
        return host.cpu_busy(m) * 0.7

    def system(m: float) -> float:
        return host.cpu_busy(m) * 0.3

    out: list[SyntheticSeries] = []
    modes: dict[str, Shape] = {"idle": idle, "user": user, "system": system, "iowait": host.iowait, "steal": host.steal}
    for cpu in CPUS:
        for mode, shape in modes.items():
            out.append(_counter(clock, "node_cpu_seconds_total", {**base, "cpu": cpu, "mode": mode}, shape, gone=gone))
    total = host.mem_total_gb * GB
    out.append(_gauge(clock, "node_memory_MemTotal_bytes", base, lambda _m: 1.0, scale=total, gone=gone))
    out.append(
        _gauge(clock, "node_memory_MemAvailable_bytes", base, lambda m: 1.0 - host.mem_used(m), scale=total, gone=gone)
    )
    fs = {**base, "device": "/dev/sda1", "fstype": "ext4", "mountpoint": host.mountpoint}
    size = host.fs_size_gb * GB
    out.append(_gauge(clock, "node_filesystem_size_bytes", fs, lambda _m: 1.0, scale=size, gone=gone))
    out.append(_gauge(clock, "node_filesystem_avail_bytes", fs, lambda m: 1.0 - host.fs_used(m), scale=size, gone=gone))
    disk = {**base, "device": "sda"}
    out.append(_counter(clock, "node_disk_io_time_seconds_total", disk, host.disk_util, gone=gone))
    out.append(_counter(clock, "node_disk_read_bytes_total", disk, host.disk_read_mbps, scale=MB, gone=gone))
    out.append(_counter(clock, "node_disk_written_bytes_total", disk, host.disk_write_mbps, scale=MB, gone=gone))
    nic = {**base, "device": "eth0"}
    out.append(_counter(clock, "node_network_receive_bytes_total", nic, host.net_mbps, scale=MB * 0.6, gone=gone))
    out.append(_counter(clock, "node_network_transmit_bytes_total", nic, host.net_mbps, scale=MB * 0.4, gone=gone))
    out.append(_gauge(clock, "node_load1", base, host.load1, gone=gone))
    # Prometheus writes up=0 itself when a scrape fails, so `up` goes on after the host is gone
    out.append(_up(clock, base, gone))
    return out


def _up(clock: _Clock, labels: dict[str, str], gone: float | None) -> SyntheticSeries:
    points: list[tuple[datetime | float, float]] = [
        (at, 0.0 if gone is not None and minute >= gone else 1.0) for at, minute in clock.ticks(None)
    ]
    return SyntheticSeries("up", dict(labels), points)


def pve_series(clock: _Clock, guest: PveGuestMetrics) -> list[SyntheticSeries]:
    """The pve_exporter series of one guest or node."""
    labels = {"id": guest.pve_id, "instance": "pve-exporter:9221", "job": "pve"}
    gone = guest.gone_min
    size = guest.mem_size_gb * GB
    return [
        _gauge(clock, "pve_cpu_usage_ratio", labels, guest.cpu, gone=gone),
        _gauge(clock, "pve_memory_size_bytes", labels, lambda _m: 1.0, scale=size, gone=gone),
        _gauge(clock, "pve_memory_usage_bytes", labels, guest.mem_used, scale=size, gone=gone),
        _counter(clock, "pve_disk_read_bytes", labels, guest.disk_read_mbps, scale=MB, gone=gone),
        _counter(clock, "pve_disk_write_bytes", labels, guest.disk_write_mbps, scale=MB, gone=gone),
        _gauge(clock, "pve_up", labels, lambda m: 0.0 if gone is not None and m >= gone else 1.0),
    ]


def raw_series(clock: _Clock, raw: Raw) -> SyntheticSeries:
    if raw.relative_to_t0:
        t0 = clock.t0.timestamp()
        return _gauge(clock, raw.name, raw.labels, lambda m: t0 + raw.shape(m), gone=raw.gone_min, noise=0.0)
    if raw.counter:
        return _counter(clock, raw.name, raw.labels, raw.shape, gone=raw.gone_min)
    return _gauge(clock, raw.name, raw.labels, raw.shape, gone=raw.gone_min, noise=NOISE if raw.noise else 0.0)


def scenario_series(scenario: Scenario, t0: datetime, start: datetime, end: datetime) -> list[SyntheticSeries]:
    """Every series of ``scenario`` anchored at ``t0``, sampled from ``start`` to ``end``."""
    clock = _Clock(t0, start, end)
    out: list[SyntheticSeries] = []
    for host in scenario.hosts:
        out.extend(host_series(clock, host))
    for guest in scenario.pve_metrics:
        out.extend(pve_series(clock, guest))
    out.extend(raw_series(clock, raw) for raw in scenario.raw)
    return [s for s in out if s.points]
