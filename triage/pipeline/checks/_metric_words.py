"""Plain words for metric names, so a finding about ``node_filesystem_files_free`` reads as "inodes".

Only a title's wording comes from here: which series are looked at and how they rank never does. A name with no
entry is shown as its own words (underscores as spaces).
"""

from __future__ import annotations

import re

# (fragment of a metric name, words a person uses for it); first match wins
GLOSSARY: tuple[tuple[str, str], ...] = (
    (r"filesystem_files", "inodes"),
    (r"swap", "swap"),
    (r"pressure", "pressure stall"),
    (r"load(1|5|15)\b", "load average"),
    (r"oom", "OOM kills"),
    (r"context_switches", "context switches"),
    (r"entropy", "entropy"),
    (r"filefd|file_descriptors|open_fds", "open file descriptors"),
    (r"conntrack", "connection tracking"),
    (r"(^|_)smart|smartmon|smartctl", "SMART disk health"),
    (r"(^|_)ups_|nut_|apcupsd|battery", "UPS"),
    (r"zfs|zpool", "ZFS"),
    (r"probe_success|probe_", "probe"),
    (r"ssl|cert|tls", "certificate"),
    (r"hwmon_temp|thermal|temp(erature)?", "temperature"),
    (r"edac|mce", "memory errors"),
    (r"disk_(read|written|io)", "disk IO"),
    (r"network_(receive|transmit)_(errs|drop)", "network errors"),
    (r"time_(offset|sync)|timex", "clock"),
    (r"systemd_unit_state", "systemd unit state"),
)
_COMPILED = tuple((re.compile(pattern, re.IGNORECASE), words) for pattern, words in GLOSSARY)


def plain_words(metric: str) -> str:
    """What a person calls the thing ``metric`` measures ("" when the name says it well enough)."""
    for pattern, words in _COMPILED:
        if pattern.search(metric):
            return words
    return ""
