"""The one backoff formula: doubling from the first delay, the cap, and the jitter's bounds."""

from __future__ import annotations

import pytest

from reports.delivery import retry_delay_s as delivery_delay_s
from tools.backoff import backoff_delay_s
from triage.worker.jobs import retry_delay_s as job_delay_s
from triage.worker.loop import backoff_s as poll_delay_s


def test_doubles_from_the_first_delay_up_to_the_cap() -> None:
    assert [backoff_delay_s(n, first_s=0.5, cap_s=3.0) for n in (0, 1, 2, 3, 4, 5)] == [0.5, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_delay_s(30, first_s=1.0) == 2.0**29


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.5), (0.5, 1.0), (0.999, 1.499)])
def test_jitter_scales_the_delay_within_its_bounds(draw: float, factor: float) -> None:
    assert backoff_delay_s(3, first_s=0.2, jitter=0.5, rand=lambda: draw) == pytest.approx(0.8 * factor)


def test_jitter_draws_a_new_factor_each_time() -> None:
    delays = {backoff_delay_s(2, first_s=1.0, jitter=0.5) for _ in range(50)}
    assert len(delays) > 1 and all(1.0 <= d < 3.0 for d in delays)


def test_every_retry_in_the_project_waits_by_it() -> None:
    assert [delivery_delay_s(n) for n in (1, 2, 6, 7, 20)] == [5.0, 10.0, 160.0, 300.0, 300.0]
    assert [job_delay_s(n, 5.0) for n in (1, 2, 7, 8)] == [5.0, 10.0, 320.0, 600.0]
    assert [poll_delay_s(n) for n in (1, 2, 7, 8)] == [0.5, 1.0, 30.0, 30.0]
