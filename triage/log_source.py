"""What the log checks need from a log backend: :class:`LogSource`.

The log checks (``log_errors`` and the helpers it calls: pattern counts, line reads, the stream labels) call exactly
these three methods, and nothing else, on ``Deps.logs``. :class:`tools.loki.LokiClient` satisfies the protocol
structurally (mypy checks it where the registry puts a Loki client into ``Deps.logs``); a second log backend is one
client module that satisfies it plus one entry in :data:`triage.sources.SOURCES` whose ``slot`` is ``"logs"``.

The contract, besides the signatures:

* queries are LogQL: a stream selector (``{host="web"}``) optionally followed by line filters (``|= "x"``,
  ``|~ "(?i)err"``); a backend with another query language translates them;
* ``query_range`` answers a :class:`tools.loki.LogQueryResult` of streams, newest line first for ``backward``;
* ``patterns`` raises :class:`tools.loki_patterns.PatternsUnavailable` (a ``SourceError``) when the backend cannot
  count patterns; the checks then read lines instead;
* failures raise :class:`tools.errors.SourceError` subclasses, which the checks turn into a failed source.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from tools.loki import Direction, LogQueryResult
from tools.loki_patterns import PatternSeries

__all__ = ["LogSource"]


@runtime_checkable
class LogSource(Protocol):
    """A log backend as the log checks use it."""

    async def query_range(
        self, logql: str, start: datetime, end: datetime, *, limit: int = ..., direction: Direction = ...
    ) -> LogQueryResult:
        """The lines of the streams ``logql`` selects in ``[start, end]``, at most ``limit`` of them."""
        ...

    async def labels(self, start: datetime, end: datetime, *, limit: int = ...) -> list[str]:
        """The label names of the streams that have lines in ``[start, end]``."""
        ...

    async def patterns(self, selector: str, start: datetime, end: datetime, *, step_s: float) -> list[PatternSeries]:
        """The line patterns of the streams ``selector`` selects, with their counts per ``step_s``."""
        ...
