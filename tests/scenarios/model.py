"""Scenario worlds as data: what each data source holds around one incident, and what a good triage must rank.

Every time in a scenario is in minutes relative to the alert's ``startsAt`` (``T0``; negative is before). The suite
anchors each scenario at a real time when it builds the world (see :mod:`tests.scenarios.world`), so the same
definition serves a real Prometheus backfilled minutes before the run and fakes that answer with absolute times.

Expectations are written from the incident story, before any triage runs: :class:`Expect` matches evidence by its
source, kind and title words — never by id — so the suite measures whether the triage *found* the cause, whatever
the engine calls its items.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reports.models import Evidence

Shape = Callable[[float], float]
"""A metric's value as a function of minutes from the alert start."""


def flat(value: float) -> Shape:
    """A constant level."""
    return lambda _m: value


def ramp(start: float, end: float, from_min: float, to_min: float) -> Shape:
    """``start`` until ``from_min``, a straight line to ``end`` at ``to_min``, ``end`` after."""

    def shape(m: float) -> float:
        if m <= from_min:
            return start
        if m >= to_min:
            return end
        return start + (end - start) * (m - from_min) / (to_min - from_min)

    return shape


def step(before: float, after: float, at_min: float, *, over_min: float = 1.0) -> Shape:
    """A level change at ``at_min`` (a ramp of ``over_min`` minutes, as a 15 s scrape sees a sudden change)."""
    return ramp(before, after, at_min, at_min + over_min)


def pulse(base: float, peak: float, from_min: float, to_min: float) -> Shape:
    """``peak`` between ``from_min`` and ``to_min``, ``base`` elsewhere."""
    return lambda m: peak if from_min <= m < to_min else base


def wave(base: float, amplitude: float, period_min: float) -> Shape:
    """A level that swings up and down (a flapping signal)."""
    return lambda m: base + amplitude * math.sin(2 * math.pi * m / period_min)


def sequence(*parts: tuple[float, Shape]) -> Shape:
    """Piecewise: each ``(until_min, shape)`` applies up to ``until_min``; the last one applies after."""

    def shape(m: float) -> float:
        for until, part in parts:
            if m < until:
                return part(m)
        return parts[-1][1](m)

    return shape


@dataclass
class Filesystem:
    """One more mounted filesystem of a host (its root one is described by the host itself).

    ``device`` is what node_exporter puts in its ``device`` label: ``/dev/sdb1``, ``tank/media`` for a ZFS dataset,
    ``nas01:/volume1/media`` for an NFS mount. ``inodes_used`` is the share of ``inodes`` in use;
    ``device_error`` is 1 while node_exporter cannot stat it (an NFS server gone), ``readonly`` 1 once it is
    remounted read-only.
    """

    mountpoint: str
    device: str
    fstype: str = "ext4"
    size_gb: float = 500.0
    used: Shape = field(default_factory=lambda: flat(0.4))
    inodes: float = 32_000_000
    inodes_used: Shape = field(default_factory=lambda: flat(0.05))
    device_error: Shape = field(default_factory=lambda: flat(0.0))
    readonly: Shape = field(default_factory=lambda: flat(0.0))


@dataclass
class Host:
    """A node_exporter target. Ratios are 0..1, rates in MB/s; ``gone_min`` stops its samples (host down).

    The classic series (CPU, memory, root filesystem, one disk, one NIC, load1, ``up``) are always written.
    ``extended`` adds what a current node_exporter also exports on every host — swap, inodes of each filesystem,
    load5/15, pressure stall (PSI) counters, boot time — so a search over all of a host's series has the breadth of
    a real one. ``filesystems`` are written either way. ``back_min`` brings a host that went away at ``gone_min``
    back (a reboot): its counters restart from zero and ``node_boot_time_seconds`` moves to just before it.
    Pressure shapes are the share of time some task stalled (``*_waiting_seconds_total`` per second).
    """

    instance: str
    job: str = "node"
    cpu_busy: Shape = field(default_factory=lambda: flat(0.12))
    iowait: Shape = field(default_factory=lambda: flat(0.01))
    steal: Shape = field(default_factory=lambda: flat(0.0))
    mem_used: Shape = field(default_factory=lambda: flat(0.45))
    mem_total_gb: float = 8.0
    fs_used: Shape = field(default_factory=lambda: flat(0.42))
    mountpoint: str = "/"
    fs_size_gb: float = 100.0
    disk_util: Shape = field(default_factory=lambda: flat(0.04))
    disk_read_mbps: Shape = field(default_factory=lambda: flat(1.5))
    disk_write_mbps: Shape = field(default_factory=lambda: flat(2.0))
    net_mbps: Shape = field(default_factory=lambda: flat(1.2))
    load1: Shape = field(default_factory=lambda: flat(0.6))
    gone_min: float | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)
    filesystems: list[Filesystem] = field(default_factory=list)
    back_min: float | None = None
    extended: bool = False
    swap_total_gb: float = 4.0
    swap_used: Shape = field(default_factory=lambda: flat(0.02))
    inodes: float = 6_553_600
    inodes_used: Shape = field(default_factory=lambda: flat(0.06))
    pressure_cpu: Shape = field(default_factory=lambda: flat(0.01))
    pressure_io: Shape = field(default_factory=lambda: flat(0.005))
    pressure_memory: Shape = field(default_factory=lambda: flat(0.0))
    booted_min: float = -30 * 24 * 60.0


@dataclass
class PveGuestMetrics:
    """pve_exporter series of a guest (``qemu/105``, ``lxc/105``) or node (``node/pve1``)."""

    pve_id: str
    cpu: Shape = field(default_factory=lambda: flat(0.08))
    mem_used: Shape = field(default_factory=lambda: flat(0.5))
    mem_size_gb: float = 4.0
    disk_read_mbps: Shape = field(default_factory=lambda: flat(0.5))
    disk_write_mbps: Shape = field(default_factory=lambda: flat(0.8))
    gone_min: float | None = None
    # pve_exporter 3 also exports its IO as ``_total`` counters (``pve_disk_written_bytes_total``) next to the
    # deprecated gauges; a world written for a current exporter sets this
    current_names: bool = False


@dataclass
class Raw:
    """Any other series (blackbox, nginx, application metrics); ``counter`` accumulates ``shape`` per second."""

    name: str
    labels: dict[str, str]
    shape: Shape
    counter: bool = False
    gone_min: float | None = None
    noise: bool = True
    relative_to_t0: bool = False  # the value is seconds after T0, written as a Unix time (expiry dates)
    back_min: float | None = None  # scraped again from here after ``gone_min`` (its exporter's host rebooted)


@dataclass
class Log:
    """``repeat`` lines (``every_s`` apart, from ``at_min``) in the Loki stream with ``labels``."""

    labels: dict[str, str]
    at_min: float
    line: str
    repeat: int = 1
    every_s: float = 60.0


@dataclass
class Node:
    """A Proxmox VE node. ``booted_min`` sets its uptime, ``iowait`` the share of CPU time waiting for IO in its
    status (PVE's ``wait``). The node's own node_exporter and logs are a :class:`Host` and :class:`Log` streams
    carrying its name (see :func:`tests.scenarios.common.pve_node_host`)."""

    name: str
    online: bool = True
    cpu: float = 0.18
    mem_used: float = 0.45
    booted_min: float | None = None
    iowait: float = 0.001
    loadavg: tuple[float, float, float] = (0.42, 0.38, 0.35)


@dataclass
class Guest:
    """A Proxmox guest; ``booted_min`` (minutes from T0) sets its uptime at triage time.

    ``config`` overrides or adds keys of the generated ``/config`` (``{"memory": 2048}``); ``disks`` are its disk
    keys as PVE writes them (``{"scsi0": "nas-nfs:490/vm-490-disk-0.qcow2,size=64G"}``, ``{"mp0": "tank:…,mp=/data"}``;
    without them a VM's ``scsi0`` and a container's ``rootfs`` are on ``local-lvm``). ``pending`` holds changes made
    but not applied until the next boot and ``pending_delete`` keys to be removed, as ``/pending`` lists them.
    ``lock`` is PVE's lock (``backup``, ``migrate``, ``snapshot`` …); ``qmpstatus`` the QEMU run state of a running
    VM whose CPUs stopped (``io-error`` after a failed disk write, ``paused``).
    """

    vmid: int
    name: str
    node: str
    kind: str = "qemu"
    status: str = "running"
    ips: list[str] = field(default_factory=list)
    mem_used: float = 0.5
    maxmem_gb: float = 4.0
    booted_min: float = -14 * 24 * 60.0
    lock: str | None = None
    config: dict[str, str | int] = field(default_factory=dict)
    disks: dict[str, str] = field(default_factory=dict)
    qmpstatus: str | None = None
    pending: dict[str, str | int] = field(default_factory=dict)
    pending_delete: list[str] = field(default_factory=list)


@dataclass
class PveTask:
    """A PVE task (``vzdump``, ``qmstart``, ``qmconfig`` …); ``log`` is its task log (``/tasks/{upid}/log``), the
    closing ``TASK OK``/``TASK ERROR: …`` line included when it has ended."""

    node: str
    type: str
    start_min: float
    end_min: float | None = None
    status: str = "OK"
    vmid: int | None = None
    user: str = "root@pam"
    log: list[str] = field(default_factory=list)


@dataclass
class Datastore:
    """A PBS datastore; ``namespaces`` below its root (``"pve-b"``, ``"pve-b/offsite"``), ``error`` when PBS reports
    it unavailable (a datastore on a disk that went away)."""

    name: str
    total_tb: float = 4.0
    used_ratio: float = 0.5
    namespaces: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class PbsTask:
    """A PBS task; ``worker_id`` as PBS writes it (``store:vm/101``, ``store:ns/vm/101`` in a namespace); ``log`` its
    task log."""

    worker_type: str
    worker_id: str | None
    start_min: float
    end_min: float | None = None
    status: str = "OK"
    log: list[str] = field(default_factory=list)


@dataclass
class Storage:
    """A PVE storage (``/storage``): ``type`` is the plugin (``nfs``, ``zfspool``, ``pbs``, ``lvmthin``, ``dir``);
    ``server``/``export`` for NFS, ``server``/``share`` for CIFS, ``portal`` for iSCSI, ``monhost`` for an external
    Ceph cluster, ``pool`` for ZFS, ``vgname``/``thinpool`` for LVM-thin, ``server``/``datastore``/``namespace`` for
    PBS. ``nodes`` limits it to some nodes (all when empty); ``active`` false makes it unavailable on every node
    (``/cluster/resources``, ``/nodes/{node}/storage``), ``disable`` disables it in the configuration.

    Every world has PVE's default ``local`` (directory) and ``local-lvm`` (LVM-thin) storages unless it defines
    storages of those names."""

    name: str
    type: str
    content: str = "images,rootdir"
    nodes: list[str] = field(default_factory=list)
    server: str | None = None
    export: str | None = None
    pool: str | None = None
    datastore: str | None = None
    namespace: str | None = None
    path: str | None = None
    share: str | None = None
    portal: str | None = None
    monhost: str | None = None
    vgname: str | None = None
    thinpool: str | None = None
    shared: bool = False
    total_gb: float = 1000.0
    used_ratio: float = 0.3
    active: bool = True
    disable: bool = False


@dataclass
class GrafanaRule:
    """A Grafana-managed rule; ``datasource`` is the uid of the data source its query ``A`` reads (``prometheus``
    or ``loki``: then ``expr`` is LogQL)."""

    uid: str
    title: str
    expr: str
    state: str = "firing"
    health: str = "ok"
    last_error: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    datasource: str = "prometheus"
    for_: str = "5m"


@dataclass
class Annotation:
    at_min: float
    text: str
    tags: list[str] = field(default_factory=list)
    end_min: float | None = None


@dataclass
class PriorFiring:
    """An earlier report of the same alert, ``days_ago`` before T0, with the diagnosis it carried."""

    days_ago: float
    summary: str = ""


@dataclass
class AlertSpec:
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    source: str = "alertmanager"
    generator_expr: str | None = None
    dashboard_uid: str | None = None
    panel_id: int | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class Expect:
    """Evidence a good triage ranks high, matched by words, not ids.

    An item matches when its source is one of ``sources`` (any when empty), its kind one of ``kinds`` (any when
    empty), and its title contains, case-insensitively, every word of at least one of ``words`` (any title when
    empty). ``why`` is the sentence of the incident story this expectation comes from.
    """

    why: str
    sources: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    words: tuple[tuple[str, ...], ...] = ()

    def matches(self, item: Evidence) -> bool:
        if self.sources and item.source not in self.sources:
            return False
        if self.kinds and item.kind not in self.kinds:
            return False
        if not self.words:
            return True
        title = item.title.lower()
        return any(all(word.lower() in title for word in group) for group in self.words)

    def rank_in(self, evidence: Sequence[Evidence]) -> int | None:
        """1-based rank of the first matching item in ranked ``evidence``, or None."""
        for index, item in enumerate(evidence, start=1):
            if self.matches(item):
                return index
        return None


@dataclass
class Scenario:
    """One incident: the world around it, the alert, and what the triage must find.

    ``causal`` must rank in the top 3; ``supporting`` items count towards recall too; each ``distractor`` (a red
    herring) must rank below the causal item. ``down`` names data sources that do not answer at all.

    ``pbs_host`` is the PBS server's host name as its UPIDs and its logs' ``host`` label give it (``pbs`` when not
    set). ``topology`` is the content of a ``TOPOLOGY_FILE`` (``{"hosts": {name: {"depends_on": [...],
    "aliases": [...]}}}``) the world writes for the triage. ``tags`` name the capabilities the incident exercises.
    """

    name: str
    story: str
    alert: AlertSpec
    causal: Expect
    supporting: list[Expect] = field(default_factory=list)
    distractors: list[Expect] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)
    pve_metrics: list[PveGuestMetrics] = field(default_factory=list)
    raw: list[Raw] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    guests: list[Guest] = field(default_factory=list)
    pve_tasks: list[PveTask] = field(default_factory=list)
    datastores: list[Datastore] = field(default_factory=list)
    pbs_tasks: list[PbsTask] = field(default_factory=list)
    rules: list[GrafanaRule] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    history: list[PriorFiring] = field(default_factory=list)
    down: tuple[str, ...] = ()
    expect_history: str | None = None
    storages: list[Storage] = field(default_factory=list)
    pbs_host: str | None = None
    topology: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()

    @property
    def expected(self) -> list[Expect]:
        return [self.causal, *self.supporting]
