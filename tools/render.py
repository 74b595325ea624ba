"""Compact text rendering of client results for a language model: one line per item, within a character budget.

When a budget cuts an answer, the last line says how much was left out and how to narrow the query, so the model
asks a better question instead of guessing about what it did not see.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

DEFAULT_BUDGET_CHARS = 4000
DEFAULT_LINE_CHARS = 400
ELLIPSIS = "…"


def clip(text: str, max_chars: int = DEFAULT_LINE_CHARS) -> str:
    """One line of at most ``max_chars``: newlines become ``⏎`` so a value cannot fake further lines."""
    flat = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "⏎")
    if len(flat) <= max_chars:
        return flat
    return flat[: max(0, max_chars - 1)] + ELLIPSIS


def fit(header: str, lines: Iterable[str], *, budget_chars: int = DEFAULT_BUDGET_CHARS, narrow: str) -> str:
    """``header`` and as many whole ``lines`` as fit in ``budget_chars``; a cut is announced with ``narrow``.

    The cut note names how many lines (and characters) were left out, and ``narrow`` tells how to ask for less.
    """
    items = list(lines)
    out = [header]
    used = len(header)
    reserve = 120 + len(narrow)  # room for the note, so the whole answer stays within the budget
    for index, line in enumerate(items):
        cost = len(line) + 1
        if used + cost > budget_chars - reserve:
            left = items[index:]
            cut_chars = sum(len(x) + 1 for x in left)
            if used + cut_chars <= budget_chars:
                # everything left fits without a note: no need to keep the note's room free
                return "\n".join([*out, *left])
            out.append(f"[cut: {len(left)} more line(s), {cut_chars} chars not shown; {narrow}]")
            return "\n".join(out)
        out.append(line)
        used += cost
    return "\n".join(out)


def labels(values: Mapping[str, str], *, max_chars: int = 200) -> str:
    """``{a="1", b="2"}`` in PromQL style, clipped; ``__name__`` first when present."""
    ordered = sorted(values.items(), key=lambda kv: (kv[0] != "__name__", kv[0]))
    return clip("{" + ", ".join(f'{k}="{v}"' for k, v in ordered) + "}", max_chars)


def when(value: datetime | float | int | None) -> str:
    """A UTC time as ``2024-05-01 10:00:00Z`` from a datetime or epoch seconds; ``-`` when absent."""
    if value is None:
        return "-"
    at = value if isinstance(value, datetime) else datetime.fromtimestamp(float(value), UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def number(value: float | None) -> str:
    """A value with 4 significant digits (``1.235e+06`` for large ones); NaN/Inf as such; ``-`` when absent."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"


def size(value: float | None) -> str:
    """Bytes in binary units (``3.0 TiB``)."""
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or unit == "TiB":
            return f"{amount:.1f} {unit}" if unit != "B" else f"{int(amount)} B"
        amount /= 1024
    return f"{amount:.1f} PiB"


def duration(seconds: float | None) -> str:
    """``3d4h``, ``2h5m``, ``45s``: the two largest units."""
    if seconds is None:
        return "-"
    left = int(seconds)
    parts: list[str] = []
    for unit, size_s in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size_s or (unit == "s" and not parts):
            parts.append(f"{left // size_s}{unit}")
            left %= size_s
        if len(parts) == 2:
            break
    return "".join(parts)


def percent(ratio: float | None) -> str:
    """``75%`` from 0.75; ``-`` when unknown."""
    return "-" if ratio is None else f"{ratio * 100:.0f}%"
