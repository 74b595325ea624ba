"""The one exponential backoff: first, 2×first, 4×first … up to a cap, optionally jittered.

Every retry in the project waits by it: a data-source request (:mod:`tools.http`), a Grafana delivery, a job
retry and the worker's polling of an unreachable Redis. Each caller keeps its own first delay and cap.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable


def backoff_delay_s(
    attempt: int,
    *,
    first_s: float,
    cap_s: float = math.inf,
    jitter: float = 0.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failure number ``attempt`` (counting from 1; 0 and below count as 1).

    ``first_s × 2^(attempt-1)``, at most ``cap_s``, then scaled by a random factor in ``[1 - jitter, 1 + jitter)``
    (``jitter`` 0: no randomness) so that many clients failing together do not retry in step.
    """
    delay = min(first_s * 2 ** max(attempt - 1, 0), cap_s)
    if jitter:
        delay *= (1 - jitter) + 2 * jitter * rand()
    return float(delay)
