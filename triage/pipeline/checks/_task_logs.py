"""What a Proxmox VE or PBS task said: the line of its log that explains how it ended.

A failed task's status is often only ``job errors`` or ``unexpected status``; the reason (``no space left on
device``, ``unable to acquire lock``, ``connection refused``) is in its log. For the few tasks worth it — failed ones,
and ones still running long after they started — the log is read and its telling line put in the finding.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from tools.errors import SourceError
from tools.proxmox_api import ProxmoxApiClient
from tools.proxmox_models import TaskBase

MAX_LOGS = 3
LOG_LINES = 1000
LONG_RUNNING_S = 1800
LINE_CHARS = 200
# what a task's log says when something went wrong, strongest first: an error with its reason, then softer words
_TELLING: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"(?i)(\berror\b|\berr:|unable|cannot|can't|could not|no space|no such|timed? ?out|refused|denied|"
        r"i/o error|read-only)"
    ),
    re.compile(r"(?i)(\bfailed\b|\bfailure\b|abort|\bwarn(ing)?\b|not found|lock)"),
)
_TASK_END = re.compile(r"^TASK (ERROR|WARNINGS):\s*")


def telling_line(lines: Sequence[str]) -> str | None:
    """The line that says why a task ended as it did: ``TASK ERROR: …`` when it gives a reason, else the last line
    with an error and its reason (a bare ``TASK ERROR: job errors`` repeats the status), else that ``TASK ERROR``
    text, else the last line with a softer word (``failed``, ``warning``)."""
    strong, soft = _TELLING
    ended = next((_TASK_END.sub("", line).strip() for line in reversed(lines) if line.startswith("TASK ERROR:")), None)
    if ended and strong.search(ended):
        return ended[:LINE_CHARS]
    for line in reversed(lines):
        if strong.search(line) and not line.startswith(("TASK OK", "TASK ERROR:")):
            return line.strip()[:LINE_CHARS]
    if ended:
        return ended[:LINE_CHARS]
    for line in reversed(lines):
        if soft.search(line) and not line.startswith("TASK OK"):
            return line.strip()[:LINE_CHARS]
    return None


def worth_reading(task: TaskBase, now_s: float) -> bool:
    """A failed task, or one still running for longer than :data:`LONG_RUNNING_S`."""
    return task.failed or (task.running and now_s - task.starttime > LONG_RUNNING_S)


async def _one(client: ProxmoxApiClient, node: str, upid: str) -> str | None:
    try:
        return telling_line(await client.task_log(node, upid, limit=LOG_LINES))
    except SourceError:
        return None  # the task itself is still reported; only its explanation is missing


async def task_stories(client: ProxmoxApiClient, tasks: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The telling line of each ``(node, upid)`` (the first :data:`MAX_LOGS` only), by UPID; unreadable logs are
    left out."""
    chosen = list(dict.fromkeys(tasks))[:MAX_LOGS]
    lines = await asyncio.gather(*(_one(client, node, upid) for node, upid in chosen))
    return {upid: line for (_, upid), line in zip(chosen, lines, strict=True) if line}
