"""Numbers in text that arrives from outside, parsed with ASCII-only rules.

``str.isdigit()`` accepts ``²`` and other Unicode digits that ``int()`` refuses (and ``int()`` accepts Arabic-Indic
digits, underscores and surrounding spaces no API means), so a check with one and a conversion with the other turns
hostile input into an unhandled error. Everything that reads a number from a request, a label or an upstream answer
uses these instead.
"""

from __future__ import annotations

import re


def is_ascii_digits(text: str) -> bool:
    """True when ``text`` is one or more of ``0``–``9`` and nothing else."""
    return text.isascii() and text.isdigit()


def ascii_int(text: str, *, max_digits: int = 18) -> int | None:
    """The non-negative integer ``text`` spells in ASCII digits (at most ``max_digits`` of them), else None."""
    if not is_ascii_digits(text) or len(text) > max_digits:
        return None
    return int(text)


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
_DURATION = re.compile(r"([0-9]{1,9})(ms|s|m|h|d|w|y)")


def duration_s(text: str) -> float | None:
    """Seconds in a Prometheus/Grafana duration (``5m``, ``1h30m``, ``0s``), else None (empty or malformed)."""
    if not text or not text.isascii():
        return None
    parts = _DURATION.findall(text)
    if "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(int(number) * _DURATION_UNITS[unit] for number, unit in parts)
