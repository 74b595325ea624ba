"""What the fake Loki's pattern ingester would have detected: patterns of its lines and their counts per step.

Loki's pattern ingester runs Drain over every pushed line of a stream (similarity 0.3, tree depth 30, 15 children
per node) and writes the varying tokens as ``<_>``; its answer counts each pattern's lines per step, merged over the
selected streams, and (since Loki 3.6) keeps patterns per detected level. This module does the same with drain3 on
the fake's lines, numbers masked to ``<_>`` first, so the answer has the shape and roughly the granularity of a real
one.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

PLACEHOLDER = "<_>"
_LEVEL = re.compile(r"""(?i)\blevel["']?\s*[=:]\s*["']?(\w+)""")
_WORDS = re.compile(r"(?i)\b(error|err|warn|warning|info|debug|fatal|critical|crit)\b")
_LEVEL_NAMES = {"err": "error", "warning": "warn", "crit": "critical", "fatal": "critical"}


def _miner() -> TemplateMiner:
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    config.drain_sim_th = 0.3
    config.drain_depth = 30
    config.drain_max_children = 15
    config.mask_prefix = "<"
    config.mask_suffix = ">"
    # a run starting with a digit (ids, addresses, durations), as Loki's tokenizer separates numbers from words
    config.masking_instructions = [MaskingInstruction(r"(?<![A-Za-z])\d[\w.:/-]*", "_")]
    return TemplateMiner(config=config)


def detected_level(line: str) -> str:
    """Loki's detected level: a ``level=`` field, else a level word in the line, else ``unknown``."""
    match = _LEVEL.search(line) or _WORDS.search(line)
    if match is None:
        return "unknown"
    word = match.group(1).lower()
    return _LEVEL_NAMES.get(word, word)


def stream_patterns(lines: list[tuple[int, str]]) -> list[str]:
    """The pattern of each line of one stream (in the given order), as the ingester ends up with them."""
    miner = _miner()
    ids = [int(miner.add_log_message(line)["cluster_id"]) for _, line in sorted(lines)]
    shapes = {c.cluster_id: c.get_template().replace("<*>", PLACEHOLDER) for c in miner.drain.clusters}
    order = sorted(range(len(lines)), key=lambda i: lines[i])
    out = [""] * len(lines)
    for rank, index in enumerate(order):
        out[index] = shapes[ids[rank]]
    return out


def answer(
    streams: list[list[tuple[int, str]]], start_ns: int, end_ns: int, step_s: float, *, levels: bool
) -> list[dict[str, Any]]:
    """The ``data`` of a patterns answer for the lines of ``streams`` in ``[start_ns, end_ns]``: samples are
    ``[unix seconds, count]`` per step (aligned to the step, steps without lines left out)."""
    step = max(1, int(step_s))
    counts: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for lines in streams:
        for (ts, line), pattern in zip(lines, stream_patterns(lines), strict=True):
            if not start_ns <= ts <= end_ns:
                continue
            level = detected_level(line) if levels else ""
            counts[(level, pattern)][(ts // 1_000_000_000) // step * step] += 1
    data = []
    for (level, pattern), samples in sorted(counts.items()):
        item: dict[str, Any] = {"pattern": pattern}
        if levels:
            item["level"] = level
        item["samples"] = [[t, n] for t, n in sorted(samples.items())]
        data.append(item)
    return data
