"""Durations as Prometheus and Grafana write them (a rule's ``for``), read with ASCII-only rules."""

from __future__ import annotations

import pytest

from tools.numbers import duration_s


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300.0), ("1h30m", 5400.0), ("0s", 0.0), ("90s", 90.0), ("1d2h", 93600.0), ("250ms", 0.25)],
)
def test_durations_are_read_in_seconds(text: str, seconds: float) -> None:
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5x", "1h 5m", "m5", "-5m", "\u0665m", "5m garbage"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    assert duration_s(text) is None
