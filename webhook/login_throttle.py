"""Failed logins per client address: after ``max_failures`` within ``window_s`` the login form answers 429 until
the oldest failure leaves the window, so API_TOKEN cannot be guessed at network speed.

Per process (each API replica counts its own), bounded in memory (at most ``max_clients`` addresses, the least
recently failing dropped first). Behind a reverse proxy every browser shares the proxy's address: a guesser then
locks the form for everyone for ``window_s``, while bearer tokens and existing logins keep working.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class LoginThrottle:
    """Counts failed logins per client address within a sliding window."""

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window_s: float = 300.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float]:
        times = self._failures.get(client, deque())
        cutoff = self._clock() - self.window_s
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def retry_after_s(self, client: str) -> int:
        """0 when ``client`` may try to log in now, else the seconds until it may."""
        times = self._recent(client)
        if len(times) < self.max_failures:
            return 0
        return max(1, math.ceil(times[0] + self.window_s - self._clock()))

    def failed(self, client: str) -> None:
        """Record a failed login of ``client``."""
        times = self._recent(client)
        times.append(self._clock())
        self._failures[client] = times
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """A right token clears the client's failures."""
        self._failures.pop(client, None)
