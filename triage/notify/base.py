"""What a delivery channel is: a key, a label with no secrets in it, and ``deliver`` for one report event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from reports.models import ChannelState, NotifyEvent, Report

# States after which a channel is done with an event: a retried job does not deliver that event to it again.
FINAL_STATES: frozenset[ChannelState] = frozenset({"delivered", "disabled", "skipped", "filtered", "rate_limited"})


@dataclass(frozen=True)
class Outcome:
    """The result of one delivery attempt on one channel.

    ``report`` is the report with channel-specific fields updated (Grafana's annotation reference), or None when
    the channel changes nothing but its state. ``transient`` failures are retried by the job with backoff.
    """

    state: ChannelState
    report: Report | None = None
    error: str | None = None
    transient: bool = False


class Notifier(Protocol):
    """One delivery channel."""

    @property
    def key(self) -> str:
        """Stable name of the channel on the report (``grafana``, ``notify-1`` …)."""

    @property
    def label(self) -> str:
        """What the report page shows for the channel; never carries a secret."""

    async def deliver(self, report: Report, event: NotifyEvent, now: datetime) -> Outcome:
        """Deliver ``event`` of ``report``; failures come back as an :class:`Outcome`, never raised."""
