"""Which resource a measure reads (``cpu``, ``memory``, ``io``, ``filesystem``, ``network``), from a metric name or a
query's text: how the checks tell the alert's own symptom from a cause elsewhere."""

from __future__ import annotations

import re

from reports.models import Evidence
from triage.evidence_facts import facts_data

# a shift of the resource the alert measures, on the alert's own target, counts this much: it is the symptom, which
# the alert signal already shows
SYMPTOM_FACTOR = 0.6

_QUERY_FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"iowait|node_disk_|pve_disk_|diskio|io_time|_io_|pressure_io"), "io"),
    (re.compile(r"node_memory_|pve_memory_|container_memory_|swap|oom|pressure_memory"), "memory"),
    (re.compile(r"node_filesystem_|pve_storage_|disk_(free|used|avail)"), "filesystem"),
    (re.compile(r"node_network_|pve_network_|container_network_"), "network"),
    (re.compile(r"node_cpu_|pve_cpu_|container_cpu_|node_load|pressure_cpu"), "cpu"),
)


def alert_families(promql: str | None) -> frozenset[str]:
    """The resources an alert's query measures (``io`` for a disk latency rule, ``cpu`` for a CPU one)."""
    if not promql:
        return frozenset()
    text = promql.lower()
    found = {family for pattern, family in _QUERY_FAMILIES if pattern.search(text)}
    # a CPU rule on the iowait mode is about IO, not about the processor
    if "iowait" in text:
        found.discard("cpu")
    return frozenset(found)


def as_symptom(item: Evidence, why: str) -> Evidence:
    """``item`` weighed as the alert's symptom (× :data:`SYMPTOM_FACTOR`), saying ``why`` in its detail."""
    return item.model_copy(
        update={
            "score": item.score * SYMPTOM_FACTOR,
            "detail": f"{item.detail}; {why}",
            "data": {**item.data, **facts_data(symptom=True)},
        }
    )
