"""Compact rendering for the agent's tools: budgets are never exceeded and a cut always says what was cut."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tools.render import clip, duration, fit, number, size


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.text(alphabet=st.characters(blacklist_characters="\n\r"), max_size=300), max_size=80),
    budget=st.integers(min_value=500, max_value=5000),
)
def test_answer_never_exceeds_its_budget_and_names_what_was_cut(lines: list[str], budget: int) -> None:
    out = fit("header", lines, budget_chars=budget, narrow="add matchers")
    assert len(out) <= budget
    shown = out.split("\n")[1:]
    note = re.fullmatch(
        r"\[cut: (\d+) more line\(s\), (\d+) chars not shown; add matchers\]", shown[-1] if shown else ""
    )
    if note is None:
        assert shown == lines or (not lines and shown == [])
    else:
        kept = shown[:-1]
        assert kept == lines[: len(kept)]
        assert int(note.group(1)) == len(lines) - len(kept)
        assert int(note.group(2)) == sum(len(x) + 1 for x in lines[len(kept) :])


@given(st.text(max_size=2000), st.integers(min_value=1, max_value=500))
def test_clipped_text_is_one_bounded_line(text: str, limit: int) -> None:
    out = clip(text, limit)
    assert "\n" not in out and "\r" not in out
    assert len(out) <= limit


def test_units_are_compact() -> None:
    assert (size(3 << 40), size(512), duration(90061), duration(45), number(1234567.0), number(float("nan"))) == (
        "3.0 TiB",
        "512 B",
        "1d1h",
        "45s",
        "1.235e+06",
        "NaN",
    )
