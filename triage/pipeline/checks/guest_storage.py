"""Guest storage check: the Proxmox storage holding the alert's guest's disks, as its node sees it now.

A guest's disk IO waits on its storage: an NFS storage whose server stopped answering leaves the node's mount (and
the storage) inactive and the guest's writes hanging; a thin pool (LVM-thin, ZFS) that reaches 100 % fails writes,
and QEMU pauses the VM with ``io-error``. ``/nodes/{node}/storage`` says whether each storage is active and how
full it is; only the storages holding the guest's disks are judged, so a full ISO share elsewhere never counts.
When they are healthy, one low-scored line says where the disks are.
"""

from __future__ import annotations

from reports.models import Evidence
from tools.proxmox_storage import THIN_TYPES, StorageStatus
from triage.pipeline.checks._disk_storage import DiskStorage, GuestStorage
from triage.pipeline.checks.check_context import CheckContext, evidence_id
from triage.pipeline.checks.result import NO_EVIDENCE, CheckResult
from triage.pipeline.checks.spec import CheckSpec

NAME = "guest_storage"
FULL_RATIO = 0.9
# a thin pool this full fails the next allocation: the guest's writes stop
THIN_FULL_RATIO = 0.98
INACTIVE_SCORE = 0.9
DISABLED_SCORE = 0.6
FULL_SCORE = 0.6
FULL_TOP_SCORE = 0.92
CONTEXT_SCORE = 0.05
GIB = 1024**3


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.0f}%"


def full_score(ratio: float, thin: bool) -> float:
    """From :data:`FULL_SCORE` at 90 % up to :data:`FULL_TOP_SCORE` when full (a thin pool near full: the top)."""
    if thin and ratio >= THIN_FULL_RATIO:
        return FULL_TOP_SCORE
    share = min(1.0, max(0.0, (ratio - FULL_RATIO) / (1.0 - FULL_RATIO)))
    return round(FULL_SCORE + (FULL_TOP_SCORE - FULL_SCORE) * share, 3)


def _evidence(found: GuestStorage, storage: DiskStorage, key: str, title: str, score: float, detail: str) -> Evidence:
    return Evidence(
        id=evidence_id("stor", key, found.node, storage.storage),
        source="proxmox",
        kind="guest_storage",
        title=title,
        detail=detail,
        score=score,
        ref=f"/nodes/{found.node}/storage",
        data={
            "storage": storage.storage,
            "type": storage.type,
            "servers": storage.servers,
            "location": storage.config.location if storage.config is not None else "",
            "disks": list(storage.disks),
            "vmid": found.vmid,
            "node": found.node,
        },
    )


def judge(found: GuestStorage, storage: DiskStorage, status: StorageStatus) -> Evidence | None:
    """The finding on one storage holding the guest's disks, or None when it is healthy."""
    holding = f"holding {found.label}'s disk" + ("s" if len(storage.disks) > 1 else "")
    name = storage.describe()
    disks = ", ".join(storage.disks)
    if not status.enabled:
        title = f"Storage {name} {holding} is disabled on node {found.node}"
        detail = f"disks {disks}; a disabled storage cannot be used by the guest (start, migrate, backup)"
        return _evidence(found, storage, "disabled", title, DISABLED_SCORE, detail)
    if not status.active:
        title = f"Storage {name} {holding} is not active on node {found.node}"
        detail = f"disks {disks}; the node cannot reach or mount the storage, so the guest's IO to it stalls or fails"
        return _evidence(found, storage, "inactive", title, INACTIVE_SCORE, detail)
    ratio = status.used_ratio
    if ratio is None or ratio < FULL_RATIO:
        return None
    thin = (storage.type or status.type) in THIN_TYPES
    free = max(0, status.total - status.used) / GIB
    title = f"Storage {name} {holding} is {_pct(ratio)} full on node {found.node}, {free:.1f} GiB free"
    detail = f"disks {disks}" + ("; a full thin pool fails writes and QEMU pauses the VM with io-error" if thin else "")
    return _evidence(found, storage, "full", title, full_score(ratio, thin), detail)


def _context(found: GuestStorage, rows: dict[str, StorageStatus]) -> Evidence:
    parts = []
    for storage in found.storages:
        status = rows.get(storage.storage)
        ratio = status.used_ratio if status is not None else None
        parts.append(storage.describe() + (f" {_pct(ratio)} used" if ratio is not None else ""))
    first = found.storages[0]
    title = f"{found.label}'s disks are on storage {'; '.join(parts)}, active on node {found.node}"
    return _evidence(found, first, "ok", title, CONTEXT_SCORE, "")


async def run(ctx: CheckContext) -> CheckResult:
    """Inactive, disabled or nearly full storages holding the guest's disks (a line of context when all is well)."""
    proxmox = ctx.deps.proxmox
    if proxmox is None:
        return NO_EVIDENCE
    found = await ctx.guest_storage()
    if found is None or not found.storages:
        return NO_EVIDENCE
    if not any(n.node == found.node and n.status == "online" for n in await proxmox.nodes()):
        return NO_EVIDENCE  # an offline node answers nothing; the guest status check reports it
    rows = {row.storage: row for row in await proxmox.node_storage(found.node)}
    items = [
        finding
        for storage in found.storages
        if (status := rows.get(storage.storage)) is not None and (finding := judge(found, storage, status)) is not None
    ]
    known = [s for s in found.storages if s.storage in rows]
    if not items and known:
        items.append(_context(found, rows))
    return CheckResult(tuple(items))


CHECK = CheckSpec(NAME, run, sources=("proxmox",))
