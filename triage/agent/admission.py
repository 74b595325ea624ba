"""What /ask may spend: the hourly LLM token budget it shares with triage, and the questions one process runs at once.

Budget: every model call of a question reserves its estimated tokens (prompt plus the completion limit) from the
same hourly counter the triage worker uses (:mod:`triage.analysis.budget`), and settles the reservation with the usage the
endpoint reported once the call is over. A question is refused before it starts when what is left of the hour cannot
pay for one reply; a call whose reservation does not fit raises :class:`BudgetSpent`, whose message says when the
budget resets.

Concurrency: :class:`AskSlots` counts the questions being answered in this process. A question over the limit is
refused at once (429) rather than queued: a queued question would hold its HTTP connection open while the caller
cannot tell whether anything is happening.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from langchain_core.messages import BaseMessage

from triage.agent.events import AskError
from triage.analysis.budget import TokenBudget, resets_at
from triage.analysis.tokens import count_tokens

# Per-message framing the chat endpoints bill on top of the text (role, separators).
MESSAGE_OVERHEAD_TOKENS = 4

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class BudgetSpent(AskError):
    """The hourly LLM token budget cannot pay for another model call; ``retry_after_s`` is the time to its reset."""

    code = "llm_budget_spent"
    status_code = 429

    def __init__(self, limit: int, now: datetime) -> None:
        reset = resets_at(now)
        self.retry_after_s = max(1, math.ceil((reset - now).total_seconds()))
        minutes = max(1, math.ceil(self.retry_after_s / 60))
        super().__init__(
            f"the hourly LLM token budget ({limit} tokens, shared with alert triage) is spent; "
            f"it resets at {reset:%H:%M} UTC (in {minutes} min)"
        )


class TooManyQuestions(AskError):
    """More questions are being answered in this process than ``ASK_MAX_CONCURRENT`` allows."""

    code = "too_many_questions"
    status_code = 429
    retry_after_s = 5

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"{limit} questions are being answered already (ASK_MAX_CONCURRENT); retry when one has finished"
        )


@dataclass
class Reservation:
    """Tokens taken from the hour the call started in; settled against that same hour."""

    tokens: int
    at: datetime


class AskBudget:
    """/ask's view of the shared hourly budget: a check before a question, a reservation around each call."""

    def __init__(self, budget: TokenBudget, limit: int, *, reply_tokens: int, clock: Clock = _utc_now) -> None:
        self.budget = budget
        self.limit = limit
        self.reply_tokens = reply_tokens
        self.clock = clock

    async def check(self) -> None:
        """Raise BudgetSpent unless what is left of this hour pays for at least one reply."""
        now = self.clock()
        if await self.budget.spent(now) + self.reply_tokens > self.limit:
            raise BudgetSpent(self.limit, now)

    def estimate(self, messages: Sequence[BaseMessage], extra_prompt_tokens: int = 0) -> int:
        """Tokens a call over ``messages`` may cost at most: the prompt as counted here (plus ``extra_prompt_tokens``,
        the tool definitions) and the completion limit."""
        return sum(_message_tokens(m) for m in messages) + extra_prompt_tokens + self.reply_tokens

    async def reserve(self, messages: Sequence[BaseMessage], extra_prompt_tokens: int = 0) -> Reservation:
        """Take the call's estimate from this hour's budget, or raise BudgetSpent."""
        now = self.clock()
        tokens = self.estimate(messages, extra_prompt_tokens)
        if not await self.budget.reserve(tokens, self.limit, now):
            raise BudgetSpent(self.limit, now)
        return Reservation(tokens, now)

    async def settle(self, reservation: Reservation, used: int) -> None:
        """Replace the reservation with the tokens the call really used."""
        if used != reservation.tokens:
            await self.budget.settle(used - reservation.tokens, reservation.at)


def _message_tokens(message: BaseMessage) -> int:
    content = message.content
    text = content if isinstance(content, str) else " ".join(str(part) for part in content)
    calls = getattr(message, "tool_calls", None) or []
    return count_tokens(text) + sum(count_tokens(f"{c['name']}{c['args']}") for c in calls) + MESSAGE_OVERHEAD_TOKENS


class AskSlot:
    """One admitted question. ``release`` may be called more than once (the stream and the response both do)."""

    def __init__(self, slots: AskSlots) -> None:
        self._slots = slots
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._active -= 1


class AskSlots:
    """Counts the questions this process is answering; refuses one over ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active = 0

    @property
    def active(self) -> int:
        return self._active

    def acquire(self) -> AskSlot:
        """A slot for one question, or TooManyQuestions. Taken without awaiting, so no two callers share the last."""
        if self._active >= self.limit:
            raise TooManyQuestions(self.limit)
        self._active += 1
        return AskSlot(self)
