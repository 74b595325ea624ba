"""Scenario metrics as exporter series: node_exporter and pve_exporter shapes turned into samples for promtool.

Counters are written as counters (cumulative totals whose ``rate()`` is the scenario's shape), gauges as gauges,
with a little deterministic noise so a baseline has the spread real scrapes have.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from tests.scenarios.model import Filesystem, Host, PveGuestMetrics, Raw, Scenario, Shape
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

    def ticks(self, gone_min: float | None, back_min: float | None = None) -> Iterator[tuple[datetime, float]]:
        """Sample times up to ``gone_min`` (all when None), and again from ``back_min`` when the target returns."""
        at = self.start
        while at <= self.end:
            minute = (at - self.t0).total_seconds() / 60.0
            away = gone_min is not None and minute >= gone_min
            if away and (back_min is None or minute < back_min):
                if back_min is None:
                    return
            else:
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
    back: float | None = None,
    present: Shape | None = None,
) -> SyntheticSeries:
    """A gauge sampled every step; no sample while ``present`` (when given) is below one half."""
    rng = _rng(name, *sorted(f"{k}={v}" for k, v in labels.items()))
    points: list[tuple[datetime | float, float]] = []
    for at, minute in clock.ticks(gone, back):
        if present is not None and present(minute) < 0.5:
            continue
        value = shape(minute) * scale
        points.append((at, value * (1 + rng.uniform(-noise, noise))))
    return SyntheticSeries(name, dict(labels), points)


def _counter(
    clock: _Clock,
    name: str,
    labels: dict[str, str],
    rate: Shape,
    *,
    scale: float = 1.0,
    gone: float | None = None,
    back: float | None = None,
) -> SyntheticSeries:
    """A counter whose ``rate()`` is ``rate``; it restarts from zero when the target comes back at ``back``."""
    rng = _rng(name, *sorted(f"{k}={v}" for k, v in labels.items()))
    total = rng.uniform(1e5, 1e6)
    points: list[tuple[datetime | float, float]] = []
    restarted = False
    for at, minute in clock.ticks(gone, back):
        if back is not None and not restarted and minute >= back:
            # a rebooted host's counters start again from zero, as Prometheus sees them after a restart
            total, restarted = 0.0, True
        per_s = max(0.0, rate(minute) * scale * (1 + rng.uniform(-NOISE, NOISE)))
        total += per_s * STEP_S
        points.append((at, total))
    return SyntheticSeries(name, dict(labels), points)


def host_series(clock: _Clock, host: Host) -> list[SyntheticSeries]:
    """The node_exporter series of one host: CPU modes, memory, filesystem, disk, network, load, ``up``; with
    ``extended`` also swap, inodes, load5/15, pressure and boot time; and each extra filesystem."""
    base = {"instance": host.instance, "job": host.job, **host.extra_labels}
    gone = host.gone_min
    back = host.back_min

    def idle(m: float) -> float:
        return max(0.0, 1.0 - host.cpu_busy(m) - host.iowait(m) - host.steal(m))

    def user(m: float) -> float:
        return host.cpu_busy(m) * 0.7

    def system(m: float) -> float:
        return host.cpu_busy(m) * 0.3

    def counter(name: str, labels: dict[str, str], rate: Shape, scale: float = 1.0) -> SyntheticSeries:
        return _counter(clock, name, labels, rate, scale=scale, gone=gone, back=back)

    def gauge(name: str, labels: dict[str, str], shape: Shape, scale: float = 1.0, **kw: Any) -> SyntheticSeries:
        return _gauge(clock, name, labels, shape, scale=scale, gone=gone, back=back, **kw)

    out: list[SyntheticSeries] = []
    modes: dict[str, Shape] = {"idle": idle, "user": user, "system": system, "iowait": host.iowait, "steal": host.steal}
    for cpu in CPUS:
        for mode, shape in modes.items():
            out.append(counter("node_cpu_seconds_total", {**base, "cpu": cpu, "mode": mode}, shape))
    total = host.mem_total_gb * GB
    out.append(gauge("node_memory_MemTotal_bytes", base, lambda _m: 1.0, scale=total))
    out.append(gauge("node_memory_MemAvailable_bytes", base, lambda m: 1.0 - host.mem_used(m), scale=total))
    fs = {**base, "device": "/dev/sda1", "fstype": "ext4", "mountpoint": host.mountpoint}
    size = host.fs_size_gb * GB
    out.append(gauge("node_filesystem_size_bytes", fs, lambda _m: 1.0, scale=size))
    out.append(gauge("node_filesystem_avail_bytes", fs, lambda m: 1.0 - host.fs_used(m), scale=size))
    disk = {**base, "device": "sda"}
    out.append(counter("node_disk_io_time_seconds_total", disk, host.disk_util))
    out.append(counter("node_disk_read_bytes_total", disk, host.disk_read_mbps, scale=MB))
    out.append(counter("node_disk_written_bytes_total", disk, host.disk_write_mbps, scale=MB))
    nic = {**base, "device": "eth0"}
    out.append(counter("node_network_receive_bytes_total", nic, host.net_mbps, scale=MB * 0.6))
    out.append(counter("node_network_transmit_bytes_total", nic, host.net_mbps, scale=MB * 0.4))
    out.append(gauge("node_load1", base, host.load1))
    if host.extended:
        out.extend(_extended_series(host, base, fs, counter, gauge))
    if host.extended or back is not None:
        out.append(_boot_time(clock, host, base))
    for extra in host.filesystems:
        out.extend(_filesystem_series(extra, base, gauge))
    # Prometheus writes up=0 itself when a scrape fails, so `up` goes on after the host is gone
    out.append(_up(clock, base, gone, back))
    return out


_Counter = Callable[..., SyntheticSeries]
_Gauge = Callable[..., SyntheticSeries]


def _extended_series(
    host: Host, base: dict[str, str], root_fs: dict[str, str], counter: _Counter, gauge: _Gauge
) -> list[SyntheticSeries]:
    """What every current node_exporter exports beyond the classic set: swap, root inodes, load5/15, PSI."""
    swap = host.swap_total_gb * GB

    def lagged(minutes: float) -> Shape:
        # load5/load15 are slower averages of the same run queue
        return lambda m: host.load1(m - minutes)

    return [
        gauge("node_memory_SwapTotal_bytes", base, lambda _m: 1.0, scale=swap),
        gauge("node_memory_SwapFree_bytes", base, lambda m: 1.0 - host.swap_used(m), scale=swap),
        gauge("node_filesystem_files", root_fs, lambda _m: host.inodes, noise=0.0),
        gauge("node_filesystem_files_free", root_fs, lambda m: host.inodes * (1.0 - host.inodes_used(m))),
        gauge("node_filesystem_device_error", root_fs, lambda _m: 0.0, noise=0.0),
        gauge("node_filesystem_readonly", root_fs, lambda _m: 0.0, noise=0.0),
        gauge("node_load5", base, lagged(2.5)),
        gauge("node_load15", base, lagged(7.5)),
        counter("node_pressure_cpu_waiting_seconds_total", base, host.pressure_cpu),
        counter("node_pressure_io_waiting_seconds_total", base, host.pressure_io),
        counter("node_pressure_io_stalled_seconds_total", base, lambda m: host.pressure_io(m) * 0.6),
        counter("node_pressure_memory_waiting_seconds_total", base, host.pressure_memory),
        counter("node_pressure_memory_stalled_seconds_total", base, lambda m: host.pressure_memory(m) * 0.5),
    ]


def _filesystem_series(extra: Filesystem, base: dict[str, str], gauge: _Gauge) -> list[SyntheticSeries]:
    """One more filesystem; while node_exporter cannot stat it only ``device_error`` (1) and ``readonly`` remain."""
    labels = {**base, "device": extra.device, "fstype": extra.fstype, "mountpoint": extra.mountpoint}
    size = extra.size_gb * GB

    def present(m: float) -> float:
        return 1.0 if extra.device_error(m) < 0.5 else 0.0

    return [
        gauge("node_filesystem_size_bytes", labels, lambda _m: 1.0, scale=size, present=present),
        gauge("node_filesystem_avail_bytes", labels, lambda m: 1.0 - extra.used(m), scale=size, present=present),
        gauge("node_filesystem_files", labels, lambda _m: extra.inodes, noise=0.0, present=present),
        gauge(
            "node_filesystem_files_free",
            labels,
            lambda m: extra.inodes * (1.0 - extra.inodes_used(m)),
            present=present,
        ),
        gauge("node_filesystem_device_error", labels, extra.device_error, noise=0.0),
        gauge("node_filesystem_readonly", labels, extra.readonly, noise=0.0),
    ]


def _boot_time(clock: _Clock, host: Host, base: dict[str, str]) -> SyntheticSeries:
    """``node_boot_time_seconds``: the Unix time the host booted; a host back at ``back_min`` booted just before."""
    t0 = clock.t0.timestamp()
    back = host.back_min

    def booted(m: float) -> float:
        if back is not None and m >= back:
            return t0 + (back - 0.5) * 60.0
        return t0 + host.booted_min * 60.0

    return _gauge(clock, "node_boot_time_seconds", base, booted, gone=host.gone_min, back=back, noise=0.0)


def _up(clock: _Clock, labels: dict[str, str], gone: float | None, back: float | None = None) -> SyntheticSeries:
    def down(minute: float) -> bool:
        return gone is not None and minute >= gone and (back is None or minute < back)

    points: list[tuple[datetime | float, float]] = [
        (at, 0.0 if down(minute) else 1.0) for at, minute in clock.ticks(None)
    ]
    return SyntheticSeries("up", dict(labels), points)


def pve_series(clock: _Clock, guest: PveGuestMetrics) -> list[SyntheticSeries]:
    """The pve_exporter series of one guest or node."""
    labels = {"id": guest.pve_id, "instance": "pve-exporter:9221", "job": "pve"}
    gone = guest.gone_min
    size = guest.mem_size_gb * GB
    out = [
        _gauge(clock, "pve_cpu_usage_ratio", labels, guest.cpu, gone=gone),
        _gauge(clock, "pve_memory_size_bytes", labels, lambda _m: 1.0, scale=size, gone=gone),
        _gauge(clock, "pve_memory_usage_bytes", labels, guest.mem_used, scale=size, gone=gone),
        _counter(clock, "pve_disk_read_bytes", labels, guest.disk_read_mbps, scale=MB, gone=gone),
        _counter(clock, "pve_disk_write_bytes", labels, guest.disk_write_mbps, scale=MB, gone=gone),
        _gauge(clock, "pve_up", labels, lambda m: 0.0 if gone is not None and m >= gone else 1.0),
    ]
    if guest.current_names:
        out.append(_counter(clock, "pve_disk_read_bytes_total", labels, guest.disk_read_mbps, scale=MB, gone=gone))
        out.append(_counter(clock, "pve_disk_written_bytes_total", labels, guest.disk_write_mbps, scale=MB, gone=gone))
    return out


def raw_series(clock: _Clock, raw: Raw) -> SyntheticSeries:
    if raw.relative_to_t0:
        t0 = clock.t0.timestamp()
        return _gauge(clock, raw.name, raw.labels, lambda m: t0 + raw.shape(m), gone=raw.gone_min, noise=0.0)
    if raw.counter:
        return _counter(clock, raw.name, raw.labels, raw.shape, gone=raw.gone_min, back=raw.back_min)
    noise = NOISE if raw.noise else 0.0
    return _gauge(clock, raw.name, raw.labels, raw.shape, gone=raw.gone_min, noise=noise, back=raw.back_min)


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
